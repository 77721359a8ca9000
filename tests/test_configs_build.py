"""Every config under configs/ and projects/ builds its model and its data pipelines.

Weights and data are not on the test machine, so the model is built with random initialisation
(no `pretrained`, BERT from a config instead of a download) on the meta device (shapes only; a
ViT-H config builds in a second), and a tokenizer path (or the vocabulary of a generated dataset
that is not there) is replaced by SynthRef's vocabulary.
"""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

import dit_sam_mm  # noqa: F401
from mmseg.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
VOCAB = str(ROOT / 'data/synthref/vocab.txt')
CONFIGS = sorted([*(ROOT / 'configs').rglob('*.py'), *(ROOT / 'projects').glob('*/configs/*.py')])
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def without_downloads(model_cfg: dict) -> dict:
    """The model config with random initialisation instead of files."""
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.pop('pretrained', None)
    neck = model_cfg.get('neck')
    if neck is not None and neck.get('pretrained'):
        text_dims = model_cfg['backbone'].get('text_dims', 768)
        neck.pop('pretrained')
        neck['bert_cfg'] = dict(vocab_size=100, hidden_size=text_dims, num_hidden_layers=1,
                                num_attention_heads=4, intermediate_size=64)
    return model_cfg


def offline_pipeline(pipeline: list) -> list:
    """The pipeline with a local vocabulary wherever a tokenizer folder is named, or a
    vocabulary of data generated on demand (SynthRef-GRES) that a fresh checkout lacks."""
    pipeline = copy.deepcopy(pipeline)
    for transform in pipeline:
        if transform.get('tokenizer'):
            transform.pop('tokenizer')
            transform['vocab_file'] = VOCAB
        elif transform.get('vocab_file') and not (ROOT / transform['vocab_file']).is_file():
            transform['vocab_file'] = VOCAB
    return pipeline


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_builds_model_and_pipelines(path):
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    built = 0
    if cfg.get('model'):
        with torch.device('meta'):
            model = MODELS.build(without_downloads(cfg.model))
        assert sum(p.numel() for p in model.parameters()) > 0
        built += 1
    for name in LOADERS:
        if cfg.get(name):
            dataset = cfg[name].dataset
            # a ConcatDataset (a mix of datasets) holds one pipeline per member
            for member in dataset.datasets if 'datasets' in dataset else [dataset]:
                pipeline = Compose(offline_pipeline(member.pipeline))
                assert len(pipeline.transforms) == len(member.pipeline)
            built += 1
    if path.parent.name in ('dit', 'synthref', 'configs'):
        # leaf configs have everything a run needs
        assert built == 4, f'{path} lacks a model or a data loader'
