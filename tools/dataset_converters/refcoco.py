"""Check a RefCOCO / RefCOCO+ / RefCOCOg folder before training on it.

Expected layout (DESIGN.md section 3)::

    DATA_ROOT/coco/train2014/COCO_train2014_000000xxxxxx.jpg
    DATA_ROOT/refcoco/instances.json, refs(unc).p
    DATA_ROOT/refcoco+/instances.json, refs(unc).p
    DATA_ROOT/refcocog/instances.json, refs(umd).p, refs(google).p

Usage::

    python tools/dataset_converters/refcoco.py check data
    python tools/dataset_converters/refcoco.py check data --datasets refcoco

It reports missing files, refs whose annotation or image is missing from
``instances.json``, empty sentences, missing image files, and the number of
sentences per split compared with the published counts (a difference is a
warning, or an error with ``--strict``). Exit status 1 when anything is
missing or broken, 0 otherwise.
"""
import argparse
import json
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional, Tuple

from dit_sam_mm.datasets import load_refs
from dit_sam_mm.utils.cli import run_main

#: name -> (folder, refs file, sentences per split). RefCOCO (unc) counts
#: are those of the DIT-SAM paper's data section; the RefCOCO+ and RefCOCOg
#: counts are the commonly reported ones (their totals agree: RefCOCO+ 141,564
#: sentences, RefCOCOg umd and google both 95,010).
KNOWN_DATASETS: Dict[str, Tuple[str, str, Dict[str, int]]] = {
    'refcoco': ('refcoco', 'refs(unc).p',
                dict(train=120624, val=10834, testA=5657, testB=5059)),
    'refcoco+': ('refcoco+', 'refs(unc).p',
                 dict(train=120191, val=10758, testA=5726, testB=4889)),
    'refcocog_umd': ('refcocog', 'refs(umd).p',
                     dict(train=80512, val=4896, test=9602)),
    'refcocog_google': ('refcocog', 'refs(google).p',
                        dict(train=85474, val=9536)),
}
REFER_SOURCE = ('the REFER project (https://github.com/lichengunc/refer): '
                'refcoco.zip, refcoco+.zip, refcocog.zip hold instances.json '
                'and the refs(*).p files')
COCO_SOURCE = ('COCO 2014 train images (https://cocodataset.org/#download, '
               'train2014.zip), unpacked to')
SHOWN = 5  # examples listed per problem


class Report:
    """Collects OK / WARN / ERROR lines of a check and prints them."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.errors = 0
        self.warnings = 0

    def ok(self, message: str) -> None:
        print(f'[OK]    {message}')

    def warn(self, message: str) -> None:
        if self.strict:
            self.error(message)
            return
        self.warnings += 1
        print(f'[WARN]  {message}')

    def error(self, message: str) -> None:
        self.errors += 1
        print(f'[ERROR] {message}')


def _examples(items: List) -> str:
    shown = ', '.join(str(i) for i in items[:SHOWN])
    return shown + (f', ... ({len(items)} in all)' if len(items) > SHOWN
                    else '')


def check_dataset(data_root: str, name: str, image_dir: str,
                  report: Report) -> None:
    """Check one dataset of :data:`KNOWN_DATASETS`, writing to ``report``."""
    folder, refs_name, known = KNOWN_DATASETS[name]
    ann_file = osp.join(data_root, folder, 'instances.json')
    refs_file = osp.join(data_root, folder, refs_name)
    missing = [p for p in (ann_file, refs_file) if not osp.isfile(p)]
    if missing:
        for path in missing:
            report.error(f'{name}: missing {path}; it comes from '
                         f'{REFER_SOURCE}')
        return
    try:
        refs = load_refs(refs_file)
    except Exception as err:  # unreadable or unsafe pickle
        report.error(f'{name}: cannot read {refs_file}: {err}')
        return
    with open(ann_file, 'r', encoding='utf-8') as f:
        instances = json.load(f)
    images = {img['id']: img for img in instances.get('images', [])}
    ann_ids = {ann['id'] for ann in instances.get('annotations', [])}

    counts = Counter()
    no_ann, no_image, empty = [], [], []
    for ref in refs:
        counts[ref['split']] += len(ref['sentences'])
        if ref['ann_id'] not in ann_ids:
            no_ann.append(f'ref_id={ref["ref_id"]}/ann_id={ref["ann_id"]}')
        if ref['image_id'] not in images:
            no_image.append(
                f'ref_id={ref["ref_id"]}/image_id={ref["image_id"]}')
        for sent in ref['sentences']:
            text = sent.get('raw', sent.get('sent', ''))
            if not str(text).strip():
                empty.append(f'ref_id={ref["ref_id"]}/sent_id='
                             f'{sent.get("sent_id")}')
    for problem, items in (('refs whose annotation is not in '
                            'instances.json', no_ann),
                           ('refs whose image is not in instances.json',
                            no_image), ('empty sentences', empty)):
        if items:
            report.error(f'{name}: {len(items)} {problem}: '
                         f'{_examples(items)}')

    found = ', '.join(f'{s} {counts[s]:,}' for s in sorted(counts))
    expected = ', '.join(f'{s} {n:,}' for s, n in known.items())
    if dict(counts) == known:
        report.ok(f'{name}: {len(refs):,} refs; sentences per split match '
                  f'the published counts ({found})')
    else:
        report.warn(f'{name}: sentences per split {found} differ from the '
                    f'published counts ({expected}); a partial or modified '
                    'copy?')

    image_files = sorted({images[r['image_id']]['file_name']
                          for r in refs if r['image_id'] in images})
    absent = [f for f in image_files
              if not osp.isfile(osp.join(image_dir, f))]
    if absent:
        report.error(f'{name}: {len(absent):,} of {len(image_files):,} '
                     f'images missing under {image_dir}: {_examples(absent)}'
                     f'; they are the {COCO_SOURCE} {image_dir}')
    else:
        report.ok(f'{name}: all {len(image_files):,} images found under '
                  f'{image_dir}')


def check(data_root: str, datasets: List[str], image_dir: Optional[str],
          strict: bool) -> int:
    """Check ``datasets`` under ``data_root``; return the exit status."""
    image_dir = image_dir or osp.join(data_root, 'coco', 'train2014')
    report = Report(strict=strict)
    if not osp.isdir(image_dir):
        report.error(f'image folder {image_dir} is missing; it holds the '
                     f'{COCO_SOURCE} {image_dir}')
    for name in datasets:
        check_dataset(data_root, name, image_dir, report)
    verdict = 'FAILED' if report.errors else 'OK'
    print(f'{verdict}: {report.errors} error(s), {report.warnings} '
          f'warning(s) in {data_root}')
    return 1 if report.errors else 0


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Tools for RefCOCO-family data in the REFER layout.')
    commands = parser.add_subparsers(dest='command', required=True)
    checker = commands.add_parser(
        'check', help='validate a data folder (files, splits, images)')
    checker.add_argument('data_root', help='folder holding coco/, refcoco/, '
                         'refcoco+/, refcocog/ (usually data/)')
    checker.add_argument(
        '--datasets', nargs='+', choices=list(KNOWN_DATASETS),
        default=list(KNOWN_DATASETS), help='datasets to check (default: all)')
    checker.add_argument(
        '--image-dir', default=None,
        help='COCO train2014 folder (default: DATA_ROOT/coco/train2014)')
    checker.add_argument(
        '--strict', action='store_true',
        help='treat split-size differences as errors')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == 'check':
        return check(args.data_root, args.datasets, args.image_dir,
                     args.strict)
    return 2


if __name__ == '__main__':
    sys.exit(run_main(main, 'refcoco.py'))
