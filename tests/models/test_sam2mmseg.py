"""Tests of the SAM checkpoint key mapping and of tools/model_converters/sam2mmseg.py."""
import subprocess
import sys

import pytest
import torch
from mmpretrain.models.backbones.vit_sam import ViTSAM
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

from dit_sam_mm.models.backbones import (DITSAMViT, convert_sam_checkpoint,
                                         convert_sam_image_encoder, infer_sam_arch)
from dit_sam_mm.models.decode_heads import is_dropped_sam_decoder_key


def tiny_sam_state_dict() -> dict:
    """A flat state dict with the key layout of sam_vit_*.pth, at reduced sizes."""
    torch.manual_seed(0)
    encoder = ImageEncoderViT(img_size=128, embed_dim=32, depth=3, num_heads=4, out_chans=16,
                              use_rel_pos=True, window_size=4, global_attn_indexes=(2, ))
    prompt = PromptEncoder(embed_dim=16, image_embedding_size=(8, 8), input_image_size=(128, 128),
                           mask_in_chans=4)
    decoder = MaskDecoder(transformer_dim=16, iou_head_hidden_dim=16,
                          transformer=TwoWayTransformer(depth=2, embedding_dim=16, num_heads=2,
                                                        mlp_dim=32))
    state = {}
    for prefix, module in (('image_encoder.', encoder), ('prompt_encoder.', prompt),
                           ('mask_decoder.', decoder)):
        for key, value in module.state_dict().items():
            state[prefix + key] = value.normal_() if value.is_floating_point() else value
    return state


def tiny_backbone(**kwargs) -> DITSAMViT:
    arch = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=128,
                global_attn_indexes=[2])
    return DITSAMViT(arch=arch, img_size=128, out_channels=16, window_size=4, **kwargs)


def test_convert_whole_checkpoint_and_load_backbone():
    src = tiny_sam_state_dict()
    out = convert_sam_checkpoint(src)
    dropped = [k for k in src if is_dropped_sam_decoder_key(k)]
    assert any(k.startswith('mask_decoder.iou_prediction_head.') for k in dropped)
    assert len(out) == len(src) - len(dropped)
    for key in src:
        part, rest = key.split('.', 1)
        if part in ('prompt_encoder', 'mask_decoder') and key not in dropped:
            assert out[f'decode_head.{part}.{rest}'] is src[key]
    assert 'backbone.patch_embed.projection.weight' in out
    assert 'backbone.layers.2.ffn.layers.0.0.weight' in out
    backbone = {k[len('backbone.'):]: v for k, v in out.items() if k.startswith('backbone.')}
    model = tiny_backbone(text_mode='none')
    model.load_state_dict(backbone, strict=True)
    assert torch.equal(model.layers[1].attn.rel_pos_w, src['image_encoder.blocks.1.attn.rel_pos_w'])
    arch = infer_sam_arch({k[len('image_encoder.'):]: v for k, v in src.items()
                           if k.startswith('image_encoder.')})
    assert arch == dict(embed_dims=32, num_layers=3, feedforward_channels=128, patch_size=16,
                        img_size=128, out_channels=16, num_heads=4, global_attn_indexes=[2])


def test_cli_converts_a_file(tmp_path, repo_root):
    src, dst = tmp_path / 'sam_tiny.pth', tmp_path / 'out' / 'sam_tiny_mmseg.pth'
    torch.save(tiny_sam_state_dict(), src)
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools/model_converters/sam2mmseg.py'), str(src),
         str(dst)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(dst) in proc.stdout and 'backbone' in proc.stdout
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['sam_image_encoder']['num_heads'] == 4
    backbone = {k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()
                if k.startswith('backbone.')}
    # a layer-wise DIT model at another size takes the converted SAM weights (text parts stay)
    model = tiny_backbone(text_mode='layerwise', text_dims=24)
    result = model.load_state_dict(backbone, strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith('text_injections.') for k in result.missing_keys)
    # the usual config route: Pretrained init with prefix, at another img_size (hooks resize)
    model = DITSAMViT(
        arch=dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=128,
                  global_attn_indexes=[2]), img_size=64, out_channels=16, window_size=4,
        text_dims=24, init_cfg=dict(type='Pretrained', checkpoint=str(dst), prefix='backbone.'))
    model.init_weights()
    assert model.pos_embed.shape == (1, 4, 4, 32)
    assert model.layers[2].attn.rel_pos_h.shape == (7, 8)
    assert torch.equal(model.layers[0].attn.qkv.weight, backbone['layers.0.attn.qkv.weight'])
    assert all(p.abs().sum() == 0 for p in model.text_injections.parameters())

    bad = tiny_sam_state_dict()
    bad['image_encoder.blocks.0.attn.extra'] = torch.zeros(1)
    torch.save(bad, src)
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools/model_converters/sam2mmseg.py'), str(src),
         str(tmp_path / 'bad.pth')], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and 'blocks.0.attn.extra' in proc.stderr
    assert not (tmp_path / 'bad.pth').exists()


def test_bad_dicts_fail_with_the_offending_keys():
    src = tiny_sam_state_dict()
    with pytest.raises(ValueError, match=r"stray\.key"):
        convert_sam_checkpoint({**src, 'stray.key': torch.zeros(1)})
    with pytest.raises(ValueError, match='neck.5.weight'):
        convert_sam_checkpoint({**src, 'image_encoder.neck.5.weight': torch.zeros(1)})
    wrong = dict(src)
    wrong['image_encoder.blocks.1.mlp.lin2.weight'] = torch.zeros(32, 64)
    with pytest.raises(ValueError, match=r'blocks\.1\.mlp\.lin2\.weight: \(32, 64\)'):
        convert_sam_checkpoint(wrong)
    missing = {k: v for k, v in src.items() if k != 'image_encoder.blocks.2.attn.qkv.bias'}
    with pytest.raises(ValueError, match=r'missing keys.*blocks\.2\.attn\.qkv\.bias'):
        convert_sam_checkpoint(missing)
    with pytest.raises(ValueError, match='image_encoder'):
        convert_sam_checkpoint({k: v for k, v in src.items() if 'image_encoder' not in k})


def test_vit_b_key_shapes_match_vitsam_base():
    """Converted ViT-B keys and shapes == mmpretrain ViTSAM('base') == DITSAMViT('base')."""
    with torch.device('meta'):
        sam = ImageEncoderViT(img_size=1024, embed_dim=768, depth=12, num_heads=12,
                              out_chans=256, use_rel_pos=True, window_size=14,
                              global_attn_indexes=(2, 5, 8, 11))
        vitsam = ViTSAM(arch='base', img_size=1024, out_channels=256)
        dit = DITSAMViT(arch='base', img_size=1024, text_mode='none')
    converted = convert_sam_image_encoder(sam.state_dict())
    shapes = {k: tuple(v.shape) for k, v in converted.items()}
    assert shapes == {k: tuple(v.shape) for k, v in vitsam.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in dit.state_dict().items()}
    assert infer_sam_arch(sam.state_dict())['global_attn_indexes'] == [2, 5, 8, 11]
