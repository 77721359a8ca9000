"""The train/test launchers: usage messages for wrong arguments, MMSeg's command line."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize('script, args', [
    ('dist_train.sh', []),
    ('dist_train.sh', ['configs/x.py']),
    ('dist_test.sh', ['configs/x.py', 'ckpt.pth']),
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
