"""Samples and runners shared by the tests of ReferSegMetric and GRESMetric."""
import pickle
import socket
from typing import Callable, List, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample


def mask(rows: int, cols: int, boxes) -> torch.Tensor:
    """(1, rows, cols) int64 mask, 1 inside each (r0, r1, c0, c1) box."""
    out = torch.zeros(1, rows, cols, dtype=torch.int64)
    for r0, r1, c0, c1 in boxes:
        out[0, r0:r1, c0:c1] = 1
    return out


def sample(pred, gt, split='val', ref_id=0, sent_id=0, **metainfo) -> dict:
    """A segmentor output as a dict, as mmengine's Evaluator hands it over."""
    data_sample = SegDataSample(metainfo=dict(
        split=split, ref_id=ref_id, sent_id=sent_id,
        sentence=f'sentence {sent_id}', img_path=f'{ref_id}.jpg',
        ori_shape=tuple(gt.shape[1:]), **metainfo))
    data_sample.pred_sem_seg = PixelData(data=pred)
    data_sample.gt_sem_seg = PixelData(data=gt)
    return data_sample.to_dict()


def evaluate(metric, samples, chunk=2, dataset_size=None) -> dict:
    """Feed ``samples`` in batches of ``chunk`` and evaluate."""
    for start in range(0, len(samples), chunk):
        metric.process({}, samples[start:start + chunk])
    return metric.evaluate(dataset_size or len(samples))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, out_dir, metric_cfg, make_samples):
    # a forked child must not enter the parent's OpenMP pool (it would hang)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    try:
        samples = make_samples()
        total = ((len(samples) + world_size - 1) // world_size) * world_size
        # mmengine's DefaultSampler (no shuffle): pad by repeating the start,
        # then every rank takes indices rank, rank + world_size, ...
        order = (list(range(len(samples))) * 2)[:total]
        mine = [samples[i] for i in order[rank:total:world_size]]
        metric = METRICS.build(dict(metric_cfg, collect_dir=str(out_dir / 'collect')))
        result = evaluate(metric, mine, chunk=3, dataset_size=len(samples))
        with open(out_dir / f'rank{rank}.pkl', 'wb') as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def evaluate_distributed(metric_cfg: dict, make_samples: Callable[[], list], out_dir,
                         world_size: int = 2) -> List[Optional[dict]]:
    """Results of every rank of a ``world_size``-process gloo evaluation.

    The processes are forked, so ``make_samples`` may be any callable.
    """
    mp.start_processes(_worker,
                       args=(world_size, _free_port(), out_dir, metric_cfg, make_samples),
                       nprocs=world_size, join=True, start_method='fork')
    results = []
    for rank in range(world_size):
        with open(out_dir / f'rank{rank}.pkl', 'rb') as f:
            results.append(pickle.load(f))
    return results
