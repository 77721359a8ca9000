"""A tiny DIT-SAM model shared by the benchmark and efficiency tests."""
import copy

import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import dit_sam_mm  # noqa: F401  (registers the plugin)

TINY_MODEL = dict(
    type='DITSAM',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(64, 64),
        pad_val=0,
        seg_pad_val=255),
    backbone=dict(
        type='DITSAMViT',
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64,
                  global_attn_indexes=[1]),
        img_size=64,
        window_size=2,
        out_channels=32,
        text_mode='layerwise',
        text_dims=32,
        injection=dict(type='LinearTextInjection', drop_rate=0.0, zero_init=True)),
    neck=dict(
        type='BertNeck',
        bert_cfg=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, vocab_size=1200, max_position_embeddings=32,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)),
    decode_head=dict(
        type='SAMDecoderHead', in_channels=32, text_dim=32, num_heads=2, mlp_dim=64),
    test_cfg=dict(mode='whole'))
VOCAB = 1200
IMG = 64


def tiny_model_cfg(**backbone) -> dict:
    """The tiny model config, with backbone overrides."""
    cfg = copy.deepcopy(TINY_MODEL)
    cfg['backbone'].update(backbone)
    return cfg


def build_tiny(**backbone) -> torch.nn.Module:
    """A tiny DITSAM with random weights (PyTorch's default initialisation)."""
    init_default_scope('mmseg')
    return MODELS.build(tiny_model_cfg(**backbone))
