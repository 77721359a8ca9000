"""Shared pytest configuration: the repository root and deterministic, single-thread torch."""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# Two cores are shared by the whole suite: keep torch from oversubscribing them.
torch.set_num_threads(int(os.environ.get('DIT_TEST_THREADS', '2')))


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """The repository root (where configs/ and tools/ live)."""
    return REPO_ROOT
