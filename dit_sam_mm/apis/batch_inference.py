"""Batch inference for labelling at scale: resumable, multi-process, COCO-RLE JSON Lines out.

:func:`run_batch_inference` segments the pairs of :mod:`.inference_inputs` with a
:class:`~dit_sam_mm.apis.ReferSegInferencer` and writes one JSON line per pair::

    {"id": 3, "image": "street/0007.jpg", "sentence": "the red car",
     "segmentation": {"size": [480, 640], "counts": "..."}, "score": 0.91,
     "no_target_prob": 0.02, "area": 5210}

``segmentation`` is the mask as a compressed COCO RLE (:func:`~dit_sam_mm.datasets.mask_codec.
encode_mask`), ``score`` the mean probability inside the mask (0 for an empty one),
``no_target_prob`` the no-target branch's probability (null for a model without it) and ``area``
the mask's pixels.

**Batches and processes.** The input is cut into batches of ``batch_size`` pairs in input order;
batch ``b`` belongs to rank ``b % world_size``. A batch is always run whole, so every pair is
predicted in the same batch, with the same neighbours, whatever the number of processes or
interruptions: the output does not depend on them. Each rank's data-loader workers
(:mod:`.pair_loader`) read and preprocess its next batches while the model runs.

**Resume.** Each rank appends its records to ``OUT.parts/rank{R}.jsonl`` and flushes them after
every batch. On a new run every record already in ``OUT`` or any part file counts as done; a
batch whose pairs are all done is skipped, another is run whole and only its missing records are
written. A last line without its line break (a process killed while writing) is not a record: the
rank that owns the file cuts it off before appending, and readers ignore it. A record whose id
the input does not hold, or holds for another image or sentence, is refused (the output belongs
to another input). :func:`merge_parts` (rank 0, after all ranks finished) writes ``OUT`` in input
order, atomically, then removes the part files.
"""
import json
import os
import os.path as osp
import sys
import time
from datetime import timedelta
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import mmcv
import numpy as np
import torch.distributed as torch_dist
from mmengine.utils import ProgressBar

from ..datasets.custom_writer import dump_record
from ..datasets.mask_codec import encode_mask
from ..checkpoint.safe_load import atomic_write
from .inference_inputs import Pair, PairId, file_stem
from .inferencer import ReferSegInferencer
from .pair_loader import build_pair_loader
from .refer_result import ReferSegResult


#: How long a rank waits at a barrier for the others: on a resumed run one rank may have nothing
#: left to do while another has hours of work.
BARRIER_TIMEOUT = timedelta(days=7)


def init_processes(launcher: str) -> Tuple[int, int]:
    """Join the processes of a launcher (``'pytorch'``: torchrun's ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) with a gloo group, used only for barriers.

    Args:
        launcher (str): ``'none'`` (one process) or ``'pytorch'``.

    Returns:
        tuple[int, int]: This process' rank and the number of processes.
    """
    if launcher == 'none':
        return 0, 1
    if launcher != 'pytorch':
        raise ValueError(f"--launcher must be 'none' or 'pytorch', got {launcher!r}")
    if not torch_dist.is_initialized():
        torch_dist.init_process_group('gloo', init_method='env://', timeout=BARRIER_TIMEOUT)
    return torch_dist.get_rank(), torch_dist.get_world_size()


def barrier(world_size: int) -> None:
    """Wait for every process (nothing to wait for with one)."""
    if world_size > 1:
        torch_dist.barrier()


class RunStats(NamedTuple):
    """What one rank did.

    Attributes:
        written (int): Records written by this run.
        skipped (int): Pairs of this rank already in the output.
        seconds (float): Wall-clock time of the batches run (reading images, the model,
            encoding and writing).
        cpu_seconds (float): CPU time of this process (all its threads) and of its
            data-loader workers in that time.
    """
    written: int
    skipped: int
    seconds: float
    cpu_seconds: float

    @property
    def samples_per_s(self) -> float:
        """Records written per second."""
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def samples_per_cpu_s(self) -> float:
        """Records written per CPU second."""
        return self.written / self.cpu_seconds if self.cpu_seconds else 0.0


def parts_dir(out: str) -> str:
    """The folder of the part files of ``out`` (``OUT.parts``)."""
    return f'{out}.parts'


def part_file(out: str, rank: int) -> str:
    """The part file rank ``rank`` appends to."""
    return osp.join(parts_dir(out), f'rank{rank}.jsonl')


def prediction_record(pair: Pair, result: ReferSegResult) -> dict:
    """The output record of one pair.

    Args:
        pair (Pair): The pair.
        result (ReferSegResult): Its prediction.

    Returns:
        dict: ``id``, ``image``, ``sentence``, ``segmentation`` (COCO RLE, ``counts`` a
        string, ``size`` [h, w]), ``score``, ``no_target_prob`` (None without the branch),
        ``area``.
    """
    return dict(id=pair.id, image=pair.image, sentence=pair.sentence,
                segmentation=encode_mask(result.mask), score=result.score,
                no_target_prob=result.no_target_prob, area=result.area)


def read_records(path: str) -> Iterator[Tuple[int, dict]]:
    """The complete records of an output or part file, with their line numbers.

    A last line without its line break is left out (the writer was killed while writing it).

    Args:
        path (str): The file; a missing file holds no record.

    Yields:
        tuple[int, dict]: Line number and record.

    Raises:
        ValueError: A complete line is not a JSON object with an ``id`` (file and line named).
    """
    if not osp.isfile(path):
        return
    with open(path, 'rb') as f:
        for number, raw in enumerate(f, start=1):
            if not raw.endswith(b'\n'):
                return
            try:
                record = json.loads(raw)
            except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
                raise ValueError(f'{path}, line {number}: not a prediction record ({err}); the '
                                 'file was changed by hand: fix or delete the line') from None
            if not isinstance(record, dict) or 'id' not in record:
                raise ValueError(f'{path}, line {number}: id: missing; not a prediction record')
            yield number, record


def done_records(out: str, pairs: List[Pair]) -> Dict[PairId, dict]:
    """The records already written for ``pairs``, in ``out`` and every part file.

    Args:
        out (str): The output file.
        pairs (list[Pair]): The input.

    Returns:
        dict: Pair id -> record.

    Raises:
        ValueError: A record's id is not in the input, or the input gives it another image or
            sentence (file and line of both named).
    """
    by_id = {pair.id: pair for pair in pairs}
    folder = parts_dir(out)
    files = [out] + ([osp.join(folder, name) for name in sorted(os.listdir(folder))
                      if name.endswith('.jsonl')] if osp.isdir(folder) else [])
    done: Dict[PairId, dict] = {}
    for path in files:
        for number, record in read_records(path):
            pair = by_id.get(record['id'])
            if pair is None or (record.get('image'), record.get('sentence')) != (pair.image,
                                                                                pair.sentence):
                given = ('does not hold it' if pair is None else
                         f'gives it {pair.image!r}, {pair.sentence!r} ({pair.where})')
                raise ValueError(f'{path}, line {number}: id: {record["id"]!r} was predicted '
                                 f'for another input (this input {given}); write to another '
                                 'output file or delete this one')
            done.setdefault(record['id'], record)
    return done


def cut_partial_line(path: str) -> None:
    """Cut a last line without its line break off ``path`` (a kill while writing it)."""
    if not osp.isfile(path):
        return
    with open(path, 'rb+') as f:
        end = keep = f.seek(0, os.SEEK_END)
        while keep > 0:
            step = min(keep, 65536)
            f.seek(keep - step)
            newline = f.read(step).rfind(b'\n')
            if newline >= 0:
                keep += newline + 1 - step
                break
            keep -= step
        if keep != end:
            f.truncate(keep)


def write_lines(f, lines: List[str]) -> None:
    """Append the records' lines to the part file and flush them to the OS (a kill of the
    process loses nothing written)."""
    f.write(''.join(line + '\n' for line in lines).encode('utf-8'))
    f.flush()


def _write_pictures(pair: Pair, result: ReferSegResult, png_dir: Optional[str],
                    overlay_dir: Optional[str]) -> None:
    if png_dir:
        mmcv.imwrite(result.mask.astype(np.uint8) * 255,
                     osp.join(png_dir, f'{file_stem(pair.id)}.png'))
    if overlay_dir:
        mmcv.imwrite(mmcv.rgb2bgr(result.visualization),
                     osp.join(overlay_dir, f'{file_stem(pair.id)}.png'))


def run_batch_inference(inferencer: ReferSegInferencer, pairs: List[Pair], out: str,
                        done: Dict[PairId, dict], batch_size: int, rank: int = 0,
                        world_size: int = 1,
                        png_dir: Optional[str] = None, overlay_dir: Optional[str] = None,
                        progress: bool = True, num_workers: int = 0,
                        mp_start_method: Optional[str] = None) -> RunStats:
    """Predict this rank's share of ``pairs`` that is not written yet, appending its records.

    Args:
        inferencer (ReferSegInferencer): The model.
        pairs (list[Pair]): The whole input (every rank reads all of it).
        out (str): The output file (records go to ``part_file(out, rank)``).
        done (dict): The records already written (:func:`done_records`), read by every rank
            before any rank writes.
        batch_size (int): Pairs per batch.
        rank (int): This process' rank. Defaults to 0.
        world_size (int): Number of processes. Defaults to 1.
        png_dir (str, optional): Write each mask as ``{id}.png`` (0 / 255) there.
        overlay_dir (str, optional): Write each picture (mask overlay and sentence) there.
        progress (bool): Show a progress bar with ETA (on stderr). Defaults to True.
        num_workers (int): Data-loader worker processes that read and preprocess the next
            batches while the model runs; 0 does it in this process between batches. Defaults
            to 0.
        mp_start_method (str, optional): How the workers are started (``'fork'``,
            ``'spawn'``, ``'forkserver'``); None: Python's default.

    Returns:
        RunStats: Records written, pairs skipped, wall-clock and CPU seconds (this process and
        its workers).

    Raises:
        ValueError: An image is unreadable or too large (file, line and field named).
    """
    if batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {batch_size}')
    batches = [list(range(start, min(start + batch_size, len(pairs))))
               for start in range(rank * batch_size, len(pairs), world_size * batch_size)]
    todo = [batch for batch in batches if any(pairs[i].id not in done for i in batch)]
    mine = sum(len(batch) for batch in batches)
    missing = sum(pairs[i].id not in done for batch in todo for i in batch)
    for folder in (parts_dir(out), png_dir, overlay_dir):
        if folder:
            os.makedirs(folder, exist_ok=True)
    path = part_file(out, rank)
    cut_partial_line(path)
    loader = build_pair_loader(pairs, inferencer, todo, num_workers, mp_start_method,
                               keep_images=bool(overlay_dir))
    bar = ProgressBar(missing, file=sys.stderr) if progress else None
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    with open(path, 'ab') as f:
        # The loader first: exhausted, it joins its workers (their CPU time is then counted).
        for prepared, batch in zip(loader, todo):
            outputs = inferencer.forward([item.packed() for item in prepared])
            lines = []
            for index, item, output in zip(batch, prepared, outputs):
                pair = pairs[index]
                if pair.id not in done:
                    result = inferencer.postprocess(output, item.image, draw=bool(overlay_dir))
                    _write_pictures(pair, result, png_dir, overlay_dir)
                    lines.append(dump_record(prediction_record(pair, result)))
            write_lines(f, lines)
            if bar is not None:
                bar.update(len(lines))
    if bar is not None:
        sys.stderr.write('\n')
    return RunStats(missing, mine - missing, time.perf_counter() - start,
                    _cpu_seconds() - cpu_start)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the data-loader workers,
    joined when the loader is exhausted)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def merge_parts(out: str, pairs: List[Pair]) -> int:
    """Write ``out`` with one record per pair in input order, then remove the part files.

    Args:
        out (str): The output file.
        pairs (list[Pair]): The input.

    Returns:
        int: Records written.

    Raises:
        ValueError: A pair has no record (a rank did not finish) or the output holds records
            of another input.
    """
    done = done_records(out, pairs)
    absent = [pair for pair in pairs if pair.id not in done]
    if absent:
        raise ValueError(f'{len(absent)} pair(s) have no prediction yet, the first '
                         f'{absent[0].id!r} ({absent[0].where}); run the command again to '
                         'predict them')
    with atomic_write(out) as f:
        for pair in pairs:
            f.write(dump_record(done[pair.id]).encode('utf-8') + b'\n')
    folder = parts_dir(out)
    if osp.isdir(folder):
        for name in os.listdir(folder):
            if name.endswith('.jsonl'):
                os.remove(osp.join(folder, name))
        if not os.listdir(folder):
            os.rmdir(folder)
    return len(pairs)
