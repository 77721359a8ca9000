"""MMEngine checkpoints resume through dit_sam_mm's safe loader; NaN losses stop training.

A toy regression model keeps these runner-level tests fast; the DIT-SAM resume test (same weights
as an uninterrupted run) lives with the end-to-end tests.
"""
import pickle

import pytest
import torch
from toy_runner import ToyRegressor, make_runner

import dit_sam_mm  # noqa: F401  (registers InvalidLossStopHook and the safe checkpoint loader)


def test_resume_reads_mmengine_checkpoint_through_the_safe_loader(tmp_path):
    make_runner(tmp_path, ToyRegressor(), max_epochs=1).train()
    ckpt = tmp_path / 'epoch_1.pth'
    # The checkpoint really needs more than weights-only loading: it holds numpy and
    # HistoryBuffer objects, which torch refuses (importing dit_sam_mm allow-lists nothing).
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|numpy'):
        torch.load(ckpt, weights_only=True)
    runner = make_runner(tmp_path, ToyRegressor(), max_epochs=2, resume=True)
    runner.train()
    assert runner.epoch == 2
    assert (tmp_path / 'epoch_2.pth').exists()
    assert runner.message_hub.get_scalar('train/loss').current() > 0


def test_nan_loss_stops_training_before_the_next_checkpoint(tmp_path):
    # 4 iterations per epoch; the loss turns NaN at the 6th call (epoch 2), checked every 50 iters.
    runner = make_runner(tmp_path, ToyRegressor(nan_after=5), max_epochs=3)
    with pytest.raises(RuntimeError, match='became NaN or Inf between iterations 5 and 8'):
        runner.train()
    assert (tmp_path / 'epoch_1.pth').exists()
    assert not (tmp_path / 'epoch_2.pth').exists()


def test_nan_loss_is_caught_at_the_check_interval(tmp_path):
    runner = make_runner(tmp_path, ToyRegressor(nan_after=1), max_epochs=3, interval=3)
    with pytest.raises(RuntimeError, match='between iterations 1 and 3'):
        runner.train()
    assert not (tmp_path / 'epoch_1.pth').exists()


def count_calls(monkeypatch, method):
    """Count the calls of a ``torch.Tensor`` method (``item``, ``__float__``)."""
    calls = []
    original = getattr(torch.Tensor, method)

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(torch.Tensor, method, counting)
    return calls


def test_deferred_runtime_info_logs_the_same_values_with_fewer_host_reads(tmp_path, monkeypatch):
    histories, item_calls = {}, {}
    # interval None: follow the LoggerHook (3 here)
    for name, hook in [('default', None), ('deferred', dict(type='DeferredRuntimeInfoHook'))]:
        calls = count_calls(monkeypatch, 'item')
        torch.manual_seed(0)
        runner = make_runner(tmp_path / name, ToyRegressor(), max_epochs=2, runtime_info=hook)
        runner.train()
        histories[name] = runner.message_hub.get_scalar('train/loss').data[0]
        item_calls[name] = len(calls)
        monkeypatch.undo()
    # 2 epochs x 4 iterations: every iteration's loss is logged, in order, with the same value
    assert len(histories['default']) == len(histories['deferred']) == 8
    assert list(histories['default']) == list(histories['deferred'])
    # MMEngine's hook reads each loss with .item(); the deferred one reads them in bulk
    assert item_calls['default'] - item_calls['deferred'] == 8


def test_gradient_norm_is_logged_at_the_interval_with_the_same_values(tmp_path, monkeypatch):
    clipped = dict(optimizer=dict(type='SGD', lr=1e-3), clip_grad=dict(max_norm=0.5))
    runs = [('mmengine', None, dict(clipped, type='OptimWrapper')),
            ('deferred', dict(type='DeferredRuntimeInfoHook'),
             dict(clipped, type='DeferredGradNormOptimWrapper'))]
    histories, float_calls = {}, {}
    for name, hook, wrapper in runs:
        calls = count_calls(monkeypatch, '__float__')
        torch.manual_seed(0)
        runner = make_runner(tmp_path / name, ToyRegressor(), max_epochs=2, runtime_info=hook,
                             optim_wrapper=wrapper)
        runner.train()
        histories[name] = runner.message_hub.get_scalar('train/grad_norm').data[0]
        float_calls[name] = len(calls)
        monkeypatch.undo()
    # 2 epochs x 4 iterations: every step's norm is logged, in order, with the same value
    assert len(histories['mmengine']) == 8 and (histories['mmengine'] > 0).all()
    assert list(histories['mmengine']) == list(histories['deferred'])
    # OptimWrapper reads each norm with float(); the deferred path reads them in bulk
    assert float_calls['mmengine'] - float_calls['deferred'] == 8
