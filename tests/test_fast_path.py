"""The fast path chosen per GPU, shown without one: the device is simulated (compute capability,
native bfloat16, Triton) through the functions ``torch.cuda`` answers with."""
import importlib.util

import pytest
import torch
from mmengine.config import Config
from tool_loader import load_tool

from dit_sam_mm.utils.fast_path import FastPath, cuda_device_info, describe, gpu_fast_path

GPUS = {  # name: (compute capability, Triton importable)
    'Tesla P100': ((6, 0), True),
    'Tesla V100': ((7, 0), True),
    'Tesla T4': ((7, 5), True),
    'A100': ((8, 0), True),
    'H100': ((9, 0), True),
    'A100 without Triton': ((8, 0), False),
}


@pytest.fixture
def simulate_gpu(monkeypatch):
    """``simulate_gpu(name)``: make ``torch.cuda`` answer as that GPU would."""
    def simulate(name):
        capability, triton = GPUS[name]
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda *args: capability)
        monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *args: name)
        # torch answers True with emulation on any GPU; natively only from sm_80
        monkeypatch.setattr(torch.cuda, 'is_bf16_supported',
                            lambda including_emulation=True: including_emulation
                            or capability >= (8, 0))
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, 'find_spec',
                            lambda module, *args: None if module == 'triton' and not triton
                            else find_spec(module, *args))
        return cuda_device_info()

    return simulate


@pytest.mark.parametrize('name, dtype, compiled', [
    ('Tesla P100', 'float16', False),
    ('Tesla V100', 'float16', True),
    ('Tesla T4', 'float16', True),
    ('A100', 'bfloat16', True),
    ('H100', 'bfloat16', True),
    ('A100 without Triton', 'bfloat16', False),
])
def test_precision_and_compilation_follow_the_device(simulate_gpu, name, dtype, compiled):
    gpu = simulate_gpu(name)
    assert gpu.bf16_native == (dtype == 'bfloat16')
    fast = gpu_fast_path(Config(dict()))
    assert (fast.dtype, fast.compile) == (dtype, compiled)
    line = describe(fast, gpu)
    assert line.startswith(f'fast path: {name} (sm_{gpu.capability[0]}{gpu.capability[1]}), '
                           f'{dtype} autocast, {"compiled" if compiled else "not compiled"} (')
    if not compiled:
        assert ('Triton is not installed' in line) or ('needs sm_70' in line)


@pytest.mark.parametrize('options, dtype, compiled, why', [
    (dict(fp32=True), None, True, '--fp32'),
    (dict(eager=True), 'bfloat16', False, '--eager'),
])
def test_the_command_line_turns_parts_off(simulate_gpu, options, dtype, compiled, why):
    simulate_gpu('H100')
    fast = gpu_fast_path(Config(dict()), **options)
    assert (fast.dtype, fast.compile) == (dtype, compiled) and why in fast.reason


def test_the_config_and_the_cpu_turn_it_off(simulate_gpu):
    simulate_gpu('H100')
    assert gpu_fast_path(Config(dict(gpu_fast_path=False))).dtype is None
    assert gpu_fast_path(Config(dict()), cuda=False) == FastPath(None, False, 'no CUDA device')
    assert describe(FastPath(None, False, 'no CUDA device')) == \
        'fast path: CPU, float32, not compiled (no CUDA device)'


def test_the_official_configs_keep_float32(repo_root, simulate_gpu):
    simulate_gpu('H100')
    for name in ('ldit_vitb_refcoco_official.py', 'ldit_vith_refcoco_official.py'):
        cfg = Config.fromfile(str(repo_root / 'configs' / 'dit' / name))
        assert gpu_fast_path(cfg)[:2] == (None, False)
    cfg = Config.fromfile(str(repo_root / 'configs' / 'dit' / 'ldit_vitb_refcoco.py'))
    assert gpu_fast_path(cfg)[:2] == ('bfloat16', True)


@pytest.mark.parametrize('dtype, wrapper', [('bfloat16', 'BF16OptimWrapper'),
                                            ('float16', 'AmpOptimWrapper')])
def test_train_py_trains_in_the_chosen_precision(dtype, wrapper):
    train = load_tool('tools/train.py')
    cfg = Config(dict(optim_wrapper=dict(type='DeferredGradNormOptimWrapper',
                                         optimizer=dict(type='Adam', lr=1e-4))))
    train.enable_amp(cfg, dtype)
    assert cfg.optim_wrapper.type == wrapper
    if dtype == 'float16':  # float16 needs loss scaling
        assert cfg.optim_wrapper.loss_scale == 'dynamic' and cfg.optim_wrapper.dtype == dtype
