"""--cfg-options keys are followed into the config: a key no component takes is refused."""
import pytest
from mmengine.config import Config

import dit_sam_mm  # noqa: F401  (registers the components)
from dit_sam_mm.utils.cfg_options import merge_cfg_options
from dit_sam_mm.utils.launch import apply_common_args

CONFIG = 'configs/synthref/ldit_tiny_synthref.py'


@pytest.fixture
def cfg(repo_root):
    return Config.fromfile(str(repo_root / CONFIG))


@pytest.mark.parametrize('option, message', [
    ('model.backbon.arch', "--cfg-options model.backbon.arch: model (DITSAM) has no key "
     "'backbon' and DITSAM takes no argument 'backbon'; did you mean 'backbone'? its keys: "
     'allowed_missing_keys, backbone, '),
    ('model.backbone.arhc', "model.backbone (DITSAMViT) has no key 'arhc' and DITSAMViT takes "
     "no argument 'arhc'; did you mean 'arch'?"),
    ('train_cfg.max_epoch', "did you mean 'max_epochs'?"),
    ('optim_wrapper.optimizer.lrr', "optim_wrapper.optimizer (Adam) has no key 'lrr'"),
    ('train_dataloader.dataset.pipeline.9.type',
     'train_dataloader.dataset.pipeline has 5 items, no item 9'),
])
def test_a_key_no_component_takes_is_refused(cfg, repo_root, option, message):
    with pytest.raises(ValueError) as error:
        apply_common_args(cfg, CONFIG, 'none', None, {option: 'x'})
    assert message in str(error.value)


@pytest.mark.parametrize('option, value', [
    ('train_dataloader.dataset.indices', 3),  # an argument the dataset takes, not in the config
    ('model.backbone.arch', 'tiny'),  # an existing key
    ('randomness.seed', 0),  # a new top-level setting
    ('env_cfg.cudnn_benchmark', True),  # a key of a dict without type
    ('default_hooks.checkpoint.max_keep_ckpts', 2),  # CheckpointHook takes **kwargs
])
def test_keys_that_exist_or_are_taken_are_merged(cfg, option, value):
    merge_cfg_options(cfg, {option: value})
    node = cfg
    for key in option.split('.'):
        node = node[key]
    assert node == value
