"""tools/setup_env.sh: a re-run on a ready environment only checks it; failures say what to do."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VENV = Path(sys.prefix)


@pytest.fixture(scope='module')
def rerun(repo_root):
    env = dict(os.environ, DIT_VENV=str(VENV))
    return subprocess.run(['bash', 'tools/setup_env.sh'], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_rerun_on_ready_environment_installs_nothing(rerun):
    assert rerun.returncode == 0, rerun.stderr
    assert 'is up to date' in rerun.stdout
    for step in ('installing', 'building mmcv', 'creating virtual environment'):
        assert step not in rerun.stdout


def test_changed_requirements_invalidate_the_check(tmp_path, repo_root):
    """The up-to-date check is keyed on requirements/*.txt and setup.py, not just on imports."""
    copy = tmp_path / 'repo'
    shutil.copytree(repo_root / 'requirements', copy / 'requirements')
    shutil.copy(repo_root / 'setup.py', copy / 'setup.py')
    shutil.copytree(repo_root / 'tools', copy / 'tools',
                    ignore=shutil.ignore_patterns('__pycache__'))

    def digest() -> str:
        script = ('source <(sed -n "/^requirements_hash()/,/^}/p" tools/setup_env.sh); '
                  'ROOT=.; requirements_hash')
        return subprocess.run(['bash', '-c', script], cwd=copy, capture_output=True,
                              text=True, check=True).stdout.strip()

    before = digest()
    with open(copy / 'requirements' / 'runtime.txt', 'a') as f:
        f.write('einops\n')
    assert len(before) == 64
    assert digest() != before


def test_missing_compiler_stops_with_advice(tmp_path, repo_root):
    """A fresh environment on a machine without g++ fails before installing anything."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('bash', 'cat', 'sha256sum', 'cut', 'dirname', 'nproc', 'env'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    os.symlink(sys.executable, bin_dir / 'python3')
    venv = tmp_path / 'venv'
    env = dict(os.environ, PATH=str(bin_dir), DIT_VENV=str(venv), DIT_PYTHON='python3')
    result = subprocess.run([str(bin_dir / 'bash'), 'tools/setup_env.sh'], cwd=repo_root,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'no C++ compiler found' in result.stderr
    assert "apt-get install g++" in result.stderr
    assert not venv.exists()


def test_missing_interpreter_is_named(tmp_path, repo_root):
    env = dict(os.environ, DIT_VENV=str(tmp_path / 'venv'), DIT_PYTHON='python-does-not-exist')
    result = subprocess.run(['bash', 'tools/setup_env.sh'], cwd=repo_root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "no Python interpreter 'python-does-not-exist'" in result.stderr
