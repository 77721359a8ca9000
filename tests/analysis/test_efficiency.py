"""Efficiency properties of the model: the reference attention mask, bf16, no host syncs."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmseg.models.losses import CrossEntropyLoss
from transformers import BertConfig, BertModel

from dit_sam_mm.models.backbones.attn_bias import build_attn_mask, decomposed_rel_pos_terms
from dit_sam_mm.models.backbones.text_image_attention import TextImageAttention
from dit_sam_mm.models.losses import MaskBCELoss
from dit_sam_mm.analysis.benchmark import synthetic_batch

from host_sync_guard import HostSyncError, forbid_host_sync
from tiny_dit_sam import IMG, VOCAB, build_tiny


def perturb_(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    """Add noise to every parameter, so zero-initialised parts (text projections, relative
    tables) take part in the computation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)


def test_reference_attention_mask_is_built_in_place_correctly():
    """The reference's in-place mask equals the dense formula and its gradient reaches the
    relative tables. (The SDPA path folds the bias instead: tests/models/test_folded_attention.py
    compares the two.)"""
    torch.manual_seed(0)
    attn = TextImageAttention(16, num_heads=2, use_rel_pos=True, input_size=(3, 5))
    with torch.no_grad():
        attn.rel_pos_h.normal_()
        attn.rel_pos_w.normal_()
    B, T, H, W = 2, 3, 3, 5
    q = torch.randn(B, 2, H * W, 8)
    pad = torch.tensor([[False, False, True], [False, False, False]])
    mask = build_attn_mask(decomposed_rel_pos_terms(q, attn.rel_pos_h, attn.rel_pos_w, (H, W)),
                           pad, T, True, H * W, q.dtype, q.device)
    assert mask.shape == (B, 2, T + H * W, T + H * W)
    rel_h, rel_w = decomposed_rel_pos_terms(q, attn.rel_pos_h, attn.rel_pos_w, (H, W))
    dense = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(B, 2, H * W, H * W)
    assert torch.equal(mask[:, :, T:, T:], dense)
    assert torch.equal(mask[:, :, :T, T:], torch.zeros(B, 2, T, H * W))
    assert (mask[0, :, :, 2] == torch.finfo(q.dtype).min).all()
    assert (mask[:, :, :, :2] == 0).all() and (mask[1, :, :, :T] == 0).all()
    upstream = torch.randn(B, 2, H * W, H * W)

    def rel_pos_h_grad(image_block):
        attn.rel_pos_h.grad = None
        rel_terms = decomposed_rel_pos_terms(q, attn.rel_pos_h, attn.rel_pos_w, (H, W))
        (image_block(rel_terms) * upstream).sum().backward()
        return attn.rel_pos_h.grad

    in_place = rel_pos_h_grad(lambda terms: build_attn_mask(
        terms, pad, T, True, H * W, q.dtype, q.device)[:, :, T:, T:])
    formula = rel_pos_h_grad(lambda terms: (terms[0][..., :, None] + terms[1][
        ..., None, :]).reshape(B, 2, H * W, H * W))
    assert torch.allclose(in_place, formula, atol=1e-5)


def test_bf16_and_fp32_masks_agree():
    """Predicted masks under bfloat16 autocast vs float32, same model and inputs.

    Agreement: >= 99% of the pixels get the same 0/1 label. A random-weight model is useless for
    this (its logits are all within ~0.1 of 0, so every pixel is foreground in both), so the
    logits are first spread to a standard deviation of 4 by scaling the last hypernetwork layer
    (logits are linear in it), and the test checks that the float32 masks are mixed (10-90%
    foreground) and that at most 5% of the logits lie within 0.1 of the threshold.
    """
    torch.manual_seed(0)
    model = build_tiny().eval()
    perturb_(model)
    data = synthetic_batch(4, IMG, VOCAB, with_gt=False, seed=1)
    with torch.no_grad():
        logits = model(**model.data_preprocessor(data), mode='tensor')
        last = model.decode_head.mask_decoder.output_hypernetworks_mlps[0].layers[-1]
        last.weight.mul_(4 / logits.std())
        last.bias.mul_(4 / logits.std())
        logits = model(**model.data_preprocessor(data), mode='tensor')
        fp32 = torch.stack([s.pred_sem_seg.data for s in model.test_step(data)])
        dtypes = []
        hook = model.backbone.layers[0].attn.qkv.register_forward_hook(
            lambda mod, inp, out: dtypes.append(out.dtype))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            bf16 = torch.stack([s.pred_sem_seg.data for s in model.test_step(data)])
        hook.remove()
    assert dtypes == [torch.bfloat16]  # the encoder did run in bfloat16
    threshold_logit = torch.logit(torch.tensor(model.decode_head.threshold))
    assert (logits - threshold_logit).abs().lt(0.1).float().mean() <= 0.05
    assert 0.1 <= fp32.float().mean() <= 0.9
    agreement = (fp32 == bf16).float().mean().item()
    assert agreement >= 0.99, f'only {agreement:.2%} of the pixels agree'


@pytest.mark.parametrize('amp', [False, True])
def test_training_step_does_not_synchronise(monkeypatch, amp):
    """Forward, losses, backward, gradient-norm clipping and a fused Adam step of the tiny model
    through the optimiser wrapper (``update_params``, as MMEngine's ``train_step``) without one
    host-device synchronisation, with the gradient norm deferred as ``DeferredRuntimeInfoHook``
    does.

    Left outside: the data preprocessor (it copies the batch to the device, once per step by
    design) and the logging, which reads the losses and the norm at the logging interval.
    """
    torch.manual_seed(0)
    model = build_tiny().train()
    wrapper = build_optim_wrapper(model, dict(
        type='BF16OptimWrapper' if amp else 'DeferredGradNormOptimWrapper',
        optimizer=dict(type='Adam', lr=1e-4, fused=True), clip_grad=dict(max_norm=0.15)))
    wrapper.defer_grad_norm()
    data = model.data_preprocessor(synthetic_batch(2, IMG, VOCAB), True)
    sync_debug = torch.cuda.is_available()
    if sync_debug:
        model.cuda()
        data = model.data_preprocessor(synthetic_batch(2, IMG, VOCAB), True)
        torch.cuda.set_sync_debug_mode('error')
    try:
        with forbid_host_sync(monkeypatch):
            with wrapper.optim_context(model):
                losses = model(**data, mode='loss')
            loss, log_vars = model.parse_losses(losses)
            wrapper.update_params(loss)
    finally:
        if sync_debug:
            torch.cuda.set_sync_debug_mode('default')
    assert torch.isfinite(log_vars['loss']).item()  # logging reads values, outside the guard
    assert wrapper.pop_grad_norm().item() > 0 and wrapper.pop_grad_norm() is None


def test_sync_guard_catches_mmengine_gradient_norm_logging(monkeypatch):
    """Positive control: ``OptimWrapper`` with ``clip_grad`` reads the norm with ``float()``, and so
    does ``DeferredGradNormOptimWrapper`` until a hook defers the norm."""
    for wrapper_type in ('OptimWrapper', 'DeferredGradNormOptimWrapper'):
        model = torch.nn.Linear(4, 2)
        wrapper = build_optim_wrapper(model, dict(
            type=wrapper_type, optimizer=dict(type='SGD', lr=1e-3), clip_grad=dict(max_norm=1.0)))
        with pytest.raises(HostSyncError), forbid_host_sync(monkeypatch):
            wrapper.update_params(model(torch.randn(3, 4)).square().mean())


def test_sync_guard_catches_what_was_fixed(monkeypatch):
    """Positive controls: the guard fires on mmseg's sigmoid cross-entropy (boolean-mask
    assertion, ``.item()``) and on BERT with a 2-D padding mask (``torch.all(mask == 1)``),
    the two syncs that ``MaskBCELoss`` and ``BertNeck`` avoid."""
    logits, label = torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8))
    ce = CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)
    with pytest.raises(HostSyncError), forbid_host_sync(monkeypatch):
        ce(logits, label, ignore_index=255)
    with forbid_host_sync(monkeypatch):
        MaskBCELoss()(logits, label, ignore_index=255)
    bert = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, vocab_size=50), add_pooling_layer=False)
    ids, mask = torch.randint(0, 50, (2, 4)), torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    with pytest.raises(HostSyncError), forbid_host_sync(monkeypatch):
        bert(input_ids=ids, attention_mask=mask)


def test_mask_bce_loss_equals_mmseg_sigmoid_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 16, 16)
    label = torch.randint(0, 2, (2, 16, 16))
    label[0, :4] = 255
    weight = torch.rand(2, 16, 16)
    ce = CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True, loss_weight=0.7)
    ours = MaskBCELoss(loss_weight=0.7)
    assert torch.allclose(ours(logits, label, ignore_index=255),
                          ce(logits, label, ignore_index=255), atol=1e-6)
    assert torch.allclose(ours(logits, label, weight=weight, ignore_index=255),
                          ce(logits, label, weight=weight, ignore_index=255), atol=1e-6)
    assert ours(logits.bfloat16(), label).dtype == torch.float32


def test_bf16_optim_wrapper_autocasts_the_forward_only():
    model = torch.nn.Linear(4, 2)
    wrapper = build_optim_wrapper(model, dict(type='BF16OptimWrapper', dtype='bfloat16',
                                              optimizer=dict(type='Adam', lr=1e-3)))
    with wrapper.optim_context(model):
        out = model(torch.randn(3, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().square().mean())
    assert model.weight.dtype == torch.float32 and model.weight.grad is None
    with pytest.raises(ValueError, match='AmpOptimWrapper'):
        build_optim_wrapper(model, dict(type='BF16OptimWrapper', dtype='float16',
                                        optimizer=dict(type='Adam', lr=1e-3)))
