"""The launch scripts run under a POSIX ``sh`` (dash) as well as bash: ``sh tools/dist_train.sh``
is what many users type. A stand-in interpreter (``PYTHON``) prints the command torchrun would
get, so no process group is started."""
import os
import subprocess

import pytest
from refer_model_fixture import REPO_ROOT

FAKE_PYTHON = '#!/bin/sh\nfor arg in "$@"; do echo "arg: $arg"; done\n'


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / 'python'
    path.write_text(FAKE_PYTHON)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize('shell', ['sh', 'bash'])  # sh: dash on Debian and Ubuntu
@pytest.mark.parametrize('script, args, expected', [
    ('dist_train.sh', ['cfg.py', '2', '--work-dir', 'w dir'],
     ['--nproc_per_node=2', 'tools/train.py', 'cfg.py', '--work-dir', 'w dir']),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '3', '--out', 'o'],
     ['--nproc_per_node=3', 'tools/test.py', 'cfg.py', 'ckpt.pth', '--out', 'o']),
])
def test_dist_scripts_pass_every_argument_through(fake_python, shell, script, args, expected):
    result = subprocess.run([shell, f'tools/{script}', *args], cwd=REPO_ROOT, text=True,
                            capture_output=True, timeout=60,
                            env=dict(os.environ, PYTHON=str(fake_python), PORT='29731'))
    assert result.returncode == 0, result.stderr
    passed = [line[len('arg: '):] for line in result.stdout.splitlines()
              if line.startswith('arg: ')]
    torchrun = passed[passed.index('torch.distributed.run'):]
    for item in expected:
        assert any(arg == item or arg.endswith(item) for arg in torchrun), (item, torchrun)
    assert torchrun[-2:] == ['--launcher', 'pytorch']
    assert torchrun[-4:-2] == expected[-2:]  # the options keep their order, spaces included


@pytest.mark.parametrize('shell', ['sh', 'bash'])
@pytest.mark.parametrize('script, args, expected', [
    ('slurm_train.sh', ['part', 'job', 'cfg.py', 'w dir', '--amp'],
     ['tools/train.py', 'cfg.py', '--work-dir=w dir', '--amp', '--launcher=slurm']),
    ('slurm_test.sh', ['part', 'job', 'cfg.py', 'ckpt.pth', '--out', 'o'],
     ['tools/test.py', 'cfg.py', 'ckpt.pth', '--out', 'o', '--launcher=slurm']),
])
def test_slurm_scripts_pass_every_argument_through(tmp_path, shell, script, args, expected):
    srun = tmp_path / 'srun'
    srun.write_text(FAKE_PYTHON)  # prints its arguments: what srun would run
    srun.chmod(0o755)
    result = subprocess.run(
        [shell, f'tools/{script}', *args], cwd=REPO_ROOT, text=True, capture_output=True,
        timeout=60, env=dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', GPUS='2',
                             GPUS_PER_NODE='2'))
    assert result.returncode == 0, result.stderr
    passed = [line[len('arg: '):] for line in result.stdout.splitlines()
              if line.startswith('arg: ')]
    assert '--ntasks=2' in passed and passed[passed.index('-u') + 1].endswith(expected[0])
    assert passed[passed.index('-u') + 2:] == expected[1:]
