"""GRESMetric: hand-computed GRES numbers, splits, 480 protocol, dumps, 2 processes."""
import json
import math

import numpy as np
import pytest
import torch
from mmseg.registry import METRICS
from PIL import Image
from refer_metric_helpers import evaluate, evaluate_distributed, mask, sample

from dit_sam_mm.evaluation import GRESMetric
from dit_sam_mm.evaluation.metrics.gres_metric import resize_nearest

KEYS = ['cIoU', 'gIoU', 'N-acc', 'T-acc', 'Pr@0.7', 'Pr@0.8', 'Pr@0.9']


def _hand_samples():
    """Eight samples on 10x10 masks over two splits, with known I / U."""
    return [
        # val A, one target: I = 20, U = 40 -> IoU 0.5
        sample(mask(10, 10, [(0, 4, 0, 5)]), mask(10, 10, [(0, 4, 0, 10)]),
               ref_id=1, sent_id=10, no_target=False),
        # val B, two targets (10 + 16 px), prediction misses 4: I = 22, U = 26
        sample(mask(10, 10, [(0, 2, 0, 5), (6, 10, 6, 9)]),
               mask(10, 10, [(0, 2, 0, 5), (6, 10, 6, 10)]),
               ref_id=2, sent_id=20, no_target=False),
        # val C, no target, empty prediction: I = U = 0, score 1
        sample(mask(10, 10, []), mask(10, 10, []), ref_id=3, sent_id=30, no_target=True),
        # val D, no target, 9 px predicted: I = 0, U = 9, score 0
        sample(mask(10, 10, [(7, 10, 7, 10)]), mask(10, 10, []),
               ref_id=4, sent_id=40, no_target=True),
        # testA E, one target: I = 12, U = 15 -> IoU 0.8 exactly
        sample(mask(10, 10, [(2, 5, 2, 7)]), mask(10, 10, [(2, 5, 2, 6)]),
               split='testA', ref_id=5, sent_id=50, no_target=False),
        # testA F, two targets (9 + 9 px), empty prediction: I = 0, U = 18, score 0
        sample(mask(10, 10, []), mask(10, 10, [(0, 3, 0, 3), (5, 8, 5, 8)]),
               split='testA', ref_id=6, sent_id=60, no_target=False),
        # testA G, no `no_target` key: no target because the gt is empty; empty
        # prediction: I = U = 0, score 1
        sample(mask(10, 10, []), mask(10, 10, []), split='testA', ref_id=7, sent_id=70),
        # testA H, two targets predicted exactly: I = U = 20 -> IoU 1
        sample(mask(10, 10, [(0, 2, 0, 5), (8, 10, 0, 5)]),
               mask(10, 10, [(0, 2, 0, 5), (8, 10, 0, 5)]),
               split='testA', ref_id=8, sent_id=80, no_target=False),
    ]


def test_numbers_equal_hand_computation(tmp_path):
    dump = tmp_path / 'records.jsonl'
    metric = METRICS.build(dict(type='GRESMetric', dump_path=str(dump)))
    result = evaluate(metric, _hand_samples(), chunk=3)

    # val: A, B target; C, D no target
    assert result['val/cIoU'] == pytest.approx(100 * (20 + 22) / (40 + 26 + 0 + 9))
    assert result['val/gIoU'] == pytest.approx(100 * (0.5 + 22 / 26 + 1 + 0) / 4)
    assert result['val/N-acc'] == 50.0  # C empty, D not
    assert result['val/T-acc'] == 100.0  # A, B non-empty
    assert result['val/Pr@0.7'] == 50.0  # B (0.846); A is 0.5
    assert result['val/Pr@0.8'] == 50.0
    assert result['val/Pr@0.9'] == 0.0
    # testA: E, F, H target; G no target
    assert result['testA/cIoU'] == pytest.approx(100 * (12 + 0 + 0 + 20) / (15 + 18 + 0 + 20))
    assert result['testA/gIoU'] == pytest.approx(100 * (0.8 + 0 + 1 + 1) / 4)
    assert result['testA/N-acc'] == 100.0
    assert result['testA/T-acc'] == pytest.approx(100 * 2 / 3)  # F predicted empty
    assert result['testA/Pr@0.7'] == pytest.approx(100 * 2 / 3)  # E, H
    assert result['testA/Pr@0.8'] == pytest.approx(100 * 2 / 3)  # 0.8 counts at >= 0.8
    assert result['testA/Pr@0.9'] == pytest.approx(100 / 3)  # H
    # all eight
    assert result['cIoU'] == pytest.approx(100 * (42 + 32) / (75 + 53))
    assert result['gIoU'] == pytest.approx(100 * (0.5 + 22 / 26 + 1 + 0 + 0.8 + 0 + 1 + 1) / 8)
    assert result['N-acc'] == pytest.approx(100 * 2 / 3)  # C, G of C, D, G
    assert result['T-acc'] == 80.0  # A, B, E, H of A, B, E, F, H
    assert result['Pr@0.7'] == 60.0  # B, E, H
    assert result['Pr@0.8'] == 60.0
    assert result['Pr@0.9'] == 20.0
    assert [k for k in result if '/' not in k] == KEYS
    assert sorted(result) == sorted(KEYS + [f'{s}/{k}' for s in ('val', 'testA') for k in KEYS])

    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert [(r['split'], r['ref_id']) for r in lines] == [('testA', i) for i in (5, 6, 7, 8)] + [
        ('val', i) for i in (1, 2, 3, 4)]
    by_ref = {r['ref_id']: r for r in lines}
    assert by_ref[4]['no_target'] and by_ref[4]['pred_area'] == 9 and by_ref[4]['union'] == 9
    assert by_ref[4]['iou'] == 0.0
    assert by_ref[7]['no_target'] and by_ref[7]['iou'] == 1.0  # derived from the empty gt
    assert not by_ref[6]['no_target'] and by_ref[6]['iou'] == 0.0
    assert by_ref[5]['iou'] == pytest.approx(0.8) and by_ref[5]['pred_area'] == 15
    assert metric.results == []


def test_strict_threshold_counts_above():
    result = evaluate(GRESMetric(strict_threshold=True), _hand_samples())
    assert result['testA/Pr@0.8'] == pytest.approx(100 / 3)  # E's 0.8 is not > 0.8
    assert result['Pr@0.8'] == 40.0


def test_set_without_no_target_or_target_samples_gives_nan():
    targets_only = evaluate(GRESMetric(), _hand_samples()[:2])
    assert math.isnan(targets_only['N-acc'])
    assert targets_only['T-acc'] == 100.0 and targets_only['Pr@0.7'] == 50.0
    assert not any('/' in key for key in targets_only)  # one split: no split keys
    # only no-target samples, every prediction empty: nothing in any union
    empty = sample(mask(10, 10, []), mask(10, 10, []), ref_id=9, no_target=True)
    none_only = evaluate(GRESMetric(), [empty, _hand_samples()[2]])
    assert none_only['cIoU'] == 100.0 and none_only['gIoU'] == 100.0
    assert none_only['N-acc'] == 100.0
    assert all(math.isnan(none_only[k]) for k in ('T-acc', 'Pr@0.7', 'Pr@0.8', 'Pr@0.9'))
    assert list(none_only) == KEYS


def test_bad_arguments_and_contradicting_no_target():
    with pytest.raises(ValueError, match="protocol.*'480'"):
        GRESMetric(protocol='480')
    bad = sample(mask(10, 10, []), mask(10, 10, [(0, 2, 0, 2)]), ref_id=11, sent_id=12,
                 no_target=True)
    with pytest.raises(ValueError, match=r'ref_id=11 sent_id=12.*no_target=True.*4 ground-truth'):
        GRESMetric().process({}, [bad])


@pytest.mark.parametrize('shape', [(427, 640), (7, 13), (1000, 333), (480, 480)])
def test_resize_nearest_is_pil_nearest(shape):
    generator = torch.Generator().manual_seed(shape[0])
    source = (torch.rand(*shape, generator=generator) > 0.5).to(torch.uint8)
    expected = np.asarray(Image.fromarray(source.numpy()).resize((480, 480), Image.NEAREST))
    assert torch.equal(resize_nearest(source, 480), torch.from_numpy(expected))


def _protocol_samples():
    """960x960 masks: a 480x480 nearest resize keeps the odd rows and columns."""
    return [
        # gt 10x10 px, prediction shifted down one row. Original: I = 90, U = 110.
        # At 480: both keep rows/cols 1, 3, 5, 7, 9 -> 25 px each, I = U = 25.
        sample(mask(960, 960, [(1, 11, 0, 10)]), mask(960, 960, [(0, 10, 0, 10)]),
               ref_id=1, no_target=False),
        # no target, one predicted pixel at (0, 0). Original: U = 1, score 0;
        # at 480 the pixel (an even row) is gone: U = 0, score 1.
        sample(mask(960, 960, [(0, 1, 0, 1)]), mask(960, 960, []), ref_id=2, no_target=True),
        # a one-pixel target at (2, 2), no `no_target` key, empty prediction: a target
        # sample (decided at the original size) in both; at 480 its gt vanishes: U = 0,
        # and a target sample with an empty prediction still scores 0.
        sample(mask(960, 960, []), mask(960, 960, [(2, 3, 2, 3)]), ref_id=3),
    ]


def test_gres_protocol_scores_at_480():
    original = evaluate(GRESMetric(), _protocol_samples())
    assert original['cIoU'] == pytest.approx(100 * 90 / (110 + 1 + 1))
    assert original['gIoU'] == pytest.approx(100 * (90 / 110 + 0 + 0) / 3)
    assert original['N-acc'] == 0.0 and original['T-acc'] == 50.0
    assert original['Pr@0.7'] == 50.0 and original['Pr@0.9'] == 0.0

    gres = evaluate(METRICS.build(dict(type='GRESMetric', protocol='gres')), _protocol_samples())
    assert gres['cIoU'] == 100.0  # 25 / (25 + 0 + 0)
    assert gres['gIoU'] == pytest.approx(100 * (1 + 1 + 0) / 3)
    assert gres['N-acc'] == 100.0 and gres['T-acc'] == 50.0
    assert gres['Pr@0.9'] == 50.0


def _many_samples(count: int = 23):
    """Deterministic pseudo-random samples over three splits, a quarter no-target."""
    generator = torch.Generator().manual_seed(1)
    samples = []
    for i in range(count):
        size = (7 + i % 5, 9 + i % 3)
        pred = (torch.rand(1, *size, generator=generator) > 0.4).long()
        gt = (torch.rand(1, *size, generator=generator) > 0.5).long()
        metainfo = {} if i % 2 else dict(no_target=i % 4 == 0)
        if i % 4 == 0:
            gt.zero_()
        if i % 7 < 2:
            pred.zero_()
        samples.append(sample(pred, gt, split=('val', 'testA', 'testB')[i % 3],
                              ref_id=100 + i // 2, sent_id=i, **metainfo))
    return samples


@pytest.mark.parametrize('protocol', ['original', 'gres'])
def test_two_processes_equal_one_process_exactly(tmp_path, protocol):
    cfg = dict(type='GRESMetric', protocol=protocol)
    single = evaluate(METRICS.build(cfg), _many_samples())
    assert evaluate(METRICS.build(cfg), _many_samples()[::-1]) == single
    for result in evaluate_distributed(cfg, _many_samples, tmp_path):
        assert result == single  # exact float equality, every key
    # 23 samples on 2 ranks: the sampler repeats sample 0 (val, no target,
    # empty prediction), which must not count twice
    assert single['N-acc'] != evaluate(METRICS.build(cfg), _many_samples() + _many_samples()[:1])[
        'N-acc']
    assert set(single) >= {'val/N-acc', 'testA/T-acc', 'testB/Pr@0.9'}
    assert all(math.isfinite(v) for v in single.values())
