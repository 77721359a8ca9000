"""Write the example of docs/en/custom_data.md: a folder of images, mask PNGs and sentences.txt.

The folder is what a user with their own annotations typically has, and what
``custom_refer.py from-folder`` converts into the custom JSON Lines format::

    OUT_DIR/images/synthref_000001.jpg ...
    OUT_DIR/masks/synthref_000001_3.png ...    one mask per referred object (255 = object)
    OUT_DIR/sentences.txt                      IMAGE<TAB>MASK<TAB>SENTENCE

Its content is new SynthRef scenes (another seed than ``data/synthref``, so a model trained on
SynthRef has not seen them) with SynthRef's vocabulary, so the tiny SynthRef model can be
fine-tuned on it on a CPU in a minute::

    python tools/dataset_converters/make_custom_example.py data/custom_example
    python tools/dataset_converters/custom_refer.py from-folder data/custom_example \\
        --holdout-fraction 0.25

The same arguments give the same files.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import List, Optional

import numpy as np
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.datasets import (decode_coco_segmentation, load_refs,  # noqa: E402
                                 read_instances_json)
from dit_sam_mm.datasets.synthref import make_synthref  # noqa: E402
from dit_sam_mm.utils.cli import run_main  # noqa: E402


def write_example(out_dir: str, num_images: int, seed: int, overwrite: bool) -> int:
    """Write the folder; return the number of sentences.

    Raises:
        FileExistsError: ``out_dir/sentences.txt`` exists and ``overwrite`` is False.
    """
    sentence_file = osp.join(out_dir, 'sentences.txt')
    if osp.exists(sentence_file) and not overwrite:
        raise FileExistsError(f'{sentence_file} exists; give --overwrite to replace the example')
    with tempfile.TemporaryDirectory() as scratch:
        make_synthref(scratch, num_images=num_images, seed=seed)
        instances = read_instances_json(osp.join(scratch, 'instances.json'))
        refs = load_refs(osp.join(scratch, 'refs(unc).p'))
        images = {image['id']: image for image in instances['images']}
        annotations = {ann['id']: ann for ann in instances['annotations']}
        for sub in ('images', 'masks'):
            os.makedirs(osp.join(out_dir, sub), exist_ok=True)
        lines = []
        for ref in refs:
            image, ann = images[ref['image_id']], annotations[ref['ann_id']]
            stem = osp.splitext(image['file_name'])[0]
            mask_name = f'{stem}_{ann["id"]}.png'
            mask = decode_coco_segmentation(ann['segmentation'], image['height'], image['width'])
            Image.fromarray((mask * 255).astype(np.uint8)).save(
                osp.join(out_dir, 'masks', mask_name))
            shutil.copyfile(osp.join(scratch, 'images', image['file_name']),
                            osp.join(out_dir, 'images', image['file_name']))
            lines += [f'{image["file_name"]}\t{mask_name}\t{s["raw"]}\n'
                      for s in ref['sentences']]
    with open(sentence_file, 'w', encoding='utf-8') as f:
        f.write('# image\tmask\tsentence\n' + ''.join(lines))
    return len(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a folder of images, mask PNGs and sentences.txt (the example of '
        'docs/en/custom_data.md)')
    parser.add_argument('out_dir', help='folder to write (e.g. data/custom_example)')
    parser.add_argument('--num-images', type=int, default=160, help='images (default 160)')
    parser.add_argument('--seed', type=int, default=7, help='random seed (default 7)')
    parser.add_argument('--overwrite', action='store_true', help='replace an earlier example')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    count = write_example(args.out_dir, args.num_images, args.seed, args.overwrite)
    print(f'{count:,} sentences on {args.num_images} images -> {args.out_dir}/sentences.txt, '
          'images/, masks/')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'make_custom_example.py'))
