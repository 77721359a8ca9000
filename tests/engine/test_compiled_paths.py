"""The compiled paths, run on the CPU with inductor: MMEngine's compiled training step with the
plugin's optimiser wrappers and EMA, the inferencer's compiled inference, and the fallback to
eager when inductor fails."""
import numpy as np
import pytest
import torch
from refer_model_fixture import write_tiny_model
from toy_runner import ToyRegressor, make_runner

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.engine import compile_fallback
from dit_sam_mm.engine.compile_fallback import FALLBACK_BACKEND, compile_failure


@pytest.fixture
def inductor_calls(monkeypatch):
    """Each graph the fallback backend gives to inductor, and the warnings it logs."""
    calls, warnings = [], []
    inductor = compile_fallback._inductor

    def counting(graph, *args):
        calls.append(graph)
        return inductor(graph, *args)

    monkeypatch.setattr(compile_fallback, '_inductor', counting)
    monkeypatch.setattr(compile_fallback, 'print_log', lambda msg, **kw: warnings.append(msg))
    compile_fallback.reset_compile_failure()
    torch._dynamo.reset()
    yield calls, warnings
    compile_fallback.reset_compile_failure()
    torch._dynamo.reset()


def train_losses(work_dir, wrapper, compile):
    torch.manual_seed(0)
    optim_wrapper = dict(type=wrapper, optimizer=dict(type='Adam', lr=1e-2),
                         clip_grad=dict(max_norm=1.0))
    ema = dict(type='EMAHook', ema_type='ForeachEMA', momentum=0.01, decay_warmup=9,
               update_buffers=True, priority=49)
    runner = make_runner(work_dir, ToyRegressor(), max_epochs=2, optim_wrapper=optim_wrapper,
                         custom_hooks=[ema], compile=compile,
                         runtime_info=dict(type='DeferredRuntimeInfoHook'))
    runner.train()
    ema_weight = runner.hooks[[type(h).__name__ for h in runner.hooks].index('EMAHook')]
    return (runner.message_hub.get_scalar('train/loss').data[0],
            ema_weight.ema_model.module.linear.weight.detach().clone())


@pytest.mark.parametrize('wrapper', ['BF16OptimWrapper', 'DeferredGradNormOptimWrapper'])
def test_compiled_training_step_matches_eager(tmp_path, inductor_calls, wrapper):
    calls, warnings = inductor_calls
    eager_losses, eager_ema = train_losses(tmp_path / 'eager', wrapper, None)
    losses, ema = train_losses(tmp_path / 'compiled', wrapper, dict(backend=FALLBACK_BACKEND))
    assert calls and not warnings and compile_failure() is None  # inductor compiled it
    assert len(losses) == len(eager_losses) == 8
    torch.testing.assert_close(torch.as_tensor(losses), torch.as_tensor(eager_losses),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ema, eager_ema, rtol=1e-4, atol=1e-5)


def test_a_failing_backend_falls_back_to_eager_with_one_warning(monkeypatch, inductor_calls):
    calls, warnings = inductor_calls

    def broken(graph, *args):
        calls.append(graph)
        raise RuntimeError('Failed to find a working C++ compiler')

    monkeypatch.setattr(compile_fallback, '_inductor', broken)

    def step(x):
        return torch.relu(x) * 2 + 1

    x = torch.randn(4)
    compiled = torch.compile(step, backend=FALLBACK_BACKEND)
    torch.testing.assert_close(compiled(x), step(x))
    torch.testing.assert_close(torch.compile(lambda y: y.sin(), backend=FALLBACK_BACKEND)(x),
                               x.sin())
    assert len(calls) == 1  # inductor is not tried again in this process
    assert len(warnings) == 1
    assert 'RuntimeError: Failed to find a working C++ compiler' in warnings[0]
    assert 'running eagerly' in warnings[0] and '--eager' in warnings[0]
    assert isinstance(compile_failure(), RuntimeError)


def test_compiled_inference_of_the_inferencer_matches_eager(tmp_path, inductor_calls):
    """``ReferSegInferencer``'s fast path (``DITSAM.accelerate_inference``: bfloat16 autocast,
    ``torch.compile`` with CUDA-graph mode, which the CPU ignores) compiled by inductor."""
    calls, warnings = inductor_calls
    tiny = write_tiny_model(tmp_path)
    images = sorted(str(p) for p in (tiny.data_root / 'images').glob('*.jpg'))[:2]
    sentences = ['the red circle', 'the shape on the left']
    eager = ReferSegInferencer(str(tiny.config), str(tiny.checkpoint), device='cpu', fast=False,
                               batch_size=2)
    fast = ReferSegInferencer(str(tiny.config), str(tiny.checkpoint), device='cpu', fast=True,
                              batch_size=2)
    assert fast.model.inference_accelerator is not None and eager.fast_path.dtype is None
    expected = eager(images, sentences, return_probs=True)
    got = fast(images, sentences, return_probs=True)
    assert calls and not warnings and compile_failure() is None  # inductor compiled it
    for want, have in zip(expected, got):
        # bfloat16 keeps 8 bits of mantissa: probabilities agree to a few hundredths
        torch.testing.assert_close(torch.as_tensor(have.probs), torch.as_tensor(want.probs),
                                   atol=0.05, rtol=0)
        assert not np.array_equal(have.probs, want.probs)  # autocast really ran
