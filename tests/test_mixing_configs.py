"""The design card's third use: the plugin's parts inside other MMSeg configs train one iteration.

1. RefCOCODataset + the REFER pipeline + ReferSegMetric with a stock EncoderDecoder;
2. DITSAMViT inside a model assembled from MMSegmentation's own base configs.
"""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import dit_sam_mm  # noqa: F401

CONFIGS = Path(__file__).parent / 'data' / 'configs'
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('name', ['encoder_decoder_synthref.py', 'dit_vit_in_mmseg_bases.py'])
def test_mixed_config_trains_one_iteration_and_evaluates(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # data/synthref is relative to the repository root
    cfg = Config.fromfile(str(CONFIGS / name))
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.val_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.val_dataloader.dataset.indices = 3
    cfg.default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1),
                             logger=dict(type='LoggerHook', interval=1))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert loss > 0
    val_keys = [k for k in runner.message_hub.log_scalars if k.startswith('val/')]
    assert 'val/oIoU' in val_keys and 'val/Pr@0.5' in val_keys, val_keys
