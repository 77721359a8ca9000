"""Check a RefCOCO / RefCOCO+ / RefCOCOg / gRefCOCO folder before training.

Expected layout (DESIGN.md section 3)::

    DATA_ROOT/coco/train2014/COCO_train2014_000000xxxxxx.jpg
    DATA_ROOT/refcoco/instances.json, refs(unc).p
    DATA_ROOT/refcoco+/instances.json, refs(unc).p
    DATA_ROOT/refcocog/instances.json, refs(umd).p, refs(google).p
    DATA_ROOT/grefcoco/instances.json, grefs(unc).json   (optional)

Usage::

    python tools/dataset_converters/refcoco.py check data
    python tools/dataset_converters/refcoco.py check data --datasets refcoco
    python tools/dataset_converters/refcoco.py check data --datasets grefcoco

It reports missing files, a damaged ``instances.json``, a refs file that is
empty or malformed, refs whose annotation or image is missing from
``instances.json``, empty sentences or ones whose text is not a string,
missing or unreadable image files (empty, no image, more than
``--max-pixels`` pixels, or another size than ``instances.json`` says), and
the number of sentences per split compared with
the published counts (a difference is a warning, or an error with
``--strict``). For gRefCOCO (checked only when named) it reports the
sentences per split, the shares of no-target and multi-target sentences, and
malformed ``ann_id`` lists; its totals are compared with the GRES paper's.
Images are checked by their header (fast); ``--decode-images`` decodes each
one fully as training does. Exit status 1 when anything is missing or
broken, 0 otherwise.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

from dit_sam_mm.datasets import (gref_targets, load_refs, read_grefs_file,
                                 read_image_file, read_instances_json)
from dit_sam_mm.datasets.image_limits import (DEFAULT_MAX_PIXELS,
                                              ImageTooLargeError,
                                              check_image_size,
                                              check_max_pixels)
from dit_sam_mm.datasets.refer_pickle import brief_repr
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
    'grefcoco': ('grefcoco', 'grefs(unc).json', {}),
}
#: Checked when --datasets is not given (gRefCOCO is optional).
DEFAULT_DATASETS = ['refcoco', 'refcoco+', 'refcocog_umd', 'refcocog_google']
#: gRefCOCO totals of the GRES paper (CVPR 2023), compared instead of
#: per-split counts; its multi-target (80,022) and no-target (32,202)
#: sentence counts are shown beside the ones found.
GREFCOCO_PUBLISHED = dict(sentences=278232, images=19994, multi=80022,
                          no_target=32202)
GREFCOCO_SOURCE = ('the GRES project (https://github.com/henghuiding/gRefCOCO):'
                   ' grefs(unc).json and instances.json')
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


def image_problem(path: str, size: Tuple[int, int], decode: bool = False,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> Optional[str]:
    """Why an image file cannot be trained on, or None when it can.

    Args:
        path (str): The image file (it exists).
        size (tuple[int, int]): (width, height) recorded in instances.json
            (None where it records none: then the size is not compared).
        decode (bool): Decode the whole image as the data pipeline does
            (OpenCV, EXIF orientation ignored) instead of reading only its
            header. Defaults to False.
        max_pixels (int): Larger images are refused (from the header, before
            decoding), as ``LoadReferImageFromFile`` refuses them. Defaults
            to ``DEFAULT_MAX_PIXELS``.

    Returns:
        str | None: The problem: empty, not readable as an image, more pixels
        than ``max_pixels``, or another size than recorded.
    """
    if osp.getsize(path) == 0:
        return 'empty file, 0 bytes'
    try:
        if decode:
            height, width = read_image_file(
                path, color_type='color_ignore_orientation',
                max_pixels=max_pixels).shape[:2]
        else:
            width, height = check_image_size(path, max_pixels=max_pixels)
    except ImageTooLargeError as err:
        return (f'{err.width}x{err.height} = {err.pixels:,} pixels, more than '
                f'--max-pixels {err.max_pixels:,}')
    except (OSError, ValueError) as err:
        return f'not readable as an image: {err}'
    if None not in size and (width, height) != tuple(size):
        return (f'{width}x{height} pixels, but instances.json says '
                f'{size[0]}x{size[1]}')
    return None


class ImageChecker:
    """Checks image files, each once (the RefCOCO family shares COCO's).

    Args:
        decode (bool): Decode each image fully instead of reading its header.
            Defaults to False.
        max_pixels (int): Larger images are refused (see
            :func:`image_problem`). Defaults to ``DEFAULT_MAX_PIXELS``.
    """

    def __init__(self, decode: bool = False,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.decode = decode
        self.max_pixels = check_max_pixels(max_pixels, '--max-pixels')
        self._problems: Dict[str, Optional[str]] = {}

    def problems(self, sizes: Dict[str, Tuple[int, int]]) -> Dict[str, str]:
        """The problems of the files in ``sizes`` that cannot be used.

        Args:
            sizes (dict): Image file -> (width, height) in instances.json.

        Returns:
            dict: Image file -> problem (see :func:`image_problem`), for the
            bad ones only.
        """
        todo = [path for path in sizes if path not in self._problems]
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            found = pool.map(
                lambda path: image_problem(path, sizes[path], self.decode,
                                           self.max_pixels),
                todo)
            self._problems.update(zip(todo, found))
        return {path: self._problems[path] for path in sizes
                if self._problems[path] is not None}


def _examples(items: List) -> str:
    shown = ', '.join(str(i) for i in items[:SHOWN])
    return shown + (f', ... ({len(items)} in all)' if len(items) > SHOWN
                    else '')


def _ref_targets(name: str, ref: dict, refs_file: str) -> Tuple[List, bool]:
    """Target annotation ids of a ref and its no-target flag.

    Raises:
        ValueError: A malformed gRefCOCO ``ann_id`` (see ``gref_targets``).
    """
    if name == 'grefcoco':
        return gref_targets(ref, refs_file)
    return [ref['ann_id']], False


def _percent(part: int, whole: int) -> str:
    return f'{part:,} ({100 * part / max(whole, 1):.1f}%)'


def _report_gref_counts(name: str, refs: List[dict], counts: Counter,
                        shares: Counter, report: Report) -> None:
    """Totals against the GRES paper's, and the no/multi-target shares."""
    total = sum(counts.values())
    images = len({ref['image_id'] for ref in refs})
    found = ', '.join(f'{s} {counts[s]:,}' for s in sorted(counts))
    paper = GREFCOCO_PUBLISHED
    summary = (f'{name}: {len(refs):,} grefs, {total:,} sentences over '
               f'{images:,} images (per split: {found})')
    if (total, images) == (paper['sentences'], paper['images']):
        report.ok(f'{summary}, as published')
    else:
        report.warn(f"{summary} differ from the GRES paper's "
                    f"{paper['sentences']:,} sentences over "
                    f"{paper['images']:,} images; a partial or modified copy?")
    report.ok(f"{name}: no-target sentences {_percent(shares['no'], total)},"
              f" multi-target {_percent(shares['multi'], total)} (GRES "
              f"paper: {paper['no_target']:,} and {paper['multi']:,} of "
              f"{paper['sentences']:,})")


def check_dataset(data_root: str, name: str, image_dir: str,
                  report: Report, image_checker: ImageChecker) -> None:
    """Check one dataset of :data:`KNOWN_DATASETS`, writing to ``report``.

    Args:
        data_root (str): Folder holding the dataset folders.
        name (str): A key of :data:`KNOWN_DATASETS`.
        image_dir (str): Folder of the images.
        report (Report): Collects the findings.
        image_checker (ImageChecker): Checks the image files.
    """
    folder, refs_name, known = KNOWN_DATASETS[name]
    generalized = name == 'grefcoco'
    ann_file = osp.join(data_root, folder, 'instances.json')
    refs_file = osp.join(data_root, folder, refs_name)
    pickled = osp.splitext(refs_file)[0] + '.p'  # some gRefCOCO copies
    if generalized and not osp.isfile(refs_file) and osp.isfile(pickled):
        refs_file = pickled
    missing = [p for p in (ann_file, refs_file) if not osp.isfile(p)]
    if missing:
        for path in missing:
            report.error(f'{name}: missing {path}; it comes from '
                         f'{GREFCOCO_SOURCE if generalized else REFER_SOURCE}')
        return
    try:
        refs = (read_grefs_file if generalized else load_refs)(refs_file)
    except Exception as err:  # unreadable or unsafe pickle
        report.error(f'{name}: cannot read {refs_file}: {err}')
        return
    try:
        instances = read_instances_json(ann_file)
    except ValueError as err:  # truncated or not an instances.json
        report.error(f'{name}: {err}')
        return
    images = {img['id']: img for img in instances['images']}
    ann_ids = {ann['id'] for ann in instances['annotations']}

    counts, shares = Counter(), Counter()
    no_ann, no_image, empty, not_text, malformed = [], [], [], [], []
    for ref in refs:
        sentences = len(ref['sentences'])
        counts[ref['split']] += sentences
        try:
            targets, no_target = _ref_targets(name, ref, refs_file)
        except ValueError:
            targets, no_target = [], False
            malformed.append(
                f'ref_id={ref["ref_id"]}/ann_id={brief_repr(ref["ann_id"])}')
        shares['no'] += sentences * no_target
        shares['multi'] += sentences * (len(targets) > 1)
        no_ann += [f'ref_id={ref["ref_id"]}/ann_id={ann_id}'
                   for ann_id in targets if ann_id not in ann_ids]
        if ref['image_id'] not in images:
            no_image.append(
                f'ref_id={ref["ref_id"]}/image_id={ref["image_id"]}')
        for sent in ref['sentences']:
            key = 'raw' if 'raw' in sent else 'sent'
            text = sent.get(key, '')
            where = f'ref_id={ref["ref_id"]}/sent_id={sent.get("sent_id")}'
            if not isinstance(text, str):
                not_text.append(f'{where} ({key} = {brief_repr(text)}, not a '
                                'string)')
            elif not text.strip():
                empty.append(where)
    for problem, items in (('annotation ids of refs not in '
                            'instances.json', no_ann),
                           ('refs whose image is not in instances.json',
                            no_image), ('empty sentences', empty),
                           ('sentences whose text is not a string', not_text),
                           ('grefs whose ann_id is malformed (-1 among '
                            'annotation ids, empty, not ints, or against '
                            'no_target)', malformed)):
        if items:
            report.error(f'{name}: {len(items)} {problem}: '
                         f'{_examples(items)}')

    found = ', '.join(f'{s} {counts[s]:,}' for s in sorted(counts))
    expected = ', '.join(f'{s} {n:,}' for s, n in known.items())
    if generalized:
        _report_gref_counts(name, refs, counts, shares, report)
    elif dict(counts) == known:
        report.ok(f'{name}: {len(refs):,} refs; sentences per split match '
                  f'the published counts ({found})')
    else:
        report.warn(f'{name}: sentences per split {found} differ from the '
                    f'published counts ({expected}); a partial or modified '
                    'copy?')

    sizes = {images[r['image_id']]['file_name']:
             (images[r['image_id']].get('width'),
              images[r['image_id']].get('height'))
             for r in refs if r['image_id'] in images}
    image_files = sorted(sizes)
    absent = [f for f in image_files
              if not osp.isfile(osp.join(image_dir, f))]
    if absent:
        report.error(f'{name}: {len(absent):,} of {len(image_files):,} '
                     f'images missing under {image_dir}: {_examples(absent)}'
                     f'; they are the {COCO_SOURCE} {image_dir}')
    present = {osp.join(image_dir, f): sizes[f]
               for f in sorted(set(image_files) - set(absent))}
    bad = image_checker.problems(present)
    if bad:
        report.error(f'{name}: {len(bad):,} of {len(image_files):,} images '
                     f'under {image_dir} cannot be used: ' + _examples(
                         [f'{osp.relpath(p, image_dir)} ({problem})'
                          for p, problem in bad.items()])
                     + '; download them again')
    if not absent and not bad:
        how = ('decoded' if image_checker.decode else
               'headers read; --decode-images decodes them fully')
        report.ok(f'{name}: all {len(image_files):,} images found under '
                  f'{image_dir} and readable ({how})')


def check(data_root: str, datasets: List[str], image_dir: Optional[str],
          strict: bool, decode_images: bool = False,
          max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """Check ``datasets`` under ``data_root``; return the exit status.

    Args:
        data_root (str): Folder holding coco/, refcoco/, ...
        datasets (List[str]): Names of :data:`KNOWN_DATASETS` to check.
        image_dir (str, optional): COCO train2014 folder. Defaults to
            ``DATA_ROOT/coco/train2014``.
        strict (bool): Split-size differences are errors.
        decode_images (bool): Decode every image fully instead of reading its
            header. Defaults to False.
        max_pixels (int): Images with more pixels are errors (read from the
            header). Defaults to ``DEFAULT_MAX_PIXELS``.

    Returns:
        int: 1 when an error was found, else 0.
    """
    image_dir = image_dir or osp.join(data_root, 'coco', 'train2014')
    report = Report(strict=strict)
    if not osp.isdir(image_dir):
        report.error(f'image folder {image_dir} is missing; it holds the '
                     f'{COCO_SOURCE} {image_dir}')
    image_checker = ImageChecker(decode=decode_images, max_pixels=max_pixels)
    for name in datasets:
        check_dataset(data_root, name, image_dir, report, image_checker)
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
                         'refcoco+/, refcocog/, grefcoco/ (usually data/)')
    checker.add_argument(
        '--datasets', nargs='+', choices=list(KNOWN_DATASETS),
        default=DEFAULT_DATASETS,
        help='datasets to check (default: the four RefCOCO ones; name '
        'grefcoco to check gRefCOCO)')
    checker.add_argument(
        '--image-dir', default=None,
        help='COCO train2014 folder (default: DATA_ROOT/coco/train2014)')
    checker.add_argument(
        '--strict', action='store_true',
        help='treat split-size differences as errors')
    checker.add_argument(
        '--decode-images', action='store_true',
        help='decode every image fully, as training does (slower); by default '
        'only the image headers are read')
    checker.add_argument(
        '--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
        help='images with more pixels are errors, as LoadReferImageFromFile '
        f'refuses them (default: {DEFAULT_MAX_PIXELS})')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == 'check':
        return check(args.data_root, args.datasets, args.image_dir,
                     args.strict, args.decode_images, args.max_pixels)
    return 2


if __name__ == '__main__':
    sys.exit(run_main(main, 'refcoco.py'))
