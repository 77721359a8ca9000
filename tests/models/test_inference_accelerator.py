"""The GPU fast path: who takes it, and that the accelerated inference computes the same masks.

Without a GPU, the accelerated path is run on the CPU: bfloat16 autocast for real, and
``torch.compile`` with the ``eager`` backend, which traces the same graph (dynamo) without
generating kernels. CUDA graphs are checked by the inferencer's GPU test where there is a GPU.
"""
import copy

import pytest
import torch
from mmseg.structures import SegDataSample
from refer_model_fixture import write_tiny_model

from dit_sam_mm.apis import ReferSegInferencer, init_refer_model
from dit_sam_mm.apis.onnx_export import example_inputs
from dit_sam_mm.utils.fast_path import FastPath, accelerate_inference


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_fast'))


def _batch(model, batch=2):
    return example_inputs(batch, (64, 64), 20, model.neck.bert.config.vocab_size, seed=4)


def test_accelerated_inference_traces_as_one_graph_and_matches(tiny):
    model, _ = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu')
    images, ids, mask = _batch(model)
    with torch.no_grad():
        reference = model.mask_logits(images, ids, mask)
        # One graph, no breaks: what CUDA graphs need.
        whole = torch.compile(model.mask_logits, backend='eager', fullgraph=True)
        torch.testing.assert_close(whole(images, ids, mask), reference)
        model.accelerate_inference('bfloat16', compile_mode='default', backend='eager')
        fast = model.inference_accelerator(images, ids, mask)
    assert fast.dtype == torch.float32
    # bfloat16 keeps 8 bits of mantissa: logits agree to a few hundredths.
    torch.testing.assert_close(fast, reference, atol=0.1, rtol=0.05)
    assert not torch.equal(fast, reference)  # autocast really ran


def test_predict_uses_the_accelerator_only_in_eval_and_a_copy_drops_it(tiny):
    model, _ = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu')
    calls = []
    model.accelerate_inference(None, compile_mode=None)
    assert model.inference_accelerator is None
    model.accelerate_inference('bfloat16', compile_mode=None)
    accelerator = model.inference_accelerator
    model.inference_accelerator = lambda *args: calls.append(args) or accelerator(*args)
    images, ids, mask = _batch(model, batch=1)
    sample = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                         ori_shape=(64, 64)))
    sample.set_data(dict(text_ids=ids[0], text_mask=mask[0]))
    with torch.no_grad():
        model.encode_decode(images, [sample])
        assert len(calls) == 1
        model.train()
        model.encode_decode(images, [sample])
        assert len(calls) == 1  # training never goes through it
    model.inference_accelerator = accelerator
    assert copy.deepcopy(model).inference_accelerator is None  # e.g. MMEngine's EMA copy


def test_accelerate_inference_helper_unwraps_and_skips_other_models(tiny):
    model, _ = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu')
    assert not accelerate_inference(model, FastPath(None, False))
    assert accelerate_inference(model, FastPath('bfloat16', compile=False))
    assert model.inference_accelerator.dtype == torch.bfloat16
    assert model.inference_accelerator.compile_mode is None
    assert not accelerate_inference(torch.nn.Linear(2, 2), FastPath('bfloat16', True))


def test_inferencer_takes_the_fast_path_on_cuda_only_by_default(tiny):
    on_cpu = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu')
    assert on_cpu.model.inference_accelerator is None
    forced = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu',
                                fast=True)
    assert forced.model.inference_accelerator.compile_mode == 'reduce-overhead'
    assert forced.model.inference_accelerator.dtype == torch.bfloat16
