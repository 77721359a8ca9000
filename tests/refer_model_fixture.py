"""A tiny DIT-SAM config, a checkpoint of it and a tiny SynthRef, for the "use a model" tests.

The config inherits the repository's runtime, RefCOCO dataset and schedule bases (so it runs with
``tools/test.py`` like a real config) and replaces the model by a tiny DIT-SAM (2-block ViT, 2-layer
BERT over SynthRef's vocabulary, 64x64 input) and the data by a SynthRef folder.
"""
from pathlib import Path
from typing import NamedTuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from dit_sam_mm.datasets.synthref import make_synthref

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
MAX_TEXT = 12

CONFIG_TEMPLATE = '''
_base_ = [
    '{repo}/configs/_base_/default_runtime.py', '{repo}/configs/_base_/datasets/refcoco_unc.py',
    '{repo}/configs/_base_/schedules/schedule_40e_paper.py'
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
custom_imports = dict(imports=['dit_sam_mm', 'dit_sam_mm.visualization'],
                      allow_failed_imports=False)
visualizer = dict(type='ReferSegLocalVisualizer')
data_root = '{data_root}'
tokenize = dict(type='TokenizeText', vocab_file='{data_root}/vocab.txt', max_length={max_text})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReferAnnotations'),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='ReferRandomFlip', prob={flip_prob}),
    tokenize,
    dict(type='PackReferSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='LoadReferAnnotations'),
    tokenize,
    dict(type='PackReferSegInputs'),
]
data = dict(data_root=data_root, ann_file='instances.json', split_file='refs(unc).p',
            data_prefix=dict(img_path='images/'))
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(**data, pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(**data, pipeline=test_pipeline))
test_dataloader = dict(**loader, dataset=dict(**data, split=['val', 'testA'],
                                              pipeline=test_pipeline))
tiny_bert = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, vocab_size={vocab_size}, max_position_embeddings=32)
model = dict(
    type='DITSAM',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=({size}, {size}),
        test_cfg=dict(size=({size}, {size}))),
    backbone=dict(
        type='DITSAMViT',
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64,
                  global_attn_indexes=[1]),
        img_size={size}, window_size=2, out_channels=32, text_mode='layerwise', text_dims=32),
    neck=dict(type='BertNeck', bert_cfg=tiny_bert, out_layer=2),
    decode_head=dict(type='SAMDecoderHead', in_channels=32, text_dim=32, num_heads=2,
                     mlp_dim=64, threshold=0.35),
    test_cfg=dict(mode='whole'))
'''


class TinyModel(NamedTuple):
    """Files of the tiny setup."""
    config: Path
    checkpoint: Path
    data_root: Path


def write_tiny_model(root: Path, flip_prob: float = 0.5, seed: int = 0) -> TinyModel:
    """Write SynthRef (9 images: 6 train, 1 each val/testA/testB), the config and a checkpoint.

    The checkpoint holds the randomly initialised model with random (not zero) text
    injections, so the sentence changes the prediction.
    """
    data_root = root / 'synthref'
    make_synthref(str(data_root), num_images=9, size=(SIZE, SIZE))
    vocab_size = len((data_root / 'vocab.txt').read_text().split())
    config = root / 'tiny_dit_sam.py'
    config.write_text(CONFIG_TEMPLATE.format(repo=REPO_ROOT, data_root=data_root, size=SIZE,
                                             max_text=MAX_TEXT, vocab_size=vocab_size,
                                             flip_prob=flip_prob))
    cfg = Config.fromfile(str(config))
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith('backbone.text_injections.'):
                param.normal_(std=0.1)
    checkpoint = root / 'tiny_dit_sam.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(note='random tiny DIT-SAM')),
               checkpoint)
    return TinyModel(config, checkpoint, data_root)
