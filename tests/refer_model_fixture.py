"""A tiny DIT-SAM config, a checkpoint of it and a tiny SynthRef, for the "use a model" tests.

The config is ``configs/synthref/ldit_tiny_synthref.py`` (tiny L-DIT, 64x64 input) on a 9-image
SynthRef written to a temporary folder, with a keep-ratio ``Resize`` in its training pipeline and
batches of 2 without workers.
"""
import math
from pathlib import Path
from typing import NamedTuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from dit_sam_mm.datasets.synthref import make_synthref

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
MAX_TEXT = 20

CONFIG_TEMPLATE = '''
_base_ = ['{repo}/configs/synthref/ldit_tiny_synthref.py']
env_cfg = dict(dist_cfg=dict(backend='gloo'))
data_root = '{data_root}'
tokenize = dict(type='TokenizeText', vocab_file='{data_root}/vocab.txt', max_length={max_text})
train_pipeline = [
    dict(type='LoadReferImageFromFile'),
    dict(type='LoadReferAnnotations'),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='ReferRandomFlip', prob={flip_prob}),
    tokenize,
    dict(type='PackReferSegInputs'),
]
test_pipeline = [
    dict(type='LoadReferImageFromFile'),
    dict(type='Resize', scale=({size}, {size}), keep_ratio=True),
    dict(type='ReferPad', size=({size}, {size})),
    dict(type='LoadReferAnnotations'),
    tokenize,
    dict(type='PackReferSegInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(**loader, dataset=dict(data_root=data_root, split=['val', 'testA'],
                                              pipeline=test_pipeline))
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
    config = root / 'tiny_dit_sam.py'
    config.write_text(CONFIG_TEMPLATE.format(repo=REPO_ROOT, data_root=data_root, size=SIZE,
                                             max_text=MAX_TEXT, flip_prob=flip_prob))
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


def write_no_target_checkpoint(tiny: TinyModel, path: Path, prob: float = 0.9) -> Path:
    """The tiny weights plus a no-target branch that answers ``prob`` ("no target") for every
    sentence (its last layer's weights zero, its bias the logit of ``prob``)."""
    from dit_sam_mm.apis import init_refer_model
    model, _ = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu',
                                cfg_options={'model.decode_head.no_target': True},
                                allow_partial=True)
    with torch.no_grad():
        last = model.decode_head.no_target_head.layers[-1]
        last.weight.zero_()
        last.bias.fill_(math.log(prob / (1 - prob)))
    torch.save(dict(state_dict=model.state_dict()), path)
    return path
