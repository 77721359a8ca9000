"""Every config under configs/ and projects/ parses with MMEngine's Config.fromfile."""
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*(ROOT / 'configs').rglob('*.py'), *(ROOT / 'projects').glob('*/configs/**/*.py')])


def test_there_are_configs():
    assert any(p.name == 'default_runtime.py' for p in CONFIGS)


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(ROOT)) for p in CONFIGS])
def test_config_parses(path):
    cfg = Config.fromfile(str(path))
    assert isinstance(cfg, Config)


def test_runtime_loads_the_plugin_in_mmseg_scope():
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/default_runtime.py'))
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['dit_sam_mm'], allow_failed_imports=False)
