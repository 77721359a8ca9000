"""projects/text_injection_ablation: configs, and the cross-attention injections in a tiny ViT."""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.registry import MODELS
from text_injection_helpers import loss_of, perturb

from dit_sam_mm.models.backbones import BaseTextInjection, DITSAMViT

ROOT = Path(__file__).resolve().parents[2]
# The project is imported as ``projects.*`` from the repository root: what ``PYTHONPATH=$PWD``
# does for tools/train.py (python -m pytest from the root has it on sys.path already).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from projects.text_injection_ablation.injections import (  # noqa: E402
    CrossAttentionFFNTextInjection, CrossAttentionTextInjection)

PROJECT = ROOT / 'projects' / 'text_injection_ablation'
CONFIGS = {
    'ldit-crossatt_vitb_refcoco.py': 'CrossAttentionTextInjection',
    'ldit-crossatt-ffn_vitb_refcoco.py': 'CrossAttentionFFNTextInjection',
}
TEXT_DIMS = 24
EMBED = 32
# (type, residual): the configs' residual form and the "attention output only" alternative.
VARIANTS = [('CrossAttentionTextInjection', True), ('CrossAttentionTextInjection', False),
            ('CrossAttentionFFNTextInjection', True), ('CrossAttentionFFNTextInjection', False)]
IDS = ['crossatt', 'crossatt-nores', 'crossatt-ffn', 'crossatt-ffn-nores']


def build(inj_type: str, residual: bool = True, text_mode: str = 'layerwise',
          **kwargs) -> DITSAMViT:
    """Tiny DITSAMViT (2 blocks, 2 heads, 64 px -> 4 x 4 tokens) with the given injection."""
    injection = dict(type=inj_type, drop_rate=0.)
    if inj_type != 'LinearTextInjection':
        injection.update(residual=residual, attn_drop_rate=0.)
    if inj_type == 'CrossAttentionFFNTextInjection':
        injection['feedforward_channels'] = 48
    arch = dict(embed_dims=EMBED, num_layers=2, num_heads=2, feedforward_channels=64,
                global_attn_indexes=[1])
    return DITSAMViT(arch=arch, img_size=64, window_size=2, out_channels=16, text_mode=text_mode,
                     text_dims=TEXT_DIMS, injection=injection, **kwargs)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_project_config_parses_imports_and_overrides_only_the_injection(name):
    cfg = Config.fromfile(str(PROJECT / 'configs' / name))  # runs custom_imports
    assert cfg.custom_imports == dict(
        imports=['dit_sam_mm', 'projects.text_injection_ablation.injections'],
        allow_failed_imports=False)
    assert 'projects.text_injection_ablation.injections' in sys.modules
    injection = cfg.model.backbone.injection
    assert injection.type == CONFIGS[name] and MODELS.get(injection.type) is not None
    base = Config.fromfile(str(ROOT / 'configs' / 'dit' / 'ldit_vitb_refcoco.py'))
    cfg.model.backbone.pop('injection')
    assert cfg.model.to_dict() == base.model.to_dict()
    assert {k: v for k, v in cfg.to_dict().items() if k not in ('model', 'custom_imports')} == \
        {k: v for k, v in base.to_dict().items() if k not in ('model', 'custom_imports')}
    # the injection as the ViT-B backbone builds it (in_dims / embed_dims / num_heads filled in)
    module = MODELS.build(dict(injection, in_dims=768, embed_dims=768, num_heads=12))
    assert isinstance(module, BaseTextInjection) and module.residual


def test_injection_matches_an_explicit_reference_and_keeps_rows_independent():
    torch.manual_seed(0)
    inj = CrossAttentionFFNTextInjection(TEXT_DIMS, EMBED, num_heads=4, attn_drop_rate=0.,
                                         drop_rate=0., zero_init=False).eval()
    text, image = torch.randn(2, 5, TEXT_DIMS), torch.randn(2, 12, EMBED)
    image_before = image.clone()
    with torch.no_grad():
        out = inj(text, text_mask=None, image_tokens=image, hw=(3, 4))
        # reference: per-head softmax attention written out, then P(text) + A, then the FFN
        heads, d = 4, EMBED // 4
        q = inj.q(text).view(2, 5, heads, d).transpose(1, 2)
        k, v = inj.kv(inj.norm_kv(image)).view(2, 12, 2, heads, d).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1) @ v
        x = inj.proj(text) + inj.out_proj(attn.transpose(1, 2).reshape(2, 5, EMBED))
        ffn = inj.ffn.layers
        ref = x + ffn[1](F.gelu(ffn[0][0](inj.norm_ffn(x))))
        assert (out - ref).abs().max() < 1e-5
        assert torch.equal(image, image_before)  # image tokens are read-only
        # padding rows (queries) never change real rows; the image does change them
        text2 = text.clone()
        text2[:, 3:] = torch.randn(2, 2, TEXT_DIMS)
        mask = torch.tensor([[1, 1, 1, 0, 0]] * 2, dtype=torch.bool)
        out2 = inj(text2, text_mask=mask, image_tokens=image)
        assert (out2[:, :3] - out[:, :3]).abs().max() < 1e-6
        assert (inj(text, image_tokens=torch.randn_like(image)) - out).abs().max() > 1e-3
    with pytest.raises(ValueError, match='image tokens'):
        inj(text)
    with pytest.raises(ValueError, match='divisible'):
        CrossAttentionTextInjection(TEXT_DIMS, EMBED, num_heads=3)


@pytest.mark.parametrize('inj_type,residual', VARIANTS, ids=IDS)
def test_zero_start_equals_ldit_and_init_cfg_keeps_it(inj_type, residual):
    torch.manual_seed(0)
    model = build(inj_type, residual).eval()
    inj = model.text_injections[0]
    zeroed = {id(p) for layer in inj.zero_init_layers() for p in layer.parameters()}
    assert len(zeroed) == 2 * (residual + 1 + (inj_type == 'CrossAttentionFFNTextInjection'))
    assert inj.q.weight.abs().sum() > 0 and inj.kv.weight.abs().sum() > 0
    # an enclosing init_cfg for Linear layers does not undo the zero initialisation
    inited = build(inj_type, residual, init_cfg=dict(type='TruncNormal', layer='Linear', std=.02))
    inited.init_weights()
    for layer in inited.text_injections[1].zero_init_layers():
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    # at the start the text tokens are zero, exactly as with L-DIT's linear injection
    ldit = build('LinearTextInjection').eval()
    x, text = torch.randn(2, 3, 64, 64), torch.randn(2, 5, TEXT_DIMS)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    ldit_sd = {k: v for k, v in model.state_dict().items() if not k.startswith('text_inj')}
    ldit.load_state_dict(ldit_sd, strict=False)
    with torch.no_grad():
        out, = model(x, text, mask)
        ref, = ldit(x, text, mask)
    assert out.shape == (2, 16, 4, 4)
    assert (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize('inj_type,residual', VARIANTS, ids=IDS)
def test_every_parameter_gets_a_gradient_and_zero_init_does_not_stall(inj_type, residual):
    torch.manual_seed(0)
    model = build(inj_type, residual).train()
    x, text = torch.randn(2, 3, 64, 64), torch.randn(2, 5, TEXT_DIMS)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):  # step 0: zero start; step 1: after one update
        optim.zero_grad()
        out, = model(x, text, mask)
        loss_of(out).backward()
        # every parameter is in the graph (DDP without find_unused_parameters)
        no_grad = [n for n, p in model.named_parameters() if p.grad is None]
        assert not no_grad, f'parameters without gradient: {no_grad}'
        for i, inj in enumerate(model.text_injections):
            zeroed = {id(p) for layer in inj.zero_init_layers() for p in layer.parameters()}
            for name, p in inj.named_parameters():
                nonzero = p.grad.abs().sum() > 0
                if step == 1 or id(p) in zeroed:
                    assert nonzero, (step, i, name)
                else:
                    # behind a zero output projection / zero FFN output: zero, not missing
                    assert not nonzero, (step, i, name)
        optim.step()


@pytest.mark.parametrize('inj_type,residual', VARIANTS, ids=IDS)
def test_padding_is_invariant_and_text_matters(inj_type, residual):
    torch.manual_seed(0)
    model = build(inj_type, residual).eval()
    perturb(model)
    x, text = torch.randn(1, 3, 64, 64), torch.randn(1, 4, TEXT_DIMS)
    padded = torch.cat([text, torch.randn(1, 3, TEXT_DIMS)], dim=1)
    pad_mask = torch.tensor([[1] * 4 + [0] * 3])
    with torch.no_grad():
        ref, = model(x, text, torch.ones(1, 4, dtype=torch.bool))
        out, = model(x, padded, pad_mask)
        # a batch of sentences of different lengths == each sentence alone
        batch, = model(torch.cat([x, x]), torch.cat([padded, padded]),
                       torch.cat([pad_mask, torch.ones(1, 7, dtype=torch.long)]))
        alone, = model(x, padded)
        other, = model(x, torch.randn(1, 4, TEXT_DIMS))
    assert (out - ref).abs().max() < 1e-5
    assert (batch[0] - ref[0]).abs().max() < 1e-5
    assert (batch[1] - alone[0]).abs().max() < 1e-5
    assert (other - ref).abs().max() > 1e-3  # the text changes the image embedding


@pytest.mark.parametrize('inj_type', ['CrossAttentionTextInjection',
                                      'CrossAttentionFFNTextInjection'])
def test_e2e_mode_and_dropout(inj_type):
    """E-DIT feeds block i > 0 the previous text tokens (in_dims = embed_dims); dropout on."""
    torch.manual_seed(0)
    model = build(inj_type, text_mode='e2e')
    for inj in model.text_injections:
        inj.attn_drop_rate, inj.drop.p = 0.1, 0.1
    assert [inj.q.in_features for inj in model.text_injections] == [TEXT_DIMS, EMBED]
    perturb(model)
    x, text = torch.randn(2, 3, 64, 64), torch.randn(2, 5, TEXT_DIMS)
    out, = model.train()(x, text, torch.tensor([[1] * 5, [1] * 3 + [0] * 2]))
    loss_of(out).backward()
    assert out.shape == (2, 16, 4, 4)
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():  # eval: attention / output dropout off, deterministic
        a, = model.eval()(x, text)
        b, = model(x, text)
    assert torch.equal(a, b)
