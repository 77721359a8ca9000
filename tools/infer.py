"""Label at scale: run a trained DIT-SAM model on many (image, sentence) pairs.

INPUT is a JSON Lines file of ``{"image": PATH, "sentence": TEXT, "id": ID}`` (``id``
optional) or a folder with a ``sentences.txt`` of ``IMAGE<TAB>SENTENCE`` lines (IMAGE may be a
glob pattern such as ``*.jpg``). OUT is a JSON Lines file with one record per pair, in input
order: id, image, sentence, segmentation (COCO RLE), score, no_target_prob, area::

    python tools/infer.py CONFIG CHECKPOINT pairs.jsonl predictions.jsonl --batch-size 16
    python tools/infer.py CONFIG CHECKPOINT data/photos predictions.jsonl --png-dir masks \\
        --overlay-dir overlays
    bash tools/dist_infer.sh CONFIG CHECKPOINT pairs.jsonl predictions.jsonl 4

A killed run resumes where it stopped when started again with the same arguments (records are
appended to ``OUT.parts/`` and skipped when present). ``custom_refer.py from-predictions`` turns
OUT into the custom training format. See ``docs/en/custom_data.md#label-at-scale`` and
:mod:`dit_sam_mm.apis.batch_inference`.
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from mmengine.utils.dl_utils import set_multi_processing  # noqa: E402

from dit_sam_mm.apis import ReferSegInferencer  # noqa: E402
from dit_sam_mm.apis.batch_inference import (barrier, done_records, init_processes,  # noqa: E402
                                             merge_parts, run_batch_inference)
from dit_sam_mm.apis.inference_inputs import (Pair, check_unique_ids,  # noqa: E402
                                              read_folder_pairs, read_jsonl_pairs)
from dit_sam_mm.datasets.image_limits import DEFAULT_MAX_PIXELS  # noqa: E402
from dit_sam_mm.utils.cli import ensure_writable_dir, run_main  # noqa: E402
from dit_sam_mm.utils.launch import CfgOptionsAction, apply_cpu_threads  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment the object each sentence refers to, for many (image, sentence) '
        'pairs; resumable, multi-process through tools/dist_infer.sh')
    parser.add_argument('config', help='the config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='the trained checkpoint')
    parser.add_argument('input', help='a JSON Lines file of {"image", "sentence", "id"} or a '
                        'folder with sentences.txt (IMAGE<TAB>SENTENCE lines)')
    parser.add_argument('out', help='the predictions, one JSON line per pair (COCO RLE)')
    parser.add_argument('--image-root', default=None,
                        help='folder the image paths are relative to (default: the JSON Lines '
                        "file's folder, or the input folder)")
    parser.add_argument('--sentences', default=None,
                        help='the sentence file of a folder input (default FOLDER/sentences.txt)')
    parser.add_argument('--batch-size', type=int, default=8, help='pairs per batch (default 8)')
    parser.add_argument('--num-workers', type=int, default=None,
                        help='worker processes that read and preprocess the next batches while '
                        "the model runs; 0: in this process (default: the config's "
                        'test_dataloader.num_workers, else 0)')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1 ... (default: the local rank\'s GPU if there '
                        'is one, else the CPU)')
    parser.add_argument('--png-dir', default=None,
                        help='also write each mask as ID.png (0 / 255) there')
    parser.add_argument('--overlay-dir', default=None,
                        help='also write a picture of each prediction (overlay and sentence) '
                        'as ID.png there')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help='refuse images whose header claims more pixels (default '
                        f'{DEFAULT_MAX_PIXELS:,})')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config entries, e.g. model.decode_head.threshold=0.4')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (tools/dist_infer.sh passes pytorch)')
    return parser.parse_args(argv)


def read_pairs(args: argparse.Namespace) -> List[Pair]:
    """The input's pairs, ids checked (and their PNG names when pictures are written)."""
    if osp.isdir(args.input):
        pairs = read_folder_pairs(args.input, args.sentences, args.image_root)
    elif args.sentences:
        raise ValueError(f'--sentences is for a folder input; {args.input} is not a folder')
    else:
        pairs = read_jsonl_pairs(args.input, args.image_root)
    if not pairs:
        raise ValueError(f'{args.input} holds no (image, sentence) pair')
    check_unique_ids(pairs)
    if args.png_dir or args.overlay_dir:
        check_unique_ids(pairs, file_names=True)
    return pairs


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    rank, world_size = init_processes(args.launcher)
    pairs = read_pairs(args)
    ensure_writable_dir(osp.dirname(osp.abspath(args.out)), 'OUT')
    done = done_records(args.out, pairs)
    barrier(world_size)  # every rank has read the part files before any rank appends
    device = args.device or (f'cuda:{os.environ.get("LOCAL_RANK", "0")}'
                             if torch.cuda.is_available() else 'cpu')
    inferencer = ReferSegInferencer(args.config, args.checkpoint, device, args.cfg_options,
                                    batch_size=args.batch_size, max_pixels=args.max_pixels)
    # As tools/test.py runs the config: its CPU threads, worker start method and OpenCV threads.
    cfg = inferencer.cfg
    apply_cpu_threads(cfg)
    mp_cfg = dict(cfg.get('env_cfg', {}).get('mp_cfg', {}))
    set_multi_processing(**mp_cfg, distributed=world_size > 1)
    num_workers = (args.num_workers if args.num_workers is not None else
                   cfg.get('test_dataloader', {}).get('num_workers', 0))
    stats = run_batch_inference(inferencer, pairs, args.out, done, args.batch_size, rank,
                                world_size, args.png_dir, args.overlay_dir,
                                progress=not args.no_progress and rank == 0,
                                num_workers=num_workers,
                                mp_start_method=mp_cfg.get('mp_start_method'))
    print(f'rank {rank}/{world_size}: {stats.written:,} pairs predicted in '
          f'{stats.seconds:.1f} s ({stats.samples_per_s:.2f} samples/s, '
          f'{stats.samples_per_cpu_s:.2f} per CPU second), {stats.skipped:,} already written',
          flush=True)
    barrier(world_size)
    if rank == 0:
        print(f'{merge_parts(args.out, pairs):,} predictions -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'infer.py'))
