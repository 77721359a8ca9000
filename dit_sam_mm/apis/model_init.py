"""Build a DIT-SAM segmentor from a config, load trained weights, and derive its input pipeline."""
import copy
import os.path as osp
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import nn

from ..checkpoint import load_trained_checkpoint
from ..utils.cfg_options import merge_cfg_options
from ..utils.launch import read_config

ConfigType = Union[str, Path, Config]

#: Transforms of a test pipeline that need an annotation, left out for inference.
ANNOTATION_TRANSFORMS = ('LoadReferAnnotations', 'LoadAnnotations')
#: Image-file loaders of a test pipeline, replaced by ``LoadImageFromNDArray`` for inference.
IMAGE_FILE_LOADERS = ('LoadReferImageFromFile', 'LoadImageFromFile')


def load_config(config: ConfigType, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (file or ``Config``; a copy is returned) and merge ``cfg_options``."""
    if isinstance(config, (str, Path)):
        cfg = read_config(str(config))
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError(f'config must be a file name or an mmengine Config, got '
                        f'{type(config).__name__}')
    merge_cfg_options(cfg, cfg_options, 'cfg_options')
    return cfg


def default_device() -> str:
    """``'cuda:0'`` when CUDA is available, else ``'cpu'``."""
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def init_refer_model(config: ConfigType,
                     checkpoint: Optional[str] = None,
                     device: Optional[str] = None,
                     cfg_options: Optional[dict] = None,
                     allow_partial: bool = False) -> Tuple[nn.Module, Config]:
    """Build the segmentor of a config in eval mode and load a trained checkpoint into it.

    The config's pre-training weights (``model.pretrained``, converted SAM weights loaded by
    ``init_weights``) are not read: the checkpoint holds every weight. Its keys are checked
    strictly, so a checkpoint of another architecture fails with the keys named, and the model
    settings of its training config must agree with this config's (``trained_state_dict``):
    an L-DIT checkpoint is refused by an E-DIT config although their keys are the same.

    Args:
        config (str | Path | Config): The config.
        checkpoint (str, optional): A checkpoint written by MMEngine (``{'state_dict': ...}``),
            by ``tools/model_converters/dit_official2mmseg.py``, or a plain state dict; read with
            :func:`~dit_sam_mm.checkpoint.load_checkpoint_file` (nothing in the file runs). None keeps
            the random initialisation.
        device (str, optional): E.g. ``'cpu'`` or ``'cuda:0'``. Defaults to
            :func:`default_device`.
        cfg_options (dict, optional): Overrides merged into the config.
        allow_partial (bool): Load a checkpoint whose keys do not all match the model (missing
            keys keep their random initialisation). Defaults to False.

    Returns:
        Tuple[nn.Module, Config]: The model (on ``device``, eval mode; ``model.cfg`` is the
        config) and the config.
    """
    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint file not found: {checkpoint}')
        load_trained_checkpoint(model, checkpoint, cfg.model, allow_partial, logger=None)
    model.cfg = cfg
    model.to(device or default_device())
    model.eval()
    return model, cfg


def _test_pipeline_cfg(cfg: Config) -> List[dict]:
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    pipeline = dataset.get('pipeline', cfg.get('test_pipeline'))
    if not pipeline:
        raise ValueError('the config has neither test_dataloader.dataset.pipeline nor '
                         'test_pipeline: the inference pipeline is derived from it')
    return [dict(t) if isinstance(t, ConfigDict) else copy.deepcopy(t) for t in pipeline]


def inference_pipeline_cfg(cfg: Config) -> List[dict]:
    """The config's test pipeline, adapted to in-memory images and no ground truth.

    The image-file loader (:data:`IMAGE_FILE_LOADERS`) becomes ``LoadImageFromNDArray`` (the
    caller reads files, so an image
    path or a BGR array go through the same steps) and the annotation-loading transforms
    (:data:`ANNOTATION_TRANSFORMS`) are dropped; everything else (``Resize``,
    ``TokenizeText`` with the config's vocabulary, ``PackReferSegInputs``, ...) is kept, so the
    preprocessing equals the evaluation's.

    Raises:
        ValueError: When the pipeline has no image-file loader.
    """
    pipeline = [t for t in _test_pipeline_cfg(cfg) if t['type'] not in ANNOTATION_TRANSFORMS]
    loaders = [i for i, t in enumerate(pipeline) if t['type'] in IMAGE_FILE_LOADERS]
    if not loaders:
        raise ValueError(f'the test pipeline has no image-file loader {IMAGE_FILE_LOADERS} to '
                         f'feed images into: {[t["type"] for t in pipeline]}')
    pipeline[loaders[0]] = dict(type='LoadImageFromNDArray')
    return pipeline
