"""ForeachEMA: MMEngine's EMA values without its per-step host reads; the released decay warm-up."""
import copy

import pytest
import torch
from host_sync_guard import HostSyncError, forbid_host_sync
from mmengine.model import ExponentialMovingAverage
from torch import nn
from toy_runner import ToyRegressor, make_runner

from dit_sam_mm.engine import ForeachEMA
from dit_sam_mm.checkpoint import load_checkpoint_file


def model_with_buffers() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def train_steps(model: nn.Module, averaged: list, steps: int, seed: int = 1) -> None:
    """``steps`` SGD steps of ``model``; every averaged model is updated after each."""
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        loss = model(torch.randn(16, 4, generator=gen)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for ema in averaged:
            ema.update_parameters(model)


@pytest.mark.parametrize('update_buffers', [False, True])
@pytest.mark.parametrize('interval', [1, 3])
def test_same_values_as_mmengine_ema(update_buffers, interval):
    model = model_with_buffers()
    kwargs = dict(momentum=0.3, interval=interval, update_buffers=update_buffers)
    ours, mmengine = ForeachEMA(model, **kwargs), ExponentialMovingAverage(model, **kwargs)
    train_steps(model, [ours, mmengine], steps=7)
    expected = mmengine.state_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-7, msg=key)
    assert int(ours.steps) == 7


def test_decay_warmup_follows_the_released_formula():
    """The released code: shadow = d * shadow + (1 - d) * weights, d = min(0.9997, (n+1)/(n+10))
    at its n-th update (n from 0); the first update here copies the weights."""
    model = model_with_buffers()
    ours = ForeachEMA(model, momentum=0.0003, decay_warmup=9, update_buffers=True)
    shadow = None
    gen = torch.Generator().manual_seed(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(6):
        loss = model(torch.randn(16, 4, generator=gen)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ours.update_parameters(model)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if shadow is None:
            shadow = state
        else:
            decay = min(0.9997, (step + 1) / (step + 10))
            shadow = {k: decay * shadow[k] + (1 - decay) * state[k]
                      if state[k].is_floating_point() else shadow[k] for k in state}
    for key, value in ours.module.state_dict().items():
        torch.testing.assert_close(value, shadow[key], rtol=0, atol=1e-6, msg=key)
    assert ours.momentum_at(1) == pytest.approx(1 - 2 / 11)
    assert ours.momentum_at(10**6) == pytest.approx(0.0003)


def test_resumed_average_continues_exactly():
    model = model_with_buffers()
    uninterrupted = ForeachEMA(model, momentum=0.1, decay_warmup=9)
    train_steps(copy.deepcopy(model), [uninterrupted], steps=6)

    first = ForeachEMA(model, momentum=0.1, decay_warmup=9)
    trained = copy.deepcopy(model)
    train_steps(trained, [first], steps=3)
    resumed = ForeachEMA(model_with_buffers(), momentum=0.1, decay_warmup=9)
    resumed.load_state_dict(first.state_dict())
    # the next 3 steps of the same run (same data stream: replay it and skip 3 updates)
    replay = copy.deepcopy(model)

    class SkipFirst:
        def __init__(self, ema, skip):
            self.ema, self.skip = ema, skip

        def update_parameters(self, source):
            if self.skip:
                self.skip -= 1
            else:
                self.ema.update_parameters(source)

    train_steps(replay, [SkipFirst(resumed, 3)], steps=6)
    for key, value in resumed.state_dict().items():
        torch.testing.assert_close(value, uninterrupted.state_dict()[key], rtol=0, atol=0,
                                   msg=key)


def test_update_reads_nothing_on_the_host(monkeypatch):
    model = model_with_buffers()
    ours = ForeachEMA(model, momentum=0.1, decay_warmup=9, update_buffers=True)
    mmengine = ExponentialMovingAverage(model, momentum=0.1, update_buffers=True)
    with forbid_host_sync(monkeypatch):
        for _ in range(3):
            ours.update_parameters(model)
    with pytest.raises(HostSyncError), forbid_host_sync(monkeypatch):
        mmengine.update_parameters(model)  # positive control: `self.steps == 0`


def test_ema_hook_builds_it_and_resumes_it(tmp_path):
    """The released schedule's hook config: EMAHook builds ForeachEMA from the mmseg registry,
    saves it in checkpoints and restores its step count on --resume."""
    hooks = [dict(type='EMAHook', ema_type='ForeachEMA', momentum=0.0003, decay_warmup=9,
                  update_buffers=True, priority=49)]
    runner = make_runner(tmp_path, ToyRegressor(), max_epochs=1, custom_hooks=hooks)
    runner.train()
    ema = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook').ema_model
    assert isinstance(ema, ForeachEMA) and int(ema.steps) == 4  # 4 iterations an epoch
    assert 'ema_state_dict' in load_checkpoint_file(tmp_path / 'epoch_1.pth')
    resumed = make_runner(tmp_path, ToyRegressor(), max_epochs=2, resume=True,
                          custom_hooks=hooks)
    resumed.train()
    ema = next(h for h in resumed.hooks if type(h).__name__ == 'EMAHook').ema_model
    assert ema._host_steps == int(ema.steps) == 8
