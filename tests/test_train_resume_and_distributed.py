"""End-to-end runs of tools/train.py, tools/test.py and the launchers on the tiny SynthRef
config (CPU): resume after SIGKILL repeats an uninterrupted run exactly; a 2-process (gloo)
torchrun training run works, and tools/slurm_train.sh (through a stand-in srun and scontrol) and
two NNODES=2 torchrun launchers end with its weights bit for bit; 2-process evaluation gives
exactly the 1-process numbers."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dit_sam_mm.checkpoint import load_checkpoint_file

ROOT = Path(__file__).resolve().parents[1]
FAKE_SLURM = ROOT / 'tests' / 'fake_slurm'
# Set by a launcher, never by srun: the test machine's own values must not reach the runs.
LAUNCHER_VARIABLES = ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'PORT',
                      'NNODES', 'NODE_RANK')
CONFIG = 'configs/synthref/ldit_tiny_synthref.py'
# 24 refs, batch 8: 3 iterations an epoch; no validation during training.
SMALL_RUN = [
    'train_cfg.max_epochs=2', 'train_cfg.val_interval=100', 'train_dataloader.batch_size=8',
    'train_dataloader.dataset.indices=24', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1'
]
# The launcher runs: 2 processes of 12 refs, 2 iterations each, one epoch.
DIST_RUN = [*SMALL_RUN, 'train_cfg.max_epochs=1', 'train_cfg.val_begin=2']  # no validation
# val and testA: 835 sentences, an odd number, so 2 processes need a padded last batch.
SMALL_TEST = ["test_dataloader.dataset.split=['val','testA']", 'test_dataloader.batch_size=16']


def run(args, env=None, check=True):
    env = dict(os.environ, **(env or {}), PYTHON=sys.executable, PYTHONPATH=str(ROOT / 'tests'))
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def train(work_dir, *extra, check=True, launcher=None, config=CONFIG, options=SMALL_RUN):
    cmd = ([sys.executable, 'tools/train.py', str(config)] if launcher is None else
           ['bash', 'tools/dist_train.sh', str(config), str(launcher)])
    return run(cmd + ['--work-dir', str(work_dir), *extra, '--cfg-options', *options],
               env=dict(PORT='29623'), check=check)


def weights(path):
    return load_checkpoint_file(path)['state_dict']


def assert_same_weights(expected_checkpoint, got_checkpoint):
    expected, got = weights(expected_checkpoint), weights(got_checkpoint)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def launcher_env(**variables):
    """The environment without launcher or SLURM variables, plus ``variables``.

    One thread per process, as torchrun sets for the reference run (it does so only for more
    than one process per node, srun never): another thread count rounds differently.
    """
    env = {key: value for key, value in os.environ.items()
           if key not in LAUNCHER_VARIABLES and not key.startswith('SLURM')}
    return dict(env, PYTHON=sys.executable, PYTHONPATH=str(ROOT / 'tests'), OMP_NUM_THREADS='1',
                **variables)


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
    assert_same_weights(uninterrupted / 'epoch_2.pth', tmp_path / 'epoch_2.pth')
    # the resumed run really trained: epoch 2 differs from epoch 1
    expected = weights(uninterrupted / 'epoch_2.pth')
    assert any(not torch.equal(expected[k], weights(tmp_path / 'epoch_1.pth')[k])
               for k in expected)


@pytest.fixture(scope='module')
def torchrun_two_processes(tmp_path_factory):
    """One node, two gloo processes: the run the other launchers must repeat."""
    work_dir = tmp_path_factory.mktemp('torchrun')
    result = train(work_dir, launcher=2, options=DIST_RUN)
    return work_dir, result.stdout + result.stderr


def test_two_process_training_runs_with_gloo(torchrun_two_processes):
    work_dir, log = torchrun_two_processes
    assert "'backend': 'gloo'" in log or "backend='gloo'" in log
    assert (work_dir / 'epoch_1.pth').exists()


def test_slurm_launcher_trains_as_torchrun(torchrun_two_processes, tmp_path):
    """tools/slurm_train.sh with srun's variables (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
    SLURM_NODELIST, ...; no MASTER_ADDR): the master is found with scontrol, as MMEngine does."""
    calls, work_dir = tmp_path / 'slurm_calls.log', tmp_path / 'work'
    env = launcher_env(PATH=f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}", GPUS='2',
                       GPUS_PER_NODE='2', CPUS_PER_TASK='1', MASTER_PORT='29641',
                       FAKE_SLURM_LOG=str(calls))
    result = subprocess.run(['bash', 'tools/slurm_train.sh', 'cpu', 'dit', CONFIG, str(work_dir),
                             '--cfg-options', *DIST_RUN],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    srun, *scontrol = calls.read_text().splitlines()
    assert srun.startswith('srun -p cpu --job-name=dit --gres=gpu:2 --ntasks=2 '
                           '--ntasks-per-node=2 --cpus-per-task=1 --kill-on-bad-exit=1 ')
    assert f'tools/train.py {CONFIG} --work-dir={work_dir} --cfg-options' in srun
    assert srun.endswith(' --launcher=slurm')
    assert scontrol == ['scontrol show hostname localhost'] * 2  # by each task
    assert_same_weights(torchrun_two_processes[0] / 'epoch_1.pth', work_dir / 'epoch_1.pth')


def test_two_node_torchrun_trains_as_one_node(torchrun_two_processes, tmp_path):
    """NNODES=2 on one machine: two dist_train.sh launchers of one process each."""
    command = ['bash', 'tools/dist_train.sh', CONFIG, '1', '--work-dir', str(tmp_path),
               '--cfg-options', *DIST_RUN]
    env = launcher_env(NNODES='2', MASTER_ADDR='127.0.0.1', PORT='29659')
    nodes = [subprocess.Popen(command, cwd=ROOT, env=dict(env, NODE_RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
             for rank in (0, 1)]
    try:
        logs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:  # a launcher left waiting for the other takes its torchrun and workers with it
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert_same_weights(torchrun_two_processes[0] / 'epoch_1.pth', tmp_path / 'epoch_1.pth')


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
