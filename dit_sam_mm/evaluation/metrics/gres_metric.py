"""cIoU / gIoU / N-acc / T-acc / Pr@X for generalized referring segmentation."""
import itertools
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch

from mmseg.registry import METRICS
from .refer_seg_metric import ReferSegMetric

#: Side of the square the GRES reference code scores masks at.
GRES_SIZE = 480
PROTOCOLS = ('original', 'gres')


def _nearest_indices(length: int, size: int) -> List[int]:
    """Input index of each of ``size`` outputs along an axis of ``length``.

    PIL's nearest scaling: output ``i`` reads input ``int(x_i)`` with
    ``x_0 = step / 2`` and ``x_{i+1} = x_i + step`` accumulated in double
    precision, ``step = length / size``. This is pixel-centre sampling,
    ``floor((i + 0.5) * step)``, except where that is an exact integer and
    the accumulated sum falls just below it.
    """
    step = length / size
    positions = itertools.accumulate([step / 2] + [step] * (size - 1))
    return [int(x) for x in positions]


def resize_nearest(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour resize of a (H, W) mask to (size, size).

    Picks the same pixels as PIL's ``Image.resize(..., Image.NEAREST)``,
    which detectron2's ``ResizeTransform`` (used by the GRES reference code)
    applies to uint8 masks.

    Args:
        mask (Tensor): (H, W) mask of any dtype.
        size (int): Side of the output.

    Returns:
        Tensor: (size, size) mask of the input's dtype.
    """
    rows = torch.tensor(_nearest_indices(mask.shape[0], size), device=mask.device)
    cols = torch.tensor(_nearest_indices(mask.shape[1], size), device=mask.device)
    return mask[rows][:, cols]  # (size, size)


@METRICS.register_module()
class GRESMetric(ReferSegMetric):
    """The GRES metrics of generalized referring segmentation (gRefCOCO).

    A sample is a *no-target* sample when its metainfo says ``no_target``
    (``True``), or, when it has no such key, when its ground truth has no
    foreground; a model predicts "no target" with an empty mask. ``process``
    keeps per sample the intersection ``I`` and union ``U`` of predicted and
    ground-truth foreground, the predicted area and ``no_target``.
    ``compute_metrics`` returns, as percentages:

    - ``cIoU``: sum(I) / sum(U) over all samples. A no-target sample adds
      I = 0 and U = its predicted area: a mask predicted where nothing is
      referred lowers cIoU by enlarging the union; an empty prediction
      there adds nothing (100 when every U is 0);
    - ``gIoU``: mean per-sample score: I / U for a target sample (0 when
      the prediction is empty), and for a no-target sample 1 when the
      prediction is empty and 0 otherwise;
    - ``N-acc``: share of no-target samples predicted empty;
    - ``T-acc``: share of target samples predicted non-empty;
    - ``Pr@t`` for each ``t`` in ``iou_thrs``: share of *target* samples
      with IoU >= t (> t with ``strict_threshold``).

    ``N-acc`` is nan for a set without no-target samples, and ``T-acc`` and
    ``Pr@t`` are nan for one without target samples, so that every split has
    the same keys. Splits, exactness under several processes, the log table
    and ``dump_path`` (whose lines add ``no_target``, ``pred_area`` and the
    GRES per-sample score as ``iou``) are those of :class:`ReferSegMetric`.

    ``protocol='original'`` scores at the image's original resolution.
    ``protocol='gres'`` reproduces the GRES reference evaluation, which
    scores masks at 480x480: prediction and ground truth (both at the
    original size) are resized to 480x480 with nearest neighbour (see
    :func:`resize_nearest`), ignoring the aspect ratio. Whether a sample has
    a target is decided at the original resolution.

    Args:
        iou_thrs (Sequence[float]): Thresholds of ``Pr@t``.
            Defaults to ``(0.7, 0.8, 0.9)``.
        strict_threshold (bool): Count IoU > t instead of IoU >= t (the
            GRES reference counts >=). Defaults to False.
        protocol (str): ``'original'`` or ``'gres'``.
            Defaults to ``'original'``.
        ignore_index (int): Ground-truth value of pixels that count neither
            as foreground nor background. Defaults to 255.
        dump_path (str, optional): Write one JSON line per sample to this
            file, on the main process. Defaults to None.
        collect_device (str): ``'cpu'`` or ``'gpu'``, as in MMEngine.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to None.
    """

    def __init__(self,
                 iou_thrs: Sequence[float] = (0.7, 0.8, 0.9),
                 strict_threshold: bool = False,
                 protocol: str = 'original',
                 ignore_index: int = 255,
                 dump_path: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f'GRESMetric protocol must be one of '
                             f'{PROTOCOLS}, got {protocol!r}')
        super().__init__(
            iou_thrs=iou_thrs,
            strict_threshold=strict_threshold,
            ignore_index=ignore_index,
            dump_path=dump_path,
            collect_device=collect_device,
            prefix=prefix,
            **kwargs)
        self.protocol = protocol

    def _record(self, sample: dict, pred_fg: torch.Tensor,
                gt_fg: torch.Tensor) -> dict:
        """Add ``no_target`` and ``pred_area`` to the record of a sample.

        Args:
            sample (dict): One segmentor output, possibly with ``no_target``.
            pred_fg (Tensor): Boolean (H, W) predicted foreground at the
                original resolution.
            gt_fg (Tensor): Boolean (H, W) ground-truth foreground at the
                original resolution.

        Returns:
            dict: The :class:`ReferSegMetric` record, counted under
            ``protocol``, with ``no_target`` and ``pred_area``.
        """
        gt_empty = not bool(gt_fg.any())
        no_target = sample.get('no_target')
        if no_target is None:
            no_target = gt_empty
        elif no_target and not gt_empty:
            raise ValueError(
                f'Sample ref_id={sample.get("ref_id")} sent_id='
                f'{sample.get("sent_id")} (image {sample.get("img_path")!r}) '
                f'has no_target=True but {int(gt_fg.sum())} ground-truth '
                'foreground pixels: a no-target sample must have an empty '
                'ground truth')
        if self.protocol == 'gres':
            pred_fg = resize_nearest(pred_fg, GRES_SIZE)
            gt_fg = resize_nearest(gt_fg, GRES_SIZE)
        record = super()._record(sample, pred_fg, gt_fg)
        record.update(
            no_target=bool(no_target),
            pred_area=int(torch.count_nonzero(pred_fg)))
        return record

    def _sample_iou(self, record: dict) -> float:
        """The GRES per-sample score of a record (see the class docstring)."""
        if record['no_target']:
            return 1.0 if record['pred_area'] == 0 else 0.0
        if record['union'] == 0:
            return 0.0
        return record['intersection'] / record['union']

    def _summarise(self, records: List[dict]) -> Dict[str, float]:
        """cIoU, gIoU, N-acc, T-acc and Pr@t (percent) of sorted records."""
        total_i = sum(r['intersection'] for r in records)
        total_u = sum(r['union'] for r in records)
        empty = [r for r in records if r['no_target']]
        target = [r for r in records if not r['no_target']]
        summary = OrderedDict()
        summary['cIoU'] = 100.0 * total_i / total_u if total_u else 100.0
        summary['gIoU'] = 100.0 * math.fsum(
            self._sample_iou(r) for r in records) / len(records)
        summary['N-acc'] = _percent(
            sum(1 for r in empty if r['pred_area'] == 0), len(empty))
        summary['T-acc'] = _percent(
            sum(1 for r in target if r['pred_area'] > 0), len(target))
        summary.update(
            self._precisions([self._sample_iou(r) for r in target]))
        return summary


def _percent(count: int, total: int) -> float:
    """100 * count / total, nan when total is 0."""
    return 100.0 * count / total if total else math.nan
