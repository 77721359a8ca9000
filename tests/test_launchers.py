"""The train/test launchers: usage messages for wrong arguments, MMSeg's command line."""
import os
import subprocess
import sys

import pytest

from dit_sam_mm.utils.cli import CommandLineError
from dit_sam_mm.utils.launch import _export_slurm_environment


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', []),
    ('dist_train.sh', ['configs/x.py']),
    ('dist_test.sh', ['configs/x.py', 'ckpt.pth']),
    ('slurm_train.sh', ['partition', 'job', 'configs/x.py']),
    ('slurm_test.sh', ['partition', 'job', 'configs/x.py']),
])
def test_dist_scripts_print_usage_for_missing_arguments(repo_root, script, args):
    result = subprocess.run(['bash', f'tools/{script}', *args], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert 'usage: bash' in result.stderr
    assert 'CONFIG' in result.stderr


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', ['configs/x.py', 'two']),
    ('dist_test.sh', ['configs/x.py', 'ckpt.pth', '0']),
])
def test_dist_scripts_reject_a_bad_process_count(repo_root, script, args):
    result = subprocess.run(['bash', f'tools/{script}', *args], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert 'GPUS must be a positive integer' in result.stderr


@pytest.mark.parametrize('variable', ['GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK'])
def test_slurm_scripts_reject_a_bad_count(repo_root, variable):
    result = subprocess.run(['bash', 'tools/slurm_train.sh', 'p', 'j', 'configs/x.py', 'w'],
                            cwd=repo_root, capture_output=True, text=True,
                            env=dict(os.environ, **{variable: 'two'}))
    assert result.returncode == 2
    assert f"{variable} must be a positive integer, got 'two'" in result.stderr


SRUN_VARIABLES = dict(SLURM_PROCID='1', SLURM_NTASKS='4', SLURM_LOCALID='1',
                      SLURM_NODELIST='node[01-02]')


@pytest.fixture
def launch_env(monkeypatch):
    """The variables the slurm translation sets, restored after the test."""
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_slurm_variables_become_torch_distributed_ones(launch_env):
    """As MMEngine's _init_dist_slurm: srun's values win over stale ones; the port comes from
    dist_cfg, else MASTER_PORT, else 29500; MASTER_ADDR, when set, is kept."""
    for name, value in dict(SRUN_VARIABLES, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                            MASTER_ADDR='10.0.0.1').items():
        launch_env.setenv(name, value)
    _export_slurm_environment()
    assert [os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                                    'MASTER_PORT')] == ['1', '4', '1', '10.0.0.1', '29500']
    _export_slurm_environment(port=29511)
    assert os.environ['MASTER_PORT'] == '29511'


def test_slurm_without_srun_or_scontrol_says_what_to_do(launch_env, tmp_path):
    for name, value in SRUN_VARIABLES.items():
        launch_env.setenv(name, value)
    launch_env.delenv('SLURM_PROCID')
    with pytest.raises(CommandLineError, match='SLURM_PROCID not set; start the tool with srun'):
        _export_slurm_environment()
    launch_env.setenv('SLURM_PROCID', '1')
    launch_env.setenv('PATH', str(tmp_path))  # no scontrol
    with pytest.raises(CommandLineError, match=r'scontrol cannot name the first node of '
                       r'node\[01-02\] .*; set MASTER_ADDR to its address'):
        _export_slurm_environment()


@pytest.mark.parametrize('script, options', [
    ('train.py', ['--work-dir', '--cfg-options', '--amp', '--resume', '--launcher']),
    ('test.py', ['--work-dir', '--cfg-options', '--show-dir', '--out', '--launcher']),
])
def test_python_tools_offer_mmseg_command_line(repo_root, script, options):
    result = subprocess.run([sys.executable, f'tools/{script}', '--help'], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for option in options:
        assert option in result.stdout
    assert '{none,pytorch,slurm}' in result.stdout


def test_train_without_config_prints_usage(repo_root):
    result = subprocess.run([sys.executable, 'tools/train.py'], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert 'usage:' in result.stderr


def test_test_tool_names_a_missing_checkpoint(repo_root, tmp_path):
    missing = tmp_path / 'nope.pth'
    result = subprocess.run(
        [sys.executable, 'tools/test.py', 'configs/_base_/default_runtime.py', str(missing)],
        cwd=repo_root, capture_output=True, text=True)
    assert result.returncode != 0
    assert f'checkpoint file not found: {missing}' in result.stderr


def test_device_bootstrap_parses_and_carries_the_wheel_the_shared_set_lacks(repo_root):
    script = repo_root / 'tools' / 'device' / 'bootstrap.sh'
    assert subprocess.run(['bash', '-n', str(script)], capture_output=True).returncode == 0
    wheels = [p.name for p in (repo_root / 'tools' / 'device' / 'wheels').glob('*.whl')]
    assert any(name.startswith('lazy_importer-') for name in wheels)
