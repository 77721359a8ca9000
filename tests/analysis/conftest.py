"""Fixtures of the benchmark and efficiency tests."""
from pathlib import Path

import pytest
from mmengine.config import Config
from tiny_dit_sam import TINY_MODEL


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A config file holding only ``model=`` (what the model benchmarks need)."""
    path = tmp_path / 'tiny.py'
    Config(dict(model=TINY_MODEL)).dump(str(path))
    return path
