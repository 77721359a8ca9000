"""Bad input at the command line: one line naming the file, field or argument, no traceback.

Each case runs a tool as a user does (a subprocess) and checks its exit status, that stderr has
no traceback, and that the message names what is wrong; ``DIT_DEBUG=1`` brings the traceback
back.
"""
import os
import socket
import subprocess
import sys

import pytest
import torch
from refer_model_fixture import REPO_ROOT, write_tiny_model

from dit_sam_mm.utils.launch import latest_checkpoint


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny'))


def run(*args, env=None):
    env = dict(os.environ, PYTHON=sys.executable, **(env or {}))
    env.pop('DISPLAY', None)
    env.pop('WAYLAND_DISPLAY', None)
    command = list(map(str, args))
    if command[0].endswith('.py'):
        command.insert(0, sys.executable)
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(proc, *named, status=1):
    assert proc.returncode == status, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    for text in named:
        assert str(text) in proc.stderr, proc.stderr[-2000:]


def test_config_syntax_error_names_file_and_line(tmp_path):
    config = tmp_path / 'broken_config.py'
    config.write_text("a = 1\nmodel = dict(\n")
    proc = run('tools/train.py', config)
    assert_one_line_error(proc, f'config {config}, line 2')
    debug = run('tools/train.py', config, env=dict(DIT_DEBUG='1'))
    assert debug.returncode != 0 and 'Traceback' in debug.stderr


def test_cfg_options_item_without_equals_sign(tiny):
    proc = run('tools/train.py', tiny.config, '--cfg-options', 'train_cfg.max_epochs')
    assert_one_line_error(proc, "argument --cfg-options: 'train_cfg.max_epochs' is not KEY=VALUE",
                          status=2)


def test_a_typo_in_cfg_options_names_the_key_and_the_nearest_ones(tiny, tmp_path):
    proc = run('tools/train.py', tiny.config, '--work-dir', tmp_path / 'w', '--cfg-options',
               'model.backbon.arch=tiny')
    assert_one_line_error(proc, "train.py: error: --cfg-options model.backbon.arch: model "
                          "(DITSAM) has no key 'backbon'", "did you mean 'backbone'?")
    assert proc.stderr.count('\n') == 1


def test_zero_epochs_is_refused(tiny, tmp_path):
    proc = run('tools/train.py', tiny.config, '--work-dir', tmp_path / 'w', '--cfg-options',
               'train_cfg.max_epochs=0')
    assert_one_line_error(proc, 'train_cfg.max_epochs=0 trains nothing')


@pytest.mark.parametrize('content', [b'hello, not a checkpoint\n', 'truncated'])
def test_resume_from_an_unreadable_last_checkpoint(tiny, tmp_path, content):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    broken = work_dir / 'epoch_1.pth'
    broken.write_bytes(tiny.checkpoint.read_bytes()[:2000] if content == 'truncated' else content)
    (work_dir / 'last_checkpoint').write_text(str(broken))
    proc = run('tools/train.py', tiny.config, '--resume', '--work-dir', work_dir)
    assert_one_line_error(proc, broken, 'PyTorch checkpoint')


def test_test_tool_names_a_text_file_given_as_checkpoint(tiny, tmp_path):
    text = tmp_path / 'model.pth'
    text.write_text('not weights\n')
    proc = run('tools/test.py', tiny.config, text, '--work-dir', tmp_path / 'w')
    assert_one_line_error(proc, text, 'not a PyTorch checkpoint')


def test_an_empty_image_read_by_a_loader_worker_is_named_in_one_line(tmp_path):
    tiny = write_tiny_model(tmp_path)
    for image in (tiny.data_root / 'images').glob('*.jpg'):
        image.write_bytes(b'')
    proc = run('tools/test.py', tiny.config, tiny.checkpoint, '--work-dir', tmp_path / 'w',
               '--cfg-options', 'test_dataloader.num_workers=1')
    assert_one_line_error(proc, tiny.data_root / 'images', 'synthref_')
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('test.py: error: image file') and last.endswith('complete copy')
    assert 'Original Traceback' not in proc.stderr and 'DataLoader worker' not in proc.stderr


def test_test_tool_checks_out_before_evaluating(tiny, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    out = blocker / 'records'  # a folder cannot be made under a file, even as root
    proc = run('tools/test.py', tiny.config, tiny.checkpoint, '--out', out, '--work-dir',
               tmp_path / 'w')
    assert_one_line_error(proc, f'--out {out}: cannot write there')
    assert not (tmp_path / 'w').exists()  # stopped before the runner started


def test_busy_master_port_is_named(tiny):
    with socket.socket() as holder:
        holder.bind(('', 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = run('bash', 'tools/dist_test.sh', tiny.config, tiny.checkpoint, '2',
                   env=dict(PORT=str(port)))
    assert_one_line_error(proc, f'port {port} is in use', 'set PORT')


def test_browse_dataset_without_display_asks_for_an_output_dir(tiny):
    proc = run('tools/analysis_tools/browse_dataset.py', tiny.config)
    assert_one_line_error(proc, 'no display', '--output-dir')


def test_latest_checkpoint_follows_a_work_dir_that_was_moved(tmp_path):
    old, new = tmp_path / 'old', tmp_path / 'new'
    old.mkdir()
    torch.save({}, old / 'epoch_3.pth')
    (old / 'last_checkpoint').write_text(str(old / 'epoch_3.pth'))
    old.rename(new)
    assert latest_checkpoint(str(new)) == str(new / 'epoch_3.pth')
    # a copy resumes from its own file even while the original folder still exists
    copy = tmp_path / 'copy'
    copy.mkdir()
    torch.save({}, copy / 'epoch_3.pth')
    (copy / 'last_checkpoint').write_text(str(new / 'epoch_3.pth'))
    assert latest_checkpoint(str(copy)) == str(copy / 'epoch_3.pth')
    assert latest_checkpoint(str(tmp_path)) is None
    (copy / 'epoch_3.pth').unlink()
    (copy / 'last_checkpoint').write_text(str(tmp_path / 'gone' / 'epoch_3.pth'))
    with pytest.raises(FileNotFoundError, match='exists neither there nor in'):
        latest_checkpoint(str(copy))


@pytest.mark.parametrize('tool', ['tools/train.py', 'tools/test.py'])
def test_outside_the_environment_the_tools_say_how_to_activate_it(tool):
    # -S: no site-packages, as with a system Python that has none of the stack
    proc = subprocess.run([sys.executable, '-S', tool, 'configs/synthref/ldit_tiny_synthref.py'],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "dit_sam_mm runs in the environment 'bash tools/setup_env.sh' makes; activate it first "
        "with 'source .venv/bin/activate' (or run .venv/bin/python)")
