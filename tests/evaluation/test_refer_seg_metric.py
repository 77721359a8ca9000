"""ReferSegMetric: hand-computed numbers, splits, dumps, 2-process runs."""
import json
import math

import pytest
import torch
from mmseg.registry import METRICS
from refer_metric_helpers import evaluate as _evaluate
from refer_metric_helpers import evaluate_distributed
from refer_metric_helpers import mask as _mask
from refer_metric_helpers import sample as _sample

from dit_sam_mm.evaluation import ReferSegMetric


def _hand_samples():
    """Four samples with known I / U on 10x10 masks."""
    return [
        # I = 20, U = 40 -> IoU 0.5
        _sample(_mask(10, 10, [(0, 4, 0, 5)]), _mask(10, 10, [(0, 4, 0, 10)]),
                ref_id=1, sent_id=10),
        # I = 0, U = 0 (empty prediction, empty gt) -> IoU 1
        _sample(_mask(10, 10, []), _mask(10, 10, []), ref_id=2, sent_id=20),
        # I = 24, U = 30 -> IoU 0.8
        _sample(_mask(10, 10, [(0, 6, 0, 5)]), _mask(10, 10, [(0, 6, 0, 4)]),
                split='testA', ref_id=3, sent_id=30),
        # I = 0, U = 9 (nothing predicted) -> IoU 0
        _sample(_mask(10, 10, []), _mask(10, 10, [(7, 10, 7, 10)]),
                split='testA', ref_id=4, sent_id=40),
    ]


def test_numbers_equal_hand_computation(tmp_path):
    dump = tmp_path / 'records.jsonl'
    metric = METRICS.build(dict(type='ReferSegMetric', dump_path=str(dump)))
    result = _evaluate(metric, _hand_samples())
    assert result['oIoU'] == pytest.approx(100 * (20 + 0 + 24 + 0) /
                                           (40 + 0 + 30 + 9))
    assert result['mIoU'] == pytest.approx(100 * (0.5 + 1 + 0.8 + 0) / 4)
    assert result['Pr@0.5'] == 75.0  # IoU >= 0.5: 0.5, 1, 0.8
    assert result['Pr@0.6'] == 50.0
    assert result['Pr@0.7'] == 50.0
    assert result['Pr@0.8'] == 50.0  # 0.8 counts at >= 0.8
    assert result['Pr@0.9'] == 25.0
    # per split
    assert result['val/oIoU'] == pytest.approx(50.0)
    assert result['val/mIoU'] == pytest.approx(75.0)
    assert result['val/Pr@0.9'] == 50.0
    assert result['testA/oIoU'] == pytest.approx(100 * 24 / 39)
    assert result['testA/mIoU'] == pytest.approx(40.0)
    assert result['testA/Pr@0.8'] == 50.0
    assert sorted(k for k in result if '/' not in k) == sorted(
        ['oIoU', 'mIoU', 'Pr@0.5', 'Pr@0.6', 'Pr@0.7', 'Pr@0.8', 'Pr@0.9'])

    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [(r['split'], r['ref_id'], r['sent_id']) for r in lines] == [
        ('testA', 3, 30), ('testA', 4, 40), ('val', 1, 10), ('val', 2, 20)]
    assert lines[0]['intersection'] == 24 and lines[0]['union'] == 30
    assert lines[0]['iou'] == pytest.approx(0.8)
    assert lines[3]['iou'] == 1.0 and lines[3]['sentence'] == 'sentence 20'
    assert metric.results == []  # cleared for the next evaluation


def test_strict_threshold_reproduces_released_code():
    metric = ReferSegMetric(strict_threshold=True)
    result = _evaluate(metric, _hand_samples())
    assert result['Pr@0.5'] == 50.0  # 0.5 is not > 0.5
    assert result['Pr@0.8'] == 25.0


def test_single_split_has_no_split_keys_and_ignore_index():
    gt = _mask(4, 4, [(0, 2, 0, 2)])
    gt[0, 3, :] = 255  # ignored pixels count for nothing
    pred = _mask(4, 4, [(0, 2, 0, 2), (3, 4, 0, 4)])
    metric = ReferSegMetric()
    result = _evaluate(metric, [_sample(pred, gt, split='val')])
    assert result['oIoU'] == 100.0 and result['mIoU'] == 100.0
    assert not any('/' in key for key in result)
    assert metric.results == []


def test_shape_mismatch_is_a_clear_error():
    metric = ReferSegMetric()
    bad = _sample(_mask(8, 10, []), _mask(10, 10, []), ref_id=7, sent_id=70)
    with pytest.raises(ValueError, match=r'\(8, 10\).*\(10, 10\).*ref_id=7'):
        metric.process({}, [bad])


def _many_samples(count: int = 23):
    """Deterministic pseudo-random samples over three splits."""
    generator = torch.Generator().manual_seed(0)
    samples = []
    for i in range(count):
        size = (7 + i % 5, 9 + i % 3)
        pred = (torch.rand(1, *size, generator=generator) > 0.4).long()
        gt = (torch.rand(1, *size, generator=generator) > 0.5).long()
        if i % 7 == 0:
            pred.zero_()
            gt.zero_()
        samples.append(_sample(pred, gt, split=('val', 'testA', 'testB')[i % 3],
                               ref_id=100 + i // 2, sent_id=i))
    return samples


def test_two_processes_equal_one_process_exactly(tmp_path):
    single = _evaluate(ReferSegMetric(), _many_samples())
    # the samples do not depend on their order either
    reversed_order = _evaluate(ReferSegMetric(), _many_samples()[::-1])
    assert reversed_order == single

    for result in evaluate_distributed(dict(type='ReferSegMetric'), _many_samples, tmp_path):
        assert result == single  # exact float equality, every key
    assert set(single) >= {'val/oIoU', 'testA/mIoU', 'testB/Pr@0.9'}
    assert all(math.isfinite(v) for v in single.values())
