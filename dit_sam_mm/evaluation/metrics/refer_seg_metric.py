"""oIoU / mIoU / Pr@X for referring image segmentation."""
import json
import math
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from mmseg.registry import METRICS


def _id_order(value) -> tuple:
    """Sort key of an id: integers numerically, anything else as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value, '')
    return (1, 0, str(value))


def _record_order(record: dict) -> tuple:
    """Total order of records, so results never depend on arrival order."""
    return (str(record['split']), _id_order(record['ref_id']),
            _id_order(record['sent_id']), record['intersection'],
            record['union'], str(record['sentence']))


def _iou(record: dict) -> float:
    """IoU of one sample; empty prediction and empty gt give 1."""
    if record['union'] == 0:
        return 1.0
    return record['intersection'] / record['union']


@METRICS.register_module()
class ReferSegMetric(BaseMetric):
    """Overall IoU, mean IoU and precision at IoU thresholds.

    For every sample, ``process`` counts the intersection ``I`` and union
    ``U`` of the predicted and ground-truth foreground at the image's
    original resolution (``pred_sem_seg`` from the segmentor's
    ``postprocess_result`` and ``gt_sem_seg`` from a test pipeline that
    decodes the mask after ``Resize``) and keeps only these two integers and
    the sample's identity. ``compute_metrics`` returns, as percentages:

    - ``oIoU``: sum(I) / sum(U) over the samples (100 when every prediction
      and ground truth is empty);
    - ``mIoU``: mean of the per-sample IoU (I / U; an empty prediction on an
      empty ground truth counts as IoU 1 and adds nothing to oIoU);
    - ``Pr@t`` for each ``t`` in ``iou_thrs``: share of samples with
      IoU >= t. The authors' code counts IoU > t; set
      ``strict_threshold=True`` for that convention. The two differ only for
      samples whose IoU is exactly t.

    When the samples come from several splits (``split`` in their metainfo),
    the same numbers are also given per split as ``'<split>/oIoU'``, ...

    The result is independent of the number of processes and of the order of
    samples: the integers are summed exactly, and the floats are summed with
    ``math.fsum`` over records sorted by (split, ref_id, sent_id, ...).
    MMEngine's ``collect_results`` gathers the records of all ranks and drops
    the samples the distributed sampler repeated as padding.

    Args:
        iou_thrs (Sequence[float]): Thresholds of ``Pr@t``.
            Defaults to ``(0.5, 0.6, 0.7, 0.8, 0.9)``.
        strict_threshold (bool): Count IoU > t instead of IoU >= t.
            Defaults to False.
        ignore_index (int): Ground-truth value of pixels that count neither
            as foreground nor background. Defaults to 255.
        dump_path (str, optional): Write one JSON line per sample (``split,
            ref_id, sent_id, sentence, iou, intersection, union``) to this
            file, on the main process. Defaults to None.
        collect_device (str): ``'cpu'`` or ``'gpu'``, as in MMEngine.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """

    default_prefix: Optional[str] = None

    def __init__(self,
                 iou_thrs: Sequence[float] = (0.5, 0.6, 0.7, 0.8, 0.9),
                 strict_threshold: bool = False,
                 ignore_index: int = 255,
                 dump_path: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(
            collect_device=collect_device, prefix=prefix, **kwargs)
        self.iou_thrs = tuple(float(t) for t in iou_thrs)
        self.strict_threshold = strict_threshold
        self.ignore_index = ignore_index
        self.dump_path = dump_path

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Count I and U of each sample of a batch.

        Args:
            data_batch (dict): The batch from the dataloader (unused).
            data_samples (Sequence[dict]): Segmentor outputs as dicts with
                ``pred_sem_seg``, ``gt_sem_seg`` and metainfo.
        """
        for sample in data_samples:
            pred_fg, gt_fg = self._foreground(sample)
            self.results.append(self._record(sample, pred_fg, gt_fg))

    def _foreground(self, sample: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predicted and ground-truth foreground, ignored pixels excluded.

        Args:
            sample (dict): One segmentor output (see :meth:`process`).

        Returns:
            tuple[Tensor, Tensor]: Boolean (H, W) masks of the prediction
            and the ground truth.
        """
        pred = sample['pred_sem_seg']['data'].squeeze(0)  # (H, W)
        gt = sample['gt_sem_seg']['data'].squeeze(0).to(pred.device)  # (H, W)
        if pred.shape != gt.shape:
            raise ValueError(
                f'Prediction shape {tuple(pred.shape)} differs from the '
                f'ground-truth shape {tuple(gt.shape)} for ref_id='
                f'{sample.get("ref_id")} sent_id={sample.get("sent_id")} '
                f'(image {sample.get("img_path")!r}, ori_shape '
                f'{sample.get("ori_shape")}): both must be at the '
                'original image size (decode the gt after Resize in the '
                'test pipeline)')
        valid = gt != self.ignore_index
        return (pred != 0) & valid, (gt != 0) & valid

    def _record(self, sample: dict, pred_fg: torch.Tensor,
                gt_fg: torch.Tensor) -> dict:
        """The identity of a sample and the integers it contributes.

        Args:
            sample (dict): One segmentor output (see :meth:`process`).
            pred_fg (Tensor): Boolean (H, W) predicted foreground.
            gt_fg (Tensor): Boolean (H, W) ground-truth foreground.

        Returns:
            dict: ``split, ref_id, sent_id, sentence, intersection, union``.
        """
        return dict(
            split=sample.get('split', 'all'),
            ref_id=sample.get('ref_id'),
            sent_id=sample.get('sent_id'),
            sentence=sample.get('sentence'),
            intersection=int(torch.count_nonzero(pred_fg & gt_fg)),
            union=int(torch.count_nonzero(pred_fg | gt_fg)))

    def _sample_iou(self, record: dict) -> float:
        """IoU of one record; an empty prediction on an empty gt gives 1."""
        return _iou(record)

    def _precisions(self, ious: List[float]) -> Dict[str, float]:
        """``Pr@t`` (percent) of per-sample IoUs; nan when there are none.

        Args:
            ious (list[float]): Per-sample IoUs.

        Returns:
            dict[str, float]: ``'Pr@<t>'`` for each threshold, in order.
        """
        precisions = OrderedDict()
        for thr in self.iou_thrs:
            if self.strict_threshold:
                hits = sum(1 for iou in ious if iou > thr)
            else:
                hits = sum(1 for iou in ious if iou >= thr)
            precisions[f'Pr@{thr:g}'] = (100.0 * hits / len(ious)
                                         if ious else math.nan)
        return precisions

    def _summarise(self, records: List[dict]) -> Dict[str, float]:
        """oIoU, mIoU and Pr@t (percent) of records in canonical order."""
        total_i = sum(r['intersection'] for r in records)
        total_u = sum(r['union'] for r in records)
        ious = [self._sample_iou(r) for r in records]
        summary = OrderedDict()
        summary['oIoU'] = 100.0 * total_i / total_u if total_u else 100.0
        summary['mIoU'] = 100.0 * math.fsum(ious) / len(ious)
        summary.update(self._precisions(ious))
        return summary

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Summarise the gathered records of all processes.

        Args:
            results (list): Records made by :meth:`process` on every rank.

        Returns:
            dict[str, float]: Metric name to value (percent).
        """
        logger = MMLogger.get_current_instance()
        if not results:
            raise ValueError(f'{type(self).__name__} got no samples to evaluate')
        records = sorted(results, key=_record_order)
        metrics = self._summarise(records)
        splits = sorted({str(r['split']) for r in records})
        per_split = OrderedDict()
        if len(splits) > 1:
            for split in splits:
                per_split[split] = self._summarise(
                    [r for r in records if str(r['split']) == split])
                for name, value in per_split[split].items():
                    metrics[f'{split}/{name}'] = value
        self._log_table(records, metrics, per_split, logger)
        if self.dump_path and is_main_process():
            self._dump(records)
        return dict(metrics)

    def _log_table(self, records: List[dict], metrics: dict, per_split: dict,
                   logger: MMLogger) -> None:
        names = [name for name in metrics if '/' not in name]
        rows = [('all', len(records), [metrics[n] for n in names])]
        for split, values in per_split.items():
            count = sum(1 for r in records if str(r['split']) == split)
            rows.append((split, count, [values[n] for n in names]))
        lines = ['split'.ljust(8) + 'samples'.rjust(9) +
                 ''.join(n.rjust(9) for n in names)]
        for split, count, values in rows:
            lines.append(split.ljust(8) + str(count).rjust(9) +
                         ''.join(f'{v:9.2f}' for v in values))
        print_log('\n' + '\n'.join(lines), logger=logger)

    def _dump(self, records: List[dict]) -> None:
        folder = osp.dirname(osp.abspath(self.dump_path))
        os.makedirs(folder, exist_ok=True)
        with open(self.dump_path, 'w', encoding='utf-8') as f:
            for r in records:
                line = dict(r, iou=self._sample_iou(r))
                f.write(json.dumps(line, sort_keys=True) + '\n')
