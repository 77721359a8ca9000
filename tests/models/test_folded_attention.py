"""The SDPA attention (relative bias and padding folded into extra channels) equals the reference.

Every mode of ``DITSAMViT`` runs twice with the same weights: ``attn_impl='sdpa'`` and the
hand-written ``'naive'`` attention with its dense additive mask (the released code's way, the
benchmark's reference). Outputs and gradients (image, text features, every parameter: qkv / proj,
``rel_pos_h`` / ``rel_pos_w``, text injections, static prompts) must agree to a relative error of
1e-5 in float32. Every parameter is randomised first, so the zero-initialised text injections and
relative tables take part, as in a trained model.
"""
import pytest
import torch
import torch.nn.functional as F
from text_injection_helpers import loss_of

from dit_sam_mm.models.backbones import DITSAMViT, TextImageAttention
from dit_sam_mm.models.backbones.attn_bias import (_relative_index, build_attn_mask,
                                                   naive_attention)
from dit_sam_mm.models.backbones.folded_attention import (_constant_channels, fold_pays,
                                                          folded_attention, folded_width)

TEXT_DIMS = 24
TOLERANCE = 1e-5


def build_pair(embed: int = 32, heads: int = 4, depth: int = 3, img_size: int = 64,
               **kwargs) -> tuple:
    """(sdpa, naive) tiny backbones with the same random weights; windows of 3 patches."""
    arch = dict(embed_dims=embed, num_layers=depth, num_heads=heads,
                feedforward_channels=2 * embed, global_attn_indexes=[1])
    cfg = dict(arch=arch, img_size=img_size, out_channels=16, window_size=3, text_dims=TEXT_DIMS,
               injection=dict(type='LinearTextInjection', drop_rate=0.0), **kwargs)
    sdpa, naive = DITSAMViT(**cfg).eval(), DITSAMViT(**cfg, attn_impl='naive').eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sdpa.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    naive.load_state_dict(sdpa.state_dict())
    return sdpa, naive


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def outputs_and_gradients(model: DITSAMViT, x: torch.Tensor, text, mask) -> dict:
    x = x.clone().requires_grad_()
    inputs = dict(x=x)
    if text is not None:
        inputs['text'] = text = text.clone().requires_grad_()
    out, = model(x, text, mask)
    loss_of(out).backward()
    return dict(out=out.detach(), **{f'grad {k}': v.grad for k, v in inputs.items()},
                **{f'grad {k}': p.grad for k, p in model.named_parameters()})


# (backbone options, input side, text length or None for no text, mask) per mode
MODES = {
    'none (SAM windows)': (dict(text_mode='none'), 64, None),
    'layerwise, global': (dict(), 64, 6),
    'e2e, global': (dict(text_mode='e2e'), 64, 6),
    'layerwise, windows': (dict(global_attn_with_text=False), 64, 6),
    'e2e, windows': (dict(text_mode='e2e', global_attn_with_text=False), 64, 6),
    'static prompts, global': (dict(num_static_prompts=2), 64, 6),
    'static prompts e2e, windows': (dict(text_mode='e2e', num_static_prompts=2,
                                         global_attn_with_text=False), 64, 6),
    'release (padding attended)': (dict(mask_text_padding=False), 64, 6),
    'release, windows': (dict(mask_text_padding=False, global_attn_with_text=False), 64, 6),
    'other input size, global': (dict(), 96, 6),
    'other input size, windows': (dict(global_attn_with_text=False), 80, 6),
    'head width 80 (ViT-H)': (dict(embed=160, heads=2, depth=2), 64, 6),
    'no text mask': (dict(), 64, 0),
}


@pytest.mark.parametrize('options,side,text_len', MODES.values(), ids=MODES.keys())
def test_sdpa_equals_the_reference_in_outputs_and_gradients(options, side, text_len):
    sdpa, naive = build_pair(**options)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, side, side, generator=gen)
    text = mask = None
    if text_len is not None:
        text = torch.randn(2, max(text_len, 4), TEXT_DIMS, generator=gen)
    if text_len:  # the first sentence has 2 padding tokens
        mask = torch.tensor([[1] * (text_len - 2) + [0] * 2, [1] * text_len])
    ours = outputs_and_gradients(sdpa, x, text, mask)
    ref = outputs_and_gradients(naive, x, text, mask)
    assert ours.keys() == ref.keys()
    for name in ref:
        assert ref[name] is not None and ref[name].abs().max() > 0, name  # all take part
        assert relative_error(ours[name], ref[name]) <= TOLERANCE, name
    with torch.no_grad():  # CPU inference: SDPA with the dense mask (fold_pays is False)
        inference, = sdpa(x, text, mask)
    assert relative_error(inference, ref['out']) <= TOLERANCE


def attention_inputs(dtype: torch.dtype, B: int = 2, heads: int = 2, T: int = 4, H: int = 3,
                     W: int = 5, d: int = 16):
    """q, k, v over [text; image] tokens, relative terms and padding (as leaves of ``dtype``)."""
    gen = torch.Generator().manual_seed(2)
    N = T + H * W
    q, k, v = (torch.randn(B, heads, N, d, generator=gen) for _ in range(3))
    rel = (torch.randn(B, heads, H, W, H, generator=gen), torch.randn(B, heads, H, W, W,
                                                                      generator=gen))
    pad = torch.tensor([[False, True, True, True], [False] * T])
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v, *rel)]
    return leaves, pad, T


def attention_with_gradients(impl: str, dtype: torch.dtype) -> list:
    (q, k, v, rel_h, rel_w), pad, T = attention_inputs(dtype)
    if impl == 'sdpa':
        out = folded_attention(q, k, v, (rel_h, rel_w), pad, T, True)
    else:
        mask = build_attn_mask((rel_h, rel_w), pad, T, True, k.shape[2] - T, dtype, q.device)
        out = naive_attention(q, k, v, mask)
    out.float().square().sum().backward()
    return [out.float(), *(t.grad.float() for t in (q, k, v, rel_h, rel_w))]


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_padding_channel_forms_no_nan_or_inf(dtype):
    """Padded keys get the dtype's minimum as logit: outputs and gradients stay finite in
    float32 and bfloat16 and match the float32 reference (to bfloat16's precision there)."""
    tolerance = TOLERANCE if dtype == torch.float32 else 2e-2
    ref = attention_with_gradients('naive', torch.float32)
    for ours, expected in zip(attention_with_gradients('sdpa', dtype), ref):
        assert torch.isfinite(ours).all()
        assert relative_error(ours, expected) <= tolerance


def test_folded_width_is_a_multiple_of_8():
    assert folded_width(64, 32 + 32, False) == 128  # ViT-B, 512 input, global, no padding
    assert folded_width(64, 32 + 32, True) == 136
    assert folded_width(64, 14 + 14, True) == 96  # ViT-B windows: the padding channel is free
    assert folded_width(80, 32 + 32, True) == 152  # ViT-H
    assert folded_width(64, 0, True) == 72


def make_attention(window_size: int = 0) -> TextImageAttention:
    attn = TextImageAttention(32, num_heads=2, use_rel_pos=True, input_size=(4, 4),
                              window_size=window_size)
    with torch.no_grad():
        attn.rel_pos_h.normal_()
        attn.rel_pos_w.normal_()
    return attn


def attention_call(attn: TextImageAttention, x: torch.Tensor) -> torch.Tensor:
    pad = torch.tensor([[False, False, True], [False, False, False]])
    return attn(x, (4, 4), 3, pad, use_window=False)


def test_cpu_runs_the_fused_kernel_and_saves_no_dense_mask():
    """Forward + backward on CPU: SDPA's fused CPU kernel, no (N, N) tensor kept for backward
    (the reference, the positive control, keeps several)."""
    x = torch.randn(2, 3 + 16, 32, requires_grad=True)
    attn = make_attention()

    def square_shapes(impl: str) -> list:
        attn.attn_impl = impl
        shapes = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            shapes.append(tuple(t.shape))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = attention_call(attn, x)
        out.sum().backward()
        return [s for s in shapes if s[-2:] == (19, 19)]

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        assert square_shapes('sdpa') == []
    names = {e.name for e in prof.events()}
    assert 'aten::_scaled_dot_product_flash_attention_for_cpu' in names
    assert 'aten::_scaled_dot_product_flash_attention_for_cpu_backward' in names
    assert not any('math' in name for name in names)
    assert square_shapes('naive')


def test_size_constants_are_built_once_and_serve_training_after_inference():
    """Index and one-hot tensors come from a per-size cache (the same objects on every call); a
    cache filled under inference mode still serves a training backward pass, which saves the
    relative index."""
    _relative_index.cache_clear()
    _constant_channels.cache_clear()
    attn = make_attention(window_size=2)
    x = torch.randn(2, 3 + 16, 32)
    with torch.inference_mode():
        attention_call(attn, x)
        attn(x, (4, 4), 3)  # windowed
        index = _relative_index(4, 4, torch.device('cpu'))
    assert index is _relative_index(4, 4, torch.device('cpu')) and not index.is_inference()
    x.requires_grad_()
    (attention_call(attn, x).sum() + attn(x, (4, 4), 3).sum()).backward()
    assert attn.rel_pos_h.grad.abs().max() > 0
    args = (3, (4, 4), 16, True, torch.float32, torch.device('cpu'))
    first = _constant_channels(*args)
    assert first is _constant_channels(*args)
    assert all(torch.equal(a, b) for a, b in zip(first, _constant_channels.__wrapped__(*args)))


def test_compiles_without_graph_breaks():
    """``torch.compile(fullgraph=True)`` traces the folded attention (the size cache steps
    aside while compiling) and gives the eager outputs and gradients."""
    attn = make_attention()
    x = torch.randn(2, 3 + 16, 32, requires_grad=True)
    eager = attention_call(attn, x)
    eager_grad, = torch.autograd.grad(eager.square().sum(), attn.rel_pos_h)
    compiled = torch.compile(attention_call, backend='aot_eager', fullgraph=True)(attn, x)
    compiled_grad, = torch.autograd.grad(compiled.square().sum(), attn.rel_pos_h)
    assert relative_error(compiled, eager) <= TOLERANCE
    assert relative_error(compiled_grad, eager_grad) <= TOLERANCE


def test_without_bias_or_padding_sdpa_is_called_as_it_is():
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 2, 7, 16, generator=gen) for _ in range(3))
    assert torch.equal(folded_attention(q, k, v, None, None, 0, False),
                       F.scaled_dot_product_attention(q, k, v))


def test_only_eager_cpu_inference_keeps_the_dense_mask():
    q = torch.randn(1, 2, 5, 8)
    assert not fold_pays(q, q, q, None)
    assert fold_pays(torch.randn(1, 2, 5, 8, device='meta'), q, q, None)  # any other device
    traced = []
    torch.jit.trace(lambda t: traced.append(fold_pays(t, t, t, None)) or t, q, check_trace=False)
    assert traced == [True]  # ONNX export traces
    assert fold_pays(q.requires_grad_(), q, q, None)


class FoldedModule(torch.nn.Module):
    """``folded_attention`` with relative terms and padding, as a module to export."""

    def forward(self, q, k, v, rel_h, rel_w, pad):
        return folded_attention(q, k, v, (rel_h, rel_w), pad, 4, True)


def test_folded_attention_exports_to_onnx(tmp_path):
    """The fold (taken when a CUDA model is exported) exports with a dynamic batch size, at the
    opset of ``dit_sam_mm.apis.export_onnx``, and onnxruntime gives PyTorch's result."""
    onnxruntime = pytest.importorskip('onnxruntime')
    names = ['q', 'k', 'v', 'rel_h', 'rel_w', 'pad']
    (q, k, v, rel_h, rel_w), pad, _ = attention_inputs(torch.float32)
    inputs = [t.detach() for t in (q, k, v, rel_h, rel_w)] + [pad]
    path = tmp_path / 'folded.onnx'
    torch.onnx.export(FoldedModule(), tuple(inputs), str(path), dynamo=False, opset_version=17,
                      input_names=names, output_names=['out'],
                      dynamic_axes={name: {0: 'batch'} for name in names + ['out']})
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for batch in (1, 2):
        feed = {n: t[:batch].numpy() for n, t in zip(names, inputs)}
        got, = session.run(['out'], feed)
        expected = FoldedModule()(*(t[:batch] for t in inputs))
        assert relative_error(torch.from_numpy(got), expected) <= TOLERANCE

