"""Prepare a trained checkpoint for release (MMSegmentation's / MMEngine's convention).

Keeps the weights (``state_dict``) and ``meta`` (the training config, which ``tools/test.py``
checks, the dataset's metadata, the epoch and iteration) and drops everything that only resumes
training: the optimizer, ``param_schedulers``, ``message_hub``, and the EMA copy
(``ema_state_dict``; an EMA run's ``state_dict`` already holds the averaged weights). The file is
written as ``OUT_FILE``'s name without ``.pth`` plus the first 8 hex digits of the written file's
SHA-256, so a download can be checked against its name.

Example::

    python tools/misc/publish_model.py work_dirs/ldit_vitb_refcoco/epoch_40.pth \\
        checkpoints/ldit_vitb_refcoco.pth
    # -> checkpoints/ldit_vitb_refcoco-1a2b3c4d.pth

The input is read with the plugin's safe loader (tensors and plain data only, nothing in the file
runs) and the output written atomically (complete, or not at all).
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.checkpoint import load_checkpoint_file, save_checkpoint_file  # noqa: E402
from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402

#: What a published checkpoint keeps.
KEPT_KEYS = ('meta', 'state_dict')


def sha256_of(path: str) -> str:
    """The SHA-256 of the file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def process_checkpoint(in_file: str, out_file: str) -> str:
    """Write the published form of ``in_file`` and return its path.

    Args:
        in_file (str): A checkpoint saved by MMEngine (a dict with ``state_dict``).
        out_file (str): The output name; the file written is ``<out_file without .pth>-<first
            8 hex digits of its SHA-256>.pth``.

    Returns:
        str: The path of the file written.

    Raises:
        CommandLineError: ``in_file`` has no ``state_dict``, or ``out_file`` exists.
    """
    if osp.exists(out_file):
        # It is written, hashed and renamed: an existing file of that name would be lost.
        raise CommandLineError(f'OUT_FILE {out_file} exists; choose a name that does not')
    checkpoint = load_checkpoint_file(in_file)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise CommandLineError(f'{in_file}: not a checkpoint saved by MMEngine (no state_dict)')
    dropped = sorted(key for key in checkpoint if key not in KEPT_KEYS)
    save_checkpoint_file({key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint},
                         out_file)
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    final_file = f'{stem}-{sha256_of(out_file)[:8]}.pth'
    os.replace(out_file, final_file)
    print(f'dropped: {", ".join(dropped) or "nothing"}')
    return final_file


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Keep the weights and meta of a checkpoint and add the SHA-256 prefix')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    final_file = process_checkpoint(args.in_file, args.out_file)
    print(f'published {args.in_file} as {final_file}')
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'publish_model.py'))
