"""Tests of the DITSAMViT backbone (tiny archs, CPU)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from segment_anything.modeling import ImageEncoderViT
from text_injection_helpers import loss_of, perturb

from dit_sam_mm.models.backbones import (BaseTextInjection, DITSAMViT, TextImageAttention,
                                         convert_sam_image_encoder)

TEXT_DIMS = 24
EMBED = 32


def tiny_arch(depth: int = 3, global_idx=(1, )) -> dict:
    return dict(embed_dims=EMBED, num_layers=depth, num_heads=4, feedforward_channels=4 * EMBED,
                global_attn_indexes=list(global_idx))


def build(text_mode: str = 'layerwise', img_size: int = 64, depth: int = 3, **kwargs) -> DITSAMViT:
    kwargs.setdefault('window_size', 3)
    return DITSAMViT(arch=tiny_arch(depth), img_size=img_size, out_channels=16,
                     text_mode=text_mode, text_dims=TEXT_DIMS, **kwargs)


@pytest.mark.parametrize('img_size,window,global_idx', [(1024, 14, (1, )), (160, 4, (0, 2))])
def test_parity_with_segment_anything(img_size, window, global_idx):
    torch.manual_seed(0)
    sam = ImageEncoderViT(img_size=img_size, embed_dim=EMBED, depth=3, num_heads=4,
                          out_chans=16, use_rel_pos=True, window_size=window,
                          global_attn_indexes=global_idx).eval()
    with torch.no_grad():
        for p in sam.parameters():  # SAM zero-inits pos / rel-pos tables: randomise everything
            p.normal_(0, 0.2)
    model = DITSAMViT(arch=tiny_arch(3, global_idx), img_size=img_size, out_channels=16,
                      window_size=window, text_mode='none').eval()
    model.load_state_dict(convert_sam_image_encoder(sam.state_dict()), strict=True)
    x = torch.randn(1, 3, img_size, img_size)
    with torch.no_grad():
        ref = sam(x)
        out, = model(x, torch.randn(1, 4, TEXT_DIMS))  # text ignored in 'none' mode
    assert out.shape == ref.shape == (1, 16, img_size // 16, img_size // 16)
    assert (out - ref).abs().max().item() <= 1e-4


@pytest.mark.parametrize('mode', ['e2e', 'layerwise'])
def test_zero_init_and_every_parameter_gets_a_gradient(mode):
    torch.manual_seed(0)
    model = build(mode).train()
    proj = [m.proj for m in model.text_injections]
    assert len(proj) == model.num_layers  # no projection after the last block in e2e
    assert [p.in_features for p in proj] == (
        [TEXT_DIMS] + [EMBED] * 2 if mode == 'e2e' else [TEXT_DIMS] * 3)
    assert all(p.weight.abs().sum() == 0 and p.bias.abs().sum() == 0 for p in proj)
    # an enclosing init_cfg for Linear layers does not undo the zero initialisation
    inited = build(mode, init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02))
    inited.init_weights()
    assert inited.layers[0].attn.qkv.weight.abs().sum() > 0
    assert all(p.abs().sum() == 0 for p in inited.text_injections.parameters())
    x, text = torch.randn(2, 3, 64, 64), torch.randn(2, 5, TEXT_DIMS)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):  # step 0: zero projections; step 1: after one update
        optim.zero_grad()
        loss_of(model(x, text, mask)[0]).backward()
        no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not no_grad, f'parameters without gradient: {no_grad}'
        for i, p in enumerate(proj):
            assert p.weight.grad.abs().sum() > 0, (step, i)
            assert p.bias.grad.abs().sum() > 0, (step, i)
        optim.step()
    assert all(p.weight.abs().sum() > 0 for p in proj)


@pytest.mark.parametrize('mode', ['e2e', 'layerwise'])
@pytest.mark.parametrize('global_attn', [True, False])
def test_padding_is_masked_and_flag_reproduces_release(mode, global_attn):
    torch.manual_seed(0)
    model = build(mode, global_attn_with_text=global_attn).eval()
    perturb(model)
    x, text = torch.randn(1, 3, 64, 64), torch.randn(1, 4, TEXT_DIMS)
    padded = torch.cat([text, torch.randn(1, 3, TEXT_DIMS)], dim=1)
    pad_mask = torch.tensor([[1] * 4 + [0] * 3])
    with torch.no_grad():
        ref, = model(x, text, torch.ones(1, 4, dtype=torch.bool))
        out, = model(x, padded, pad_mask)
        assert (out - ref).abs().max() < 1e-5
        # a batch of sentences of different lengths == each sentence alone
        batch, = model(torch.cat([x, x]), torch.cat([padded, padded]),
                       torch.cat([pad_mask, torch.ones(1, 7, dtype=torch.long)]))
        alone, = model(x, padded)
        assert (batch[0] - ref[0]).abs().max() < 1e-5
        assert (batch[1] - alone[0]).abs().max() < 1e-5
        model.mask_text_padding = False  # authors' release: padding keys are attended
        released, = model(x, padded, pad_mask)
    assert (released - ref).abs().max() > 1e-3


@pytest.mark.parametrize('mode', ['e2e', 'layerwise'])
def test_text_changes_the_embedding(mode):
    torch.manual_seed(0)
    model = build(mode).eval()
    perturb(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, = model(x, torch.randn(1, 4, TEXT_DIMS))
        b, = model(x, torch.randn(1, 4, TEXT_DIMS))
        plain, = model(x)  # no text: the SAM encoder alone
        none_model = build('none').eval()
        none_model.load_state_dict(model.state_dict(), strict=False)
        plain_ref, = none_model(x, torch.randn(1, 4, TEXT_DIMS))
    assert (a - b).abs().max() > 1e-3
    assert torch.allclose(plain, plain_ref, atol=1e-6)


def test_attention_matches_an_explicit_reference():
    """Global attention with text: relative bias on image-image logits only, padding masked."""
    torch.manual_seed(0)
    attn = TextImageAttention(16, num_heads=2, use_rel_pos=True, input_size=(3, 4))
    with torch.no_grad():
        attn.rel_pos_h.normal_()
        attn.rel_pos_w.normal_()
    B, T, H, W = 2, 3, 3, 4
    x, pad = torch.randn(B, T + H * W, 16), torch.tensor([[0, 0, 1], [0, 0, 0]]).bool()
    out = attn(x, (H, W), T, pad, use_window=False)
    # reference: explicit logits
    q, k, v = attn.qkv(x).reshape(B, T + H * W, 3, 2, 8).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / math.sqrt(8)
    rh = attn.rel_pos_h[torch.arange(H)[:, None] - torch.arange(H)[None] + H - 1]  # (H, H, 8)
    rw = attn.rel_pos_w[torch.arange(W)[:, None] - torch.arange(W)[None] + W - 1]  # (W, W, 8)
    qi = q[:, :, T:].reshape(B, 2, H, W, 8)
    bias = (torch.einsum('bnhwc,hkc->bnhwk', qi, rh)[..., None] +
            torch.einsum('bnhwc,wkc->bnhwk', qi, rw)[..., None, :]).reshape(B, 2, H * W, H * W)
    logits[:, :, T:, T:] += bias
    logits[:, :, :, :T] = logits[:, :, :, :T].masked_fill(pad[:, None, None, :], -torch.inf)
    ref = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(B, T + H * W, 16))
    assert torch.allclose(out, ref, atol=1e-5)
    # a window covering the whole grid gives the same result as global attention
    square = torch.randn(B, T + 9, 16)
    attn_sq = TextImageAttention(16, num_heads=2, use_rel_pos=True, input_size=(3, 3),
                                 window_size=3)
    attn_sq.load_state_dict({**attn.state_dict(), 'rel_pos_h': attn.rel_pos_h,
                             'rel_pos_w': attn.rel_pos_w[1:6]})
    assert torch.allclose(attn_sq(square, (3, 3), T, pad), attn_sq(square, (3, 3), T, pad, False),
                          atol=1e-5)


def test_512_model_loads_1024_weights_and_sizes_are_checked():
    torch.manual_seed(0)
    src = build('layerwise', img_size=1024, depth=2)
    state = src.state_dict()
    model = build('layerwise', img_size=512, depth=2).eval()
    model.load_state_dict(state, strict=True)  # ViTSAM's hooks resize pos_embed and rel-pos
    assert model.pos_embed.shape == (1, 32, 32, EMBED)
    assert model.layers[1].attn.rel_pos_h.shape == (63, 8)  # global block
    assert model.layers[0].attn.rel_pos_h.shape == (5, 8)  # windowed block: unchanged
    expected = F.interpolate(state['pos_embed'].permute(0, 3, 1, 2), size=(32, 32),
                             mode='bicubic', align_corners=False).permute(0, 2, 3, 1)
    assert torch.allclose(model.pos_embed, expected, atol=1e-6)
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 512, 512), torch.randn(1, 3, TEXT_DIMS))
        assert out.shape == (1, 16, 32, 32)
        # other multiples of the patch size: position tables resized on the fly
        assert model(torch.randn(1, 3, 320, 384))[0].shape == (1, 16, 20, 24)
    with pytest.raises(ValueError, match='patch_size'):
        model(torch.randn(1, 3, 500, 512))
    with pytest.raises(ValueError, match='img_size'):
        build('layerwise', img_size=500)


def test_frozen_encoder_trains_only_the_injections():
    model = build('layerwise', frozen=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith('text_injections.') for n in trainable)
    assert model.train() is model and model.eval() is model
    model.train()
    assert not model.layers.training and not model.patch_embed.training
    assert not model.channel_reduction.training
    assert all(m.training for m in model.text_injections.modules())
    perturb(model)
    loss_of(model(torch.randn(1, 3, 64, 64), torch.randn(1, 4, TEXT_DIMS))[0]).backward()
    assert all(p.grad.abs().sum() > 0 for p in model.text_injections.parameters())
    assert build('none').train() is not None


def test_with_cp_gives_the_same_output_and_gradients():
    torch.manual_seed(0)
    cfg = dict(injection=dict(type='LinearTextInjection', drop_rate=0.))
    plain = build('e2e', **cfg).train()
    perturb(plain)
    ckpt = build('e2e', with_cp=True, **cfg).train()
    ckpt.load_state_dict(plain.state_dict())
    x, text = torch.randn(1, 3, 64, 64), torch.randn(1, 4, TEXT_DIMS)
    mask = torch.tensor([[1, 1, 1, 0]])
    outs = []
    for model in (plain, ckpt):
        out, = model(x, text, mask)
        loss_of(out).backward()
        outs.append(out)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


@pytest.mark.parametrize('mode', ['e2e', 'layerwise'])
def test_static_prompts(mode):
    torch.manual_seed(0)
    model = build(mode, num_static_prompts=2).train()
    assert model.static_prompts.shape == ((3 if mode == 'layerwise' else 1), 2, EMBED)
    x, text = torch.randn(1, 3, 64, 64), torch.randn(1, 4, TEXT_DIMS)
    loss_of(model(x, text, torch.ones(1, 4))[0]).backward()
    assert model.static_prompts.grad.abs().sum() > 0
    model.eval()
    perturb(model)
    with torch.no_grad():
        ref, = model(x, text)
        out, = model(x, torch.cat([text, torch.randn(1, 2, TEXT_DIMS)], 1),
                     torch.tensor([[1, 1, 1, 1, 0, 0]]))
    assert (out - ref).abs().max() < 1e-5


def test_registry_and_custom_injection_contract():
    calls = []

    @MODELS.register_module(force=True)
    class RecordingTextInjection(BaseTextInjection):

        def __init__(self, in_dims, embed_dims, num_heads=1, init_cfg=None):
            super().__init__(in_dims, embed_dims, num_heads, init_cfg)
            self.proj = torch.nn.Linear(in_dims, embed_dims)

        def forward(self, text, text_mask=None, image_tokens=None, hw=None):
            calls.append((tuple(text.shape), text_mask.dtype, tuple(image_tokens.shape), hw,
                          self.num_heads))
            return self.proj(text)

    cfg = dict(type='DITSAMViT', arch=tiny_arch(2), img_size=64, out_channels=16,
               window_size=3, text_mode='e2e', text_dims=TEXT_DIMS,
               injection=dict(type='RecordingTextInjection'))
    model = MODELS.build(copy.deepcopy(cfg))
    assert isinstance(model, DITSAMViT)
    out = model(torch.randn(2, 3, 64, 64), torch.randn(2, 5, TEXT_DIMS), torch.ones(2, 5))
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (2, 16, 4, 4)
    assert calls == [((2, 5, TEXT_DIMS), torch.bool, (2, 16, EMBED), (4, 4), 4),
                     ((2, 5, EMBED), torch.bool, (2, 16, EMBED), (4, 4), 4)]
