"""End-to-end runs of tools/train.py, tools/test.py and the torchrun launchers on the tiny
SynthRef config (CPU): resume after SIGKILL repeats an uninterrupted run exactly, a 2-process
(gloo) training run works, and 2-process evaluation gives exactly the 1-process numbers."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dit_sam_mm.utils import load_checkpoint_file

ROOT = Path(__file__).resolve().parents[1]
CONFIG = 'configs/synthref/ldit_tiny_synthref.py'
# 24 refs, batch 8: 3 iterations an epoch; no validation during training.
SMALL_RUN = [
    'train_cfg.max_epochs=2', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=8',
    'train_dataloader.dataset.indices=24', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1'
]
# val and testA: 835 sentences, an odd number, so 2 processes need a padded last batch.
SMALL_TEST = ["test_dataloader.dataset.split=['val','testA']", 'test_dataloader.batch_size=16']


def run(args, env=None, check=True):
    env = dict(os.environ, **(env or {}), PYTHON=sys.executable, PYTHONPATH=str(ROOT / 'tests'))
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train(work_dir, *extra, check=True, launcher=None, config=CONFIG):
    cmd = ([sys.executable, 'tools/train.py', str(config)] if launcher is None else
           ['bash', 'tools/dist_train.sh', str(config), str(launcher)])
    return run(cmd + ['--work-dir', str(work_dir), *extra, '--cfg-options', *SMALL_RUN],
               env=dict(PORT='29623'), check=check)


def weights(path):
    return load_checkpoint_file(path)['state_dict']


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    train(work_dir)
    return work_dir


def test_resume_after_sigkill_ends_with_the_same_weights(uninterrupted, tmp_path):
    killing_config = tmp_path / 'killed_after_epoch_1.py'
    killing_config.write_text(
        f"_base_ = ['{ROOT / CONFIG}']\n"
        "custom_imports = dict(imports=['dit_sam_mm', 'sigkill_hook'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='SigkillAfterEpochHook', after_epoch=1)]\n")
    killed = train(tmp_path, config=killing_config, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / 'epoch_1.pth').exists() and not (tmp_path / 'epoch_2.pth').exists()

    resumed = train(tmp_path, '--resume')
    assert 'resumed epoch: 1' in resumed.stdout + resumed.stderr
    expected, got = weights(uninterrupted / 'epoch_2.pth'), weights(tmp_path / 'epoch_2.pth')
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    # the resumed run really trained: epoch 2 differs from epoch 1
    assert any(not torch.equal(expected[k], weights(tmp_path / 'epoch_1.pth')[k])
               for k in expected)


def test_two_process_training_runs_with_gloo(tmp_path):
    result = train(tmp_path, launcher=2)
    log = result.stdout + result.stderr
    assert "'backend': 'gloo'" in log or "backend='gloo'" in log
    assert (tmp_path / 'epoch_2.pth').exists()


def metrics_of(work_dir):
    """The metrics MMEngine wrote to <work_dir>/<timestamp>/<timestamp>.json by tools/test.py."""
    found = sorted(work_dir.glob('*/*.json'))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def test_two_process_evaluation_equals_one_process(uninterrupted, tmp_path):
    ckpt = str(uninterrupted / 'epoch_2.pth')
    run([sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 'one'),
         '--out', str(tmp_path / 'records'), '--cfg-options', *SMALL_TEST])
    run(['bash', 'tools/dist_test.sh', CONFIG, ckpt, '2', '--work-dir', str(tmp_path / 'two'),
         '--cfg-options', *SMALL_TEST], env=dict(PORT='29637'))
    one, two = metrics_of(tmp_path / 'one'), metrics_of(tmp_path / 'two')
    keys = [k for k in one if k.split('/')[-1] in ('oIoU', 'mIoU', 'Pr@0.5', 'Pr@0.9')]
    assert {'val/oIoU', 'testA/oIoU', 'oIoU'} <= set(keys)
    assert {k: one[k] for k in keys} == {k: two[k] for k in keys}
    # --out kept one record per sentence for offline analysis
    records = (tmp_path / 'records' / 'refer_seg_records.jsonl').read_text().splitlines()
    assert len(records) == 835
    assert {'ref_id', 'sent_id', 'sentence', 'iou'} <= set(json.loads(records[0]))
