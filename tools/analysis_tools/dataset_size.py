"""Measure how large a RefCOCO-sized ``RefCOCODataset`` is in memory, without the real data.

Writes a synthetic REFER folder shaped like RefCOCO (UNC) train into a temporary folder (by
default 42,404 refs with 120,624 sentences on 16,994 images, one annotation per ref holding one
polygon of 100 coordinates), builds ``RefCOCODataset`` on it exactly as the training configs do
(``sample_mode='ref'``, ``serialize_data=True``) and reports:

- ``build_s``: the time ``full_init`` takes (read ``instances.json`` and ``refs(unc).p``, make the
  data list, serialise it);
- ``pickled_mib`` (``pickled_bytes``): the size of the pickled dataset object, which is what a
  data-loader worker started with ``spawn`` receives (``fork`` workers share the buffer);
- its parts: ``data_bytes_mib`` (MMEngine's serialised data list), ``data_address_mib`` (its
  offsets), ``sentence_index_mib`` (sentence -> ref, used in ``sample_mode='sentence'``), and
  ``polygons_mib`` (``polygons_bytes``: the polygons alone, each pickled as it is inside the data
  list) with ``other_mib`` and ``other_bytes_per_ref`` (everything but the polygons).

Example::

    python tools/analysis_tools/dataset_size.py
    python tools/analysis_tools/dataset_size.py --refs 1000 --sentences 2800 --images 400 \\
        --json work_dirs/dataset_size.json

The content is random but fixed by ``--seed``: sentences of 1 to 6 words (3.5 on average;
RefCOCO's average 3.6), COCO-style file names, polygon coordinates with two decimals.
"""
import argparse
import json
import os.path as osp
import pickle
import platform
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.datasets import RefCOCODataset  # noqa: E402

MIB = 1024 * 1024
WORDS = ('man', 'woman', 'left', 'right', 'guy', 'girl', 'in', 'red', 'blue', 'white', 'black',
         'shirt', 'the', 'on', 'middle', 'front', 'back', 'person', 'car', 'chair', 'dog',
         'far', 'bottom', 'top', 'green', 'table', 'bowl', 'pizza', 'closest', 'second')


def write_refer_folder(root: str, num_refs: int, num_sentences: int, num_images: int,
                       num_coords: int, seed: int) -> None:
    """Write ``instances.json`` and ``refs(unc).p`` shaped like RefCOCO (UNC) train."""
    if num_sentences < num_refs:
        raise ValueError('every ref needs at least one sentence: '
                         f'--sentences {num_sentences} < --refs {num_refs}')
    # Two streams, so that the sentences do not depend on the number of coordinates.
    text_rng, coord_rng = (np.random.default_rng([seed, i]) for i in range(2))
    images = [
        dict(id=i, file_name=f'COCO_train2014_{i:012d}.jpg', height=480, width=640)
        for i in range(1, num_images + 1)
    ]
    # Sentences per ref: as even as possible (RefCOCO train: 2.84 on average).
    per_ref = np.full(num_refs, num_sentences // num_refs)
    per_ref[:num_sentences % num_refs] += 1
    annotations, refs = [], []
    sent_id = 0
    for ref_id in range(num_refs):
        image_id = int(ref_id % num_images) + 1
        coords = np.round(coord_rng.uniform(0, 480, num_coords), 2).tolist()
        x, y = coords[0::2], coords[1::2]
        annotations.append(
            dict(id=ref_id + 1, image_id=image_id, category_id=1, iscrowd=0,
                 segmentation=[coords], area=1000.0,
                 bbox=[min(x), min(y), max(x) - min(x), max(y) - min(y)]))
        sentences = []
        for _ in range(int(per_ref[ref_id])):
            length = int(text_rng.integers(1, 7))
            words = [WORDS[j] for j in text_rng.integers(0, len(WORDS), length)]
            text = ' '.join(words)
            sentences.append(dict(sent_id=sent_id, raw=text, sent=text, tokens=words))
            sent_id += 1
        refs.append(
            dict(ref_id=ref_id, ann_id=ref_id + 1, image_id=image_id, split='train',
                 category_id=1, sent_ids=[s['sent_id'] for s in sentences],
                 sentences=sentences, file_name=images[image_id - 1]['file_name']))
    with open(osp.join(root, 'instances.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='object')]), f)
    with open(osp.join(root, 'refs(unc).p'), 'wb') as f:
        pickle.dump(refs, f, protocol=2)


def measure(root: str) -> Dict[str, object]:
    """Build the dataset in ``root`` and measure it."""
    dataset = RefCOCODataset(data_root=root, ann_file='instances.json',
                             split_file='refs(unc).p', split='train', sample_mode='ref',
                             serialize_data=True, lazy_init=True)
    start = time.perf_counter()
    dataset.full_init()
    build_s = time.perf_counter() - start
    pickled = len(pickle.dumps(dataset, protocol=pickle.HIGHEST_PROTOCOL))
    polygons = 0
    for i in range(dataset.num_refs):
        info = super(RefCOCODataset, dataset).get_data_info(i)
        polygons += len(pickle.dumps(info['segmentation'], protocol=pickle.HIGHEST_PROTOCOL))
    num_refs = dataset.num_refs
    dataset.sample_mode = 'sentence'
    num_sentences = len(dataset)
    index = dataset._sample_ref.nbytes + dataset._sample_sent.nbytes
    return dict(
        refs=num_refs, sentences=num_sentences, build_s=round(build_s, 2),
        pickled_bytes=pickled, polygons_bytes=polygons,
        pickled_mib=round(pickled / MIB, 2),
        data_bytes_mib=round(dataset.data_bytes.nbytes / MIB, 2),
        data_address_mib=round(dataset.data_address.nbytes / MIB, 2),
        sentence_index_mib=round(index / MIB, 2),
        polygons_mib=round(polygons / MIB, 2),
        other_mib=round((pickled - polygons) / MIB, 2),
        other_bytes_per_ref=round((pickled - polygons) / num_refs))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Size in memory of a RefCOCO-sized RefCOCODataset (synthetic content)')
    parser.add_argument('--refs', type=int, default=42404,
                        help='refs (RefCOCO unc train: 42,404)')
    parser.add_argument('--sentences', type=int, default=120624,
                        help='sentences (RefCOCO unc train: 120,624)')
    parser.add_argument('--images', type=int, default=16994,
                        help='images (RefCOCO unc train: 16,994)')
    parser.add_argument('--coords', type=int, default=100,
                        help='polygon coordinates per annotation (x and y count apart)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random content')
    parser.add_argument('--json', help='also write the result to this file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        write_refer_folder(root, args.refs, args.sentences, args.images, args.coords,
                           args.seed)
        result = measure(root)
    result.update(images=args.images, coords_per_polygon=args.coords,
                  python=platform.python_version())
    for key, value in result.items():
        print(f'{key:22s} {value}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
