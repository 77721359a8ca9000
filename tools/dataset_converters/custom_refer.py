"""Convert your own referring-segmentation data into the custom JSON Lines format.

Sub-commands (``docs/en/custom_data.md`` describes the format and each source layout)::

    # a folder of images/, masks/ and sentences.txt (IMAGE<TAB>MASKS<TAB>SENTENCE)
    python tools/dataset_converters/custom_refer.py from-folder data/mine --holdout-fraction 0.2
    # a COCO instances.json and a CSV / JSON table of (ann_ids, sentence)
    python tools/dataset_converters/custom_refer.py from-coco instances.json sentences.csv \\
        --out-dir data/mine
    # LabelMe JSON files whose shape labels are the sentences
    python tools/dataset_converters/custom_refer.py from-labelme data/labelme --out-dir data/lm
    # the predictions of tools/infer.py, to correct and train on
    python tools/dataset_converters/custom_refer.py from-predictions predictions.jsonl \
        --out-dir data/labelled
    # check split files: format, images, degenerate targets, sentences, duplicate ids
    python tools/dataset_converters/custom_refer.py check data/mine --splits train val \
        --vocab-file data/mine/vocab.txt

Each from-* command writes ``OUT_DIR/{split}.jsonl``, with image paths relative to the image root it prints.
Every record is checked as the dataset reads it before anything is written, and each file is
written to a temporary file renamed when complete: a refused input (one line naming the file,
line and field, exit status 1) leaves nothing behind. Existing files are replaced only with
``--overwrite``.

``check`` reads every record of the split files (all problems listed, not only the first):
format errors, duplicate ids, masks or RLE of another size than the image, polygons that
enclose no area and objects that cover no pixel, missing or unreadable images and images of
another size than their records say, and, with ``--vocab-file`` or ``--tokenizer``, sentences
that tokenize to nothing (an error) or only to ``[UNK]`` (a warning). Exit status 1 when it
finds an error.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

TOOLS_DIR = osp.dirname(osp.abspath(__file__))
if TOOLS_DIR not in sys.path:  # the REFER checker's report and image checks
    sys.path.insert(0, TOOLS_DIR)

from refcoco import ImageChecker, Report  # noqa: E402

from dit_sam_mm.datasets import build_bert_tokenizer  # noqa: E402
from dit_sam_mm.datasets.converters import (convert_coco, convert_folder,  # noqa: E402
                                            convert_labelme, convert_predictions)
from dit_sam_mm.datasets.custom_check import check_split_file, tokenizer_check  # noqa: E402
from dit_sam_mm.datasets.custom_writer import write_custom_splits  # noqa: E402
from dit_sam_mm.utils.cli import run_main  # noqa: E402


def _add_output(parser: argparse.ArgumentParser, out_help: str) -> None:
    parser.add_argument('--out-dir', default=None, help=out_help)
    parser.add_argument('--split', default='train',
                        help='split of the records (the file name: SPLIT.jsonl); default train')
    parser.add_argument('--overwrite', action='store_true', help='replace existing files')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert referring-segmentation data into the custom JSON Lines format')
    commands = parser.add_subparsers(dest='command', required=True)
    folder = commands.add_parser('from-folder', help='images/, masks/ and sentences.txt')
    folder.add_argument('folder', help='folder holding images/, masks/ and sentences.txt')
    _add_output(folder, 'where to write SPLIT.jsonl (default: the folder itself, which is '
                'the image root)')
    folder.add_argument('--holdout-split', default='val',
                        help='split of the held-out images (default val)')
    folder.add_argument('--holdout-fraction', type=float, default=0.0,
                        help='share of the images held out, chosen by a hash of their path '
                        '(default 0)')
    coco = commands.add_parser('from-coco', help='COCO instances.json + (ann_ids, sentence)')
    coco.add_argument('instances', help='COCO instances.json')
    coco.add_argument('table', help='CSV (with a header) or JSON list of rows: ann_ids, '
                      'sentence, and optionally image_id, split, id')
    _add_output(coco, 'where to write SPLIT.jsonl (default: beside instances.json); image '
                "paths are COCO's file_name, relative to the COCO image folder")
    labelme = commands.add_parser('from-labelme', help='LabelMe JSON files')
    labelme.add_argument('folder', help='folder of LabelMe *.json files and their images')
    _add_output(labelme, 'where to write SPLIT.jsonl (default: the folder itself, which is '
                'the image root)')
    labelme.add_argument('--sentence-from', choices=['label', 'description'], default='label',
                         help='shape field holding the sentence (default label)')
    predictions = commands.add_parser('from-predictions',
                                      help='the predictions of tools/infer.py')
    predictions.add_argument('predictions', help='the JSON Lines output of tools/infer.py')
    _add_output(predictions, 'where to write SPLIT.jsonl (default: beside the predictions); '
                'image paths stay relative to the image root tools/infer.py read them from')
    checker = commands.add_parser('check', help='check split files of the custom format')
    checker.add_argument('data_root', help='folder of the SPLIT.jsonl files')
    checker.add_argument('--splits', nargs='+', default=['train', 'val'],
                         help='splits to check (default: train val)')
    checker.add_argument('--ann-file', default='{split}.jsonl',
                         help='file name pattern under DATA_ROOT (default {split}.jsonl)')
    checker.add_argument('--image-root', default=None,
                         help='folder the image paths are relative to (default DATA_ROOT)')
    words = checker.add_mutually_exclusive_group()
    words.add_argument('--vocab-file', help="the model's WordPiece vocab.txt")
    words.add_argument('--tokenizer', help="the model's local tokenizer folder")
    checker.add_argument('--decode-images', action='store_true',
                         help='decode every image fully (slower); by default only the header')
    checker.add_argument('--show', type=int, default=20,
                         help='problems of each kind listed per split, the rest counted '
                         '(default 20)')
    return parser.parse_args(argv)


def _listed(report: Report, lines: List[str], error: bool, shown: int) -> None:
    """Report the first ``shown`` lines one by one and the rest as a count."""
    for line in lines[:shown]:
        (report.error if error else report.warn)(line)
    if len(lines) > shown:
        (report.error if error else report.warn)(
            f'... and {len(lines) - shown} more like these')


def check(args: argparse.Namespace) -> int:
    """Check the split files; return the exit status."""
    image_root = args.image_root or args.data_root
    sentence_check = None
    if args.vocab_file or args.tokenizer:
        sentence_check = tokenizer_check(build_bert_tokenizer(args.tokenizer, args.vocab_file))
    report = Report()
    images = ImageChecker(decode=args.decode_images)
    for split in args.splits:
        path = osp.join(args.data_root, args.ann_file.replace('{split}', split))
        found = check_split_file(path, split, image_root, sentence_check)
        _listed(report, found.errors, True, args.show)
        _listed(report, found.warnings, False, args.show)
        files = {osp.join(image_root, name): size for name, size in found.images.items()}
        absent = sorted(name for name in found.images
                        if not osp.isfile(osp.join(image_root, name)))
        _listed(report, [f'{path}: image {name} not found under {image_root}'
                         for name in absent], True, args.show)
        bad = images.problems({p: s for p, s in files.items() if osp.isfile(p)})
        _listed(report, [f'{path}: image {osp.relpath(p, image_root)}: {problem}'
                         for p, problem in bad.items()], True, args.show)
        report.ok(f'{split}: {found.records:,} records, {found.sentences:,} sentences on '
                  f'{len(found.images):,} images; no-target sentences {found.no_target:,}, '
                  f'multi-target {found.multi_target:,}'
                  + ('' if sentence_check else '; sentences not tokenized (give '
                     '--vocab-file or --tokenizer)'))
    verdict = 'FAILED' if report.errors else 'OK'
    print(f'{verdict}: {report.errors} error(s), {report.warnings} warning(s) in '
          f'{args.data_root}')
    return 1 if report.errors else 0


def convert(args: argparse.Namespace) -> Dict[str, List[dict]]:
    """The records of the sub-command's input, split -> records."""
    if args.command == 'from-folder':
        if not 0.0 <= args.holdout_fraction < 1.0:
            raise ValueError(f'--holdout-fraction must be in [0, 1), got '
                             f'{args.holdout_fraction}')
        return convert_folder(args.folder, args.split, args.holdout_split,
                              args.holdout_fraction)
    if args.command == 'from-coco':
        return convert_coco(args.instances, args.table, args.split)
    if args.command == 'from-predictions':
        return convert_predictions(args.predictions, args.split)
    return convert_labelme(args.folder, args.split, args.sentence_from)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == 'check':
        return check(args)
    image_root = getattr(args, 'folder', None)
    source = getattr(args, 'instances', None) or getattr(args, 'predictions', None)
    out_dir = args.out_dir or image_root or osp.dirname(osp.abspath(source))
    splits = convert(args)
    # Mask files are already RLE and COCO records name no file, so nothing is read there.
    paths = write_custom_splits(splits, out_dir, image_root or out_dir, args.overwrite)
    for split, path in paths.items():
        records = splits[split]
        sentences = sum(len(r['sentences']) for r in records)
        print(f'{split}: {len(records):,} records, {sentences:,} sentences -> {path}')
    if image_root:
        print(f'image root (data_prefix img_path): {image_root}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'custom_refer.py'))
