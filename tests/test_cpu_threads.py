"""``cpu_threads`` of a config sets torch's thread count on a machine without CUDA, unless the
user set ``OMP_NUM_THREADS``; the SynthRef configs ask for one thread."""
import pytest
import torch
from mmengine.config import Config

from dit_sam_mm.utils.launch import apply_cpu_threads


@pytest.fixture
def threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    yield
    torch.set_num_threads(before)


def test_synthref_configs_run_on_one_thread(repo_root, threads):
    torch.set_num_threads(2)
    cfg = Config.fromfile(str(repo_root / 'configs/synthref/ldit_tiny_synthref.py'))
    assert apply_cpu_threads(cfg) == 1 and torch.get_num_threads() == 1


def test_omp_num_threads_and_cuda_win(repo_root, threads, monkeypatch):
    torch.set_num_threads(2)
    cfg = Config(dict(cpu_threads=1))
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert apply_cpu_threads(cfg) is None and torch.get_num_threads() == 2
    monkeypatch.delenv('OMP_NUM_THREADS')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert apply_cpu_threads(cfg) is None and torch.get_num_threads() == 2
    assert apply_cpu_threads(Config(dict())) is None  # no setting: torch's default stays
