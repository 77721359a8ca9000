"""Measure how long a ``CustomReferDataset`` index takes to build and how large it is pickled.

The sibling of ``dataset_size.py`` for the custom JSON Lines format: writes a synthetic
``train.jsonl`` into a temporary folder (by default 100,000 sentences in records of 1 to 5
sentences, one polygon of 100 coordinates per record, as ``dataset_size.py``'s content), builds
``CustomReferDataset`` as a training config does (``sample_mode='ref'``, ``serialize_data=True``)
and reports ``build_s`` (``full_init``: read, check and serialise the file), ``pickled_mib`` (what
a ``spawn`` data-loader worker receives) and the file's size::

    python tools/analysis_tools/custom_dataset_size.py
    python tools/analysis_tools/custom_dataset_size.py --sentences 1000 --json size.json
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

from dit_sam_mm.datasets import CustomReferDataset  # noqa: E402
from dit_sam_mm.datasets.custom_writer import dump_record, make_record  # noqa: E402

MIB = 1024 * 1024
WORDS = ('man', 'woman', 'left', 'right', 'guy', 'girl', 'in', 'red', 'blue', 'white', 'black',
         'shirt', 'the', 'on', 'middle', 'front', 'back', 'person', 'car', 'chair', 'dog')


def write_jsonl(path: str, num_sentences: int, num_images: int, num_coords: int,
                seed: int) -> int:
    """Write ``num_sentences`` sentences in records of 1 to 5; return the records written."""
    rng = np.random.default_rng(seed)
    written = records = 0
    with open(path, 'w', encoding='utf-8') as f:
        while written < num_sentences:
            count = min(int(rng.integers(1, 6)), num_sentences - written)
            sentences = [' '.join(WORDS[j] for j in rng.integers(0, len(WORDS),
                                                                   int(rng.integers(1, 7))))
                         for _ in range(count)]
            polygon = np.round(rng.uniform(0, 480, num_coords), 2).tolist()
            f.write(dump_record(make_record(
                records, f'images/{records % num_images:012d}.jpg', 640, 480, sentences,
                [dict(polygons=[polygon])])) + '\n')
            written += count
            records += 1
    return records


def measure(root: str) -> Dict[str, object]:
    """Build the dataset in ``root`` and measure it."""
    dataset = CustomReferDataset(data_root=root, split='train', sample_mode='ref',
                                 serialize_data=True, lazy_init=True)
    start = time.perf_counter()
    dataset.full_init()
    build_s = time.perf_counter() - start
    pickled = len(pickle.dumps(dataset, protocol=pickle.HIGHEST_PROTOCOL))
    dataset.sample_mode = 'sentence'
    return dict(records=dataset.num_refs, sentences=len(dataset), build_s=round(build_s, 2),
                pickled_bytes=pickled, pickled_mib=round(pickled / MIB, 2),
                file_mib=round(osp.getsize(osp.join(root, 'train.jsonl')) / MIB, 2))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Index build time and pickled size of a CustomReferDataset')
    parser.add_argument('--sentences', type=int, default=100000, help='sentences (100,000)')
    parser.add_argument('--images', type=int, default=20000, help='images (20,000)')
    parser.add_argument('--coords', type=int, default=100,
                        help='polygon coordinates per record (x and y count apart)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the random content')
    parser.add_argument('--json', help='also write the result to this file')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        write_jsonl(osp.join(root, 'train.jsonl'), args.sentences, args.images, args.coords,
                    args.seed)
        result = measure(root)
    result.update(coords_per_polygon=args.coords, python=platform.python_version())
    for key, value in result.items():
        print(f'{key:16s} {value}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
