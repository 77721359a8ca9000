"""dit_official2mmseg: released DIT checkpoints (ViT-B, ViT-H layouts) load into the *_official
configs, whose test pipeline prepares images as the release; file reading is weights-only, with a
placeholder fallback that runs nothing."""
import pickle
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from PIL import Image
from refer_model_fixture import REPO_ROOT
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder,
                                       TwoWayTransformer)
from tool_loader import load_tool
from torch import nn
from transformers import BertConfig, BertModel

import dit_sam_mm  # noqa: F401  (registers ReferPad)

# A tiny stand-in for BERT-base (same names; 3 layers so that layers above out_layer=1 exist).
TINY_BERT = dict(vocab_size=50, hidden_size=768, num_hidden_layers=3, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=24)
VITS = {
    'base': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=[2, 5, 8, 11]),
    'huge': dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=[7, 15, 23, 31]),
    'tiny': dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=[1]),  # CLI test only
}


tool = load_tool('tools/model_converters/dit_official2mmseg.py')


class ReleasedLDIT(nn.Module):
    """The module tree (names and shapes) of the released L-DIT ``Net``."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        vit = VITS[arch]
        self.visual_encoder = ImageEncoderViT(
            img_size=1024, mlp_ratio=4, qkv_bias=True, use_rel_pos=True, window_size=14,
            out_chans=256, **vit)
        self.visual_encoder.probs = nn.ModuleList(
            nn.Linear(vit['embed_dim'], vit['embed_dim']) for _ in range(vit['depth']))
        if arch == 'huge':
            self.visual_encoder.prob_text = nn.Linear(768, vit['embed_dim'])
        self.prompt_encoder = PromptEncoder(embed_dim=256, image_embedding_size=(64, 64),
                                            input_image_size=(1024, 1024), mask_in_chans=16)
        self.mask_decoder = MaskDecoder(
            num_multimask_outputs=3, transformer_dim=256, iou_head_depth=3,
            iou_head_hidden_dim=256,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8))
        self.query_embeddings = nn.Parameter(torch.zeros(1, 4, 768))
        self.lang_encoder = nn.Module()
        self.lang_encoder.bert = BertModel(BertConfig(**TINY_BERT))  # with its pooler
        self.text_proj = nn.Linear(768, 256)
        self.self_attention = nn.MultiheadAttention(768, 12)


def released_state_dict(arch: str, device: str) -> 'OrderedDict[str, torch.Tensor]':
    """The DDP-prefixed state dict of a released checkpoint, random values (meta: shapes only)."""
    with torch.device('meta'):
        shapes = ReleasedLDIT(arch).state_dict()
    gen = torch.Generator().manual_seed(0)
    return OrderedDict(
        ('module.' + k, torch.empty(v.shape, device='meta') if device == 'meta' else
         torch.randn(v.shape, generator=gen) * 0.02) for k, v in shapes.items())


def official_model(arch: str, device: str, method: str = 'ldit'):
    cfg = Config.fromfile(
        str(REPO_ROOT / f'configs/dit/{method}_vit{arch[0]}_refcoco_official.py'))
    cfg.model.neck.bert_cfg = TINY_BERT
    init_default_scope('mmseg')
    with torch.device(device):
        return MODELS.build(cfg.model)


def test_vit_b_release_loads_strictly_with_its_values():
    source = released_state_dict('base', 'cpu')
    conversion = tool.convert_official_dit(source, bert_layers=1)
    model = official_model('base', 'cpu')
    model.load_state_dict(conversion.state_dict, strict=True)
    loaded = model.state_dict()

    def same(model_key: str, source_key: str) -> bool:
        return torch.equal(loaded[model_key], source['module.' + source_key])

    assert same('backbone.layers.3.attn.qkv.weight', 'visual_encoder.blocks.3.attn.qkv.weight')
    assert same('backbone.layers.11.ffn.layers.1.bias', 'visual_encoder.blocks.11.mlp.lin2.bias')
    assert same('backbone.channel_reduction.2.weight', 'visual_encoder.neck.2.weight')
    assert same('backbone.text_injections.7.proj.weight', 'visual_encoder.probs.7.weight')
    assert same('decode_head.text_proj.bias', 'text_proj.bias')
    assert same('decode_head.mask_decoder.mask_tokens.weight', 'mask_decoder.mask_tokens.weight')
    assert same('neck.bert.encoder.layer.0.attention.self.query.weight',
                'lang_encoder.bert.encoder.layer.0.attention.self.query.weight')
    assert same('backbone.layers.2.attn.rel_pos_h', 'visual_encoder.blocks.2.attn.rel_pos_h') \
        is False  # 127 rows at 1024 input, resized to 63 at 512 by the backbone's load hook
    assert loaded['backbone.pos_embed'].shape == (1, 32, 32, 768)
    dropped = conversion.dropped
    assert dropped['unused by the released model'] == [
        'query_embeddings', 'self_attention.in_proj_weight', 'self_attention.in_proj_bias',
        'self_attention.out_proj.weight', 'self_attention.out_proj.bias']
    bert_dropped = dropped['BERT parts BertNeck does not build']
    assert 'lang_encoder.bert.pooler.dense.weight' in bert_dropped
    assert {k.split('.')[4] for k in bert_dropped if '.layer.' in k} == {'1', '2'}
    assert 'mask_decoder.iou_prediction_head.layers.0.weight' in dropped[
        'SAM decoder parts SAMDecoderHead does not build']


def test_vit_h_release_folds_prob_text_and_loads_strictly():
    conversion = tool.convert_official_dit(released_state_dict('huge', 'meta'))
    model = official_model('huge', 'meta')
    model.load_state_dict(conversion.state_dict, strict=True, assign=True)
    assert conversion.state_dict['backbone.text_injections.31.proj.weight'].shape == (1280, 768)
    assert not any('prob_text' in k for k in conversion.state_dict)


def test_e_dit_release_loads_strictly_into_its_official_config():
    """An E-DIT release has the keys of an L-DIT one: only text_mode tells the configs apart."""
    conversion = tool.convert_official_dit(released_state_dict('base', 'meta'), bert_layers=1)
    model = official_model('base', 'meta', method='edit')
    assert model.backbone.text_mode == 'e2e'
    model.load_state_dict(conversion.state_dict, strict=True, assign=True)


def test_folded_projection_equals_the_two_released_projections():
    torch.manual_seed(0)
    prob_text, prob = nn.Linear(768, 40), nn.Linear(40, 40)
    source = {'visual_encoder.prob_text.weight': prob_text.weight.data,
              'visual_encoder.prob_text.bias': prob_text.bias.data,
              'visual_encoder.probs.0.weight': prob.weight.data,
              'visual_encoder.probs.0.bias': prob.bias.data}
    folded = tool.convert_text_injections(source)
    text = torch.randn(2, 5, 768)
    expected = prob(prob_text(text))
    got = nn.functional.linear(text, folded['backbone.text_injections.0.proj.weight'],
                               folded['backbone.text_injections.0.proj.bias'])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match='visual_encoder2.x'):
        tool.convert_official_dit({'visual_encoder2.x': torch.zeros(1)})


class Scheduler:
    """A training-script object in the file, as the release pickles its scheduler state."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        # Unpickling this would write the marker file: the placeholder fallback must not.
        return (exec, (f'open({self.marker!r}, "w").write("ran")', ))


@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'legacy'])
def test_reads_weights_only_and_falls_back_to_placeholders_without_running_code(
        tmp_path, capsys, zip_format):
    """In both torch formats: the legacy one unpickles several records before the tensors, and
    every one of them must go through the restricted unpickler."""
    weights = OrderedDict([('module.text_proj.weight', torch.randn(4, 3))])
    plain = tmp_path / 'plain.pth'
    torch.save(dict(state_dict=weights, epoch=39, lr=1e-6), plain)
    assert torch.equal(tool.load_official_checkpoint(str(plain))['module.text_proj.weight'],
                       weights['module.text_proj.weight'])

    marker = tmp_path / 'ran.txt'
    released = tmp_path / 'released.pth'
    torch.save(dict(state_dict=weights, scheduler=Scheduler(str(marker)), epoch=39), released,
               _use_new_zipfile_serialization=zip_format)
    loaded = tool.load_official_checkpoint(str(released))
    assert torch.equal(loaded['module.text_proj.weight'], weights['module.text_proj.weight'])
    assert not marker.exists()
    assert 'exec' in capsys.readouterr().out  # named as replaced

    tool.load_official_checkpoint(str(released), unsafe=True)
    assert marker.exists() and 'WARNING' in capsys.readouterr().err

    with pytest.raises(pickle.UnpicklingError):  # the placeholder path is only a fallback
        torch.load(released, weights_only=True)


def test_a_hostile_plain_pickle_runs_nothing_and_is_named(tmp_path, capsys):
    marker = tmp_path / 'ran.txt'
    hostile = tmp_path / 'released.pth'
    hostile.write_bytes(pickle.dumps(dict(state_dict=Scheduler(str(marker))), protocol=2))
    with pytest.raises(ValueError, match='released.pth'):
        tool.load_official_checkpoint(str(hostile))
    assert not marker.exists()


def test_command_line_writes_a_weights_only_checkpoint(tmp_path, monkeypatch, capsys):
    source = tmp_path / 'released.pth'
    state = released_state_dict('tiny', 'cpu')
    torch.save(dict(state_dict=state, optimizer={}, epoch=40), source)
    out = tmp_path / 'out' / 'converted.pth'
    monkeypatch.setattr(sys, 'argv', ['dit_official2mmseg.py', str(source), str(out)])
    assert tool.main() == 0
    expected = tool.convert_official_dit(state).state_dict
    printed = capsys.readouterr().out
    assert f'wrote {len(expected)} tensors' in printed
    assert 'dropped 5 keys (unused by the released model)' in printed
    converted = torch.load(out, weights_only=True)
    assert converted['meta']['bert_layers'] == 1
    assert set(converted['state_dict']) == set(expected)


def test_official_test_pipeline_resizes_and_pads_as_the_release():
    """The release resizes with PIL's bilinear filter (torchvision ``F.resize`` of a PIL image) to
    long side 512 and pads the normalised image centred with 0."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/dit/ldit_vitb_refcoco_official.py'))
    resize_and_pad = Compose([t for t in cfg.test_pipeline if t.type in ('Resize', 'ReferPad')])
    img = np.random.default_rng(0).integers(0, 256, (300, 700, 3), dtype=np.uint8)
    out = resize_and_pad(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))
    new_w, new_h = 512, round(300 * 512 / 700)  # (219)
    expected = np.asarray(Image.fromarray(img).resize((new_w, new_h), Image.BILINEAR))
    top = (512 - new_h) // 2
    np.testing.assert_array_equal(out['img'][top:top + new_h], expected)
    assert out['img_padding_size'] == [0, 0, top, 512 - new_h - top]
    assert cfg.model.data_preprocessor.type == 'ReferSegDataPreProcessor'
