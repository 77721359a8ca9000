"""tools/analysis_tools/benchmark.py in its four modes and its profile, and the FLOP and
saved-tensor counting behind it."""
import json
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from tiny_dit_sam import IMG, TINY_MODEL, VOCAB, build_tiny
from tool_loader import load_tool

from dit_sam_mm.datasets.synthref import make_synthref
from dit_sam_mm.analysis.activation_memory import benchmark_activations, saved_tensor_bytes
from dit_sam_mm.analysis.benchmark import (BERT_BASE, count_flops, forward_flops,
                                        random_weights_model_cfg, synthetic_batch)
from dit_sam_mm.analysis.profiling import busy_time, categorise

MODEL_FIELDS = {
    'mode', 'samples_per_s', 'latency_ms_median', 'latency_ms_p90', 'peak_mem_mb',
    'peak_mem_per_sample_mb', 'mem_kind', 'flops_per_sample', 'tflops_achieved', 'batch_size',
    'device', 'device_name', 'amp', 'compile_mode', 'reference', 'iters', 'warmup', 'torch',
    'cpu_threads', 'config'
}


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/analysis_tools/benchmark.py')


@pytest.fixture(scope='module')
def full_config(tmp_path_factory):
    """The tiny model plus a SynthRef training pipeline: one config for all three modes."""
    root = tmp_path_factory.mktemp('synthref')
    make_synthref(str(root), num_images=9, seed=1)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadReferAnnotations'),
        dict(type='ReferRandomFlip', prob=0.5),
        dict(type='TokenizeText', vocab_file=str(root / 'vocab.txt')),
        dict(type='PackReferSegInputs'),
    ]
    cfg = dict(
        default_scope='mmseg',
        model=TINY_MODEL,
        train_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
            dataset=dict(type='RefCOCODataset', data_root=str(root), split='train',
                         sample_mode='ref', data_prefix=dict(img_path='images/'),
                         pipeline=pipeline)))
    path = root / 'bench_cfg.py'
    Config(cfg).dump(str(path))
    return path


@pytest.mark.parametrize('mode,extra', [
    ('train', []),
    ('train', ['--amp', 'bf16']),
    ('infer', ['--reference', '--batch-size', '1']),
    ('infer', ['--amp', 'bf16', '--accelerate']),
])
def test_model_modes_write_the_documented_fields(tool, full_config, tmp_path, capsys, mode,
                                                 extra):
    out = tmp_path / 'result.json'
    assert tool.main([str(full_config), '--mode', mode, '--device', 'cpu', '--iters', '2',
                      '--warmup', '1', '--json', str(out), *extra]) == 0
    result = json.loads(out.read_text())
    assert MODEL_FIELDS <= set(result)
    assert result['mode'] == mode and result['device'] == 'cpu'
    assert result['batch_size'] == (1 if '--batch-size' in extra else 2)  # else the loader's
    assert result['amp'] == ('bf16' if '--amp' in extra else None)
    assert result['reference'] == ('--reference' in extra)
    assert result.get('accelerate', False) == ('--accelerate' in extra)
    assert result['mem_kind'] == 'process_max_rss'
    # a training sample counts forward + backward = 3 forward passes
    assert result['flops_per_sample'] == (3 if mode == 'train' else 1) * forward_flops(
        build_tiny(), IMG, VOCAB)
    assert 'samples/s' in capsys.readouterr().out


def test_data_mode_on_the_same_config(tool, full_config, tmp_path):
    out = tmp_path / 'data.json'
    assert tool.main([str(full_config), '--mode', 'data', '--iters', '2', '--warmup', '1',
                      '--batch-size', '3', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert result['mode'] == 'data' and result['batch_size'] == 3 and result['samples'] == 6
    assert result['samples_per_cpu_s'] > 0 and result['cpu_s'] > 0


def test_data_mode_times_each_transform_in_wall_clock_and_cpu_time(tool, full_config, tmp_path):
    out = tmp_path / 'data.json'
    assert tool.main([str(full_config), '--mode', 'data', '--iters', '2', '--warmup', '1',
                      '--batch-size', '3', '--per-transform', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert result['ms_per_transform'].keys() == result['cpu_ms_per_transform'].keys()
    assert all(ms >= 0 for ms in result['cpu_ms_per_transform'].values())


def test_reference_is_float32_only(tool, tiny_config):
    with pytest.raises(SystemExit):
        tool.main([str(tiny_config), '--mode', 'train', '--reference', '--amp', 'bf16'])


def test_random_weight_config_of_a_real_config(repo_root):
    """No file is needed: SAM weights dropped, BERT directory -> BERT-base config."""
    cfg = Config.fromfile(str(repo_root / 'configs' / 'dit' / 'ldit_vitb_refcoco.py'))
    assert cfg.model.get('pretrained') and cfg.model.neck.get('pretrained')
    model = random_weights_model_cfg(cfg.model, reference=True)
    assert 'pretrained' not in model and 'pretrained' not in model['neck']
    assert model['neck']['bert_cfg'] == BERT_BASE
    assert model['backbone']['attn_impl'] == 'naive'
    assert 'attn_impl' not in random_weights_model_cfg(cfg.model)['backbone']


def test_flops_of_linear_layers_equal_the_hand_count():
    net = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    flops, _ = count_flops(lambda: net(torch.randn(4, 7)))
    assert flops == 2 * 4 * (7 * 5 + 5 * 3)


def test_attention_is_counted_on_cpu_like_its_two_matrix_products():
    """PyTorch's table lacks the CPU fused kernel; ours counts 2 * 2 * B * h * Nq * Nk * d, the
    same as the naive implementation's two matmuls."""
    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 12, 8), torch.randn(2, 3, 12, 8)
    mask = torch.randn(2, 3, 10, 12)
    fused, _ = count_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    naive, _ = count_flops(lambda: ((q @ k.transpose(-2, -1) / math.sqrt(8) + mask).softmax(-1)
                                    @ v))
    assert fused == naive == 2 * 2 * 2 * 3 * 10 * 12 * 8


def test_model_flops_do_not_depend_on_the_attention_implementation():
    torch.manual_seed(0)
    sdpa = forward_flops(build_tiny(), IMG, VOCAB)
    naive = forward_flops(build_tiny(attn_impl='naive'), IMG, VOCAB)
    assert sdpa == naive > 0
    # ... and they include the encoder's attention: more text tokens, more FLOPs
    data = synthetic_batch(1, IMG, VOCAB, text_len=30, with_gt=False)
    model = build_tiny().eval()
    with torch.no_grad():
        longer, _ = count_flops(lambda: model(**model.data_preprocessor(data), mode='tensor'))
    assert longer > sdpa


def test_saved_tensor_bytes_equal_the_hand_count():
    """relu(x @ W).sum(): autograd saves x for W's gradient (W itself is a parameter, left out)
    and relu's output for its own backward; sum saves no tensor."""
    linear = torch.nn.Linear(8, 16, bias=False)
    x = torch.randn(4, 8, requires_grad=True)
    nbytes, out = saved_tensor_bytes(lambda: torch.relu(linear(x)).sum(), exclude=linear)
    assert nbytes == 4 * 8 * 4 + 4 * 16 * 4
    out.backward()  # the graph still works after counting


def test_activation_mode_counts_less_with_checkpointing(tool, tiny_config, tmp_path, capsys):
    out = tmp_path / 'act.json'
    assert tool.main([str(tiny_config), '--mode', 'activations', '--batch-size', '1',
                      '--device', 'cpu', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert result['saved_mb_next'] > result['saved_mb'] > 0
    assert result['saved_mb_per_sample'] == pytest.approx(
        result['saved_mb_next'] - result['saved_mb'])
    assert 'MB per sample' in capsys.readouterr().out
    torch.manual_seed(0)
    checkpointed = benchmark_activations(
        dict(TINY_MODEL, backbone=dict(TINY_MODEL['backbone'], with_cp=True)), 1, 'cpu')
    assert checkpointed['saved_mb_per_sample'] < result['saved_mb_per_sample']


def test_model_modes_run_the_synthref_config_with_its_small_vocabulary(tool, repo_root, tmp_path):
    """SynthRef's BERT knows 40 words: the synthetic sentences must stay inside them."""
    batch = synthetic_batch(3, 64, vocab_size=40)
    ids = torch.stack([s.text_ids for s in batch['data_samples']])
    assert ids.max() < 40 and (ids[:, 0] == 2).all()  # [CLS] of SynthRef's vocabulary
    out = tmp_path / 'synthref.json'
    assert tool.main([str(repo_root / 'configs/synthref/ldit_tiny_synthref.py'), '--mode', 'infer',
                      '--batch-size', '2', '--iters', '1', '--warmup', '0', '--device', 'cpu',
                      '--json', str(out)]) == 0
    assert json.loads(out.read_text())['samples_per_s'] > 0


def test_profile_writes_a_trace_and_a_top_kernels_table(tool, tiny_config, tmp_path):
    out, result_file = tmp_path / 'profile', tmp_path / 'result.json'
    assert tool.main([str(tiny_config), '--mode', 'train', '--batch-size', '2', '--iters', '1',
                      '--warmup', '1', '--device', 'cpu', '--profile', str(out),
                      '--profile-iters', '1', '--json', str(result_file)]) == 0
    trace = json.loads((out / 'trace.json').read_text())
    names = {event.get('name') for event in trace['traceEvents']}
    assert 'aten::_scaled_dot_product_flash_attention_for_cpu_backward' in names
    table = (out / 'top_kernels.md').read_text()
    for row in ('attention', 'matmul', 'elementwise', 'optimiser', 'other',
                'host (outside operators)'):
        assert f'| {row} |' in table
    shares = json.loads(result_file.read_text())['profile']['shares']
    assert sum(shares.values()) == pytest.approx(100, abs=0.1)
    assert shares['attention'] > 0 and shares['matmul'] > 0 and shares['optimiser'] > 0
    with pytest.raises(SystemExit):
        tool.main([str(tiny_config), '--mode', 'activations', '--profile', str(out)])


def test_profile_categories_and_gpu_idle_time():
    """What the table's categories and the GPU's host gaps are made of (names as PyTorch's CPU
    operators and CUDA kernels are called)."""
    assert categorise('aten::mm', ['autograd::engine::evaluate_function: '
                                   'ScaledDotProductFlashAttentionForCpuBackward0']) == 'attention'
    assert categorise('void pytorch_flash::flash_fwd_kernel<...>') == 'attention'
    assert categorise('aten::mul_', ['Optimizer.step#Adam.step']) == 'optimiser'
    assert categorise('sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64') == 'matmul'
    assert categorise('aten::addmm', ['aten::linear']) == 'matmul'
    assert categorise('void at::native::vectorized_elementwise_kernel<4, ...>') == 'elementwise'
    assert categorise('aten::native_layer_norm') == 'elementwise'
    assert categorise('cudaLaunchKernel') == 'other'
    assert busy_time([(0, 4), (2, 6), (10, 11)]) == 7  # overlapping kernels count once
