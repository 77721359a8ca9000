"""Checkpoints whose *data* is hostile: every type is allowed, the values are not.

Each file here loads with stock torch's weights-only reader, so the unpickler is not the
defence. What stock MMEngine does with the values is shown in a separate interpreter (the
sentinel appears, the victim file is deleted, the best checkpoint is lost); the same file
through ``dit_sam_mm`` (its loader, ``SafeCheckpointHook``, the model-settings check, the
converter) is harmless.
"""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from mmseg.registry import MODELS
from toy_runner import ToyRegressor

from dit_sam_mm.checkpoint import (CheckpointReadError, UnsafeCheckpointError,
                                   load_checkpoint_file, trained_state_dict)
from dit_sam_mm.checkpoint.model_settings import setting_mismatches
from dit_sam_mm.engine import ResumeStateError

TESTS = Path(__file__).resolve().parents[1]


def weights_only_checkpoint(**meta):
    """An MMEngine-shaped checkpoint of ``ToyRegressor`` that stock torch loads weights-only."""
    torch.manual_seed(0)
    return dict(meta=dict(dict(epoch=1, iter=4, seed=0), **meta),
                state_dict=ToyRegressor().state_dict(),
                message_hub=dict(log_scalars={}, runtime_info=dict(epoch=1, iter=4),
                                 resumed_keys={}))


def runner_source(hook: str, max_epochs: int = 2) -> str:
    """Python source that builds a resuming toy ``Runner`` as ``runner`` with ``hook``."""
    return textwrap.dedent(f'''
        from mmengine.runner import Runner
        from toy_runner import ToyData, ToyRegressor

        def make(work_dir, load_from):
            return Runner(
                model=ToyRegressor(), work_dir=str(work_dir),
                train_dataloader=dict(dataset=ToyData(), batch_size=2, num_workers=0,
                                      sampler=dict(type='DefaultSampler', shuffle=False),
                                      collate_fn=dict(type='default_collate')),
                optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
                train_cfg=dict(by_epoch=True, max_epochs={max_epochs}),
                default_hooks=dict(checkpoint=dict(type='{hook}', interval=1, save_best='acc',
                                                   rule='greater')),
                resume=True, load_from=str(load_from), default_scope='mmseg')
    ''')


def best_save_source() -> str:
    """Python source: train the runner, then let its checkpoint hook save a new best."""
    return textwrap.dedent('''
        from mmengine.hooks import CheckpointHook
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, CheckpointHook))
        hook._save_best_checkpoint(runner, dict(acc=1.0))
    ''')


def run_python(source: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', source], cwd=cwd, capture_output=True,
                          text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(TESTS)))


@pytest.fixture
def resume_attack(tmp_path):
    """A checkpoint whose ``meta['config']`` touches a sentinel and whose message hub names a
    victim file as the previous best checkpoint; returns (checkpoint, sentinel, victim)."""
    sentinel = tmp_path / 'config_ran'
    victim = tmp_path / 'elsewhere' / 'best_acc_epoch_9.pth'
    victim.parent.mkdir()
    victim.write_text('a file of the user')
    checkpoint = weights_only_checkpoint(
        config=f"_ = __import__('pathlib').Path({str(sentinel)!r}).touch()\n")
    checkpoint['message_hub']['runtime_info'].update(best_ckpt=str(victim), best_score=-1.0)
    path = tmp_path / 'hostile.pth'
    torch.save(checkpoint, path)
    return path, sentinel, victim


def test_stock_mmengine_runs_the_config_deletes_the_named_file_and_loses_the_best(
        resume_attack, tmp_path):
    """In one interpreter: resuming runs ``meta['config']``, a new best deletes the file the
    message hub names; then a kill while the next best is written leaves no best at all (the
    old one is removed before the new one is written)."""
    path, sentinel, victim = resume_attack
    torch.load(path)  # weights-only: the unpickler lets it through
    work = tmp_path / 'work'
    source = runner_source('CheckpointHook') + textwrap.dedent(f'''
        runner = make({str(work)!r}, {str(path)!r})
    ''') + best_save_source() + KILL_DURING_BEST_SAVE.format(first_best=str(
        work / 'best_acc_epoch_2.pth'))
    result = run_python(source, tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert sentinel.exists() and not victim.exists()
    assert list(work.glob('best_*.pth')) == []


def test_resume_through_dit_sam_mm_runs_nothing_and_removes_only_its_own_files(resume_attack,
                                                                               tmp_path):
    path, sentinel, victim = resume_attack
    namespace = {}
    exec(runner_source('SafeCheckpointHook'), namespace)
    runner = namespace['make'](tmp_path / 'work', path)
    runner.train()
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SafeCheckpointHook')
    hook._save_best_checkpoint(runner, dict(acc=1.0))
    assert runner.epoch == 2 and (tmp_path / 'work' / 'best_acc_epoch_2.pth').exists()
    assert not sentinel.exists() and victim.exists()
    # a later best replaces the run's own best: that one is removed
    runner.train_loop._epoch = 3
    hook._save_best_checkpoint(runner, dict(acc=2.0))
    assert not (tmp_path / 'work' / 'best_acc_epoch_2.pth').exists()
    assert (tmp_path / 'work' / 'best_acc_epoch_3.pth').exists()


@pytest.mark.parametrize('field,value,message', [
    ('best_ckpt', '/etc/hostname', 'best_\\*.pth'),
    ('best_ckpt', 3, 'best_\\*.pth'),
    ('keep_ckpt_ids', ['../../x'], 'non-negative integers'),
    ('best_score', 'high', 'a number'),
])
def test_message_hub_values_that_name_files_are_checked_at_load(tmp_path, field, value,
                                                                 message):
    checkpoint = weights_only_checkpoint()
    checkpoint['message_hub']['runtime_info'][field] = value
    torch.save(checkpoint, tmp_path / 'c.pth')
    with pytest.raises(UnsafeCheckpointError, match=message) as info:
        load_checkpoint_file(tmp_path / 'c.pth')
    assert str(tmp_path / 'c.pth') in str(info.value) and field in str(info.value)


@pytest.mark.parametrize('field,value', [('epoch', -5), ('epoch', 1.5), ('iter', '4'),
                                         ('seed', 'abc'), ('seed', 2**40), ('epoch', True)])
def test_resumed_counters_must_be_integers_in_range(tmp_path, field, value):
    torch.save(weights_only_checkpoint(**{field: value}), tmp_path / 'c.pth')
    with pytest.raises(UnsafeCheckpointError, match=rf"meta\['{field}'\]") as info:
        load_checkpoint_file(tmp_path / 'c.pth')
    assert str(tmp_path / 'c.pth') in str(info.value)


def test_resuming_past_the_end_of_the_schedule_is_refused(tmp_path):
    torch.save(weights_only_checkpoint(epoch=10**9), tmp_path / 'c.pth')
    namespace = {}
    exec(runner_source('SafeCheckpointHook'), namespace)
    runner = namespace['make'](tmp_path / 'work', tmp_path / 'c.pth')
    with pytest.raises(ResumeStateError, match='epoch 1000000000.*max_epochs=2'):
        runner.train()
    assert not list((tmp_path / 'work').glob('*.pth'))


KILL_DURING_BEST_SAVE = '''
import os, signal, torch
hook._save_best_checkpoint(runner, dict(acc=5.0))
assert os.path.isfile({first_best!r})
save = torch.save
def killed_while_writing(obj, f, *args, **kwargs):
    if isinstance(obj, dict) and 'state_dict' in obj:
        os.kill(os.getpid(), signal.SIGKILL)
    return save(obj, f, *args, **kwargs)
torch.save = killed_while_writing
runner.train_loop._epoch = 3
hook._save_best_checkpoint(runner, dict(acc=9.0))
'''


def test_kill_while_the_best_checkpoint_is_written(tmp_path):
    """SafeCheckpointHook removes the old best only once the new one is complete (stock MMEngine
    loses both: test_stock_mmengine_runs_the_config_deletes_the_named_file_and_loses_the_best)."""
    torch.save(weights_only_checkpoint(), tmp_path / 'start.pth')
    work = tmp_path / 'work'
    first_best = work / 'best_acc_epoch_2.pth'
    source = 'import dit_sam_mm\n' + runner_source('SafeCheckpointHook') + textwrap.dedent(f'''
        runner = make({str(work)!r}, {str(tmp_path / 'start.pth')!r})
        runner.train()
        hook = next(h for h in runner.hooks if type(h).__name__ == 'SafeCheckpointHook')
    ''') + KILL_DURING_BEST_SAVE.format(first_best=str(first_best))
    result = run_python(source, tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert [p.name for p in work.glob('best_*.pth')] == [first_best.name]
    assert load_checkpoint_file(first_best)['meta']['epoch'] == 2


def test_parts_of_interrupted_writes_are_removed_when_training_starts(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    stale = work / '.epoch_1.pth.k3j9x_a1.tmp'  # as atomic_write names it
    stale.write_bytes(b'PK\x03\x04 half a checkpoint')
    others = [work / '.keep', work / '.notes.txt.tmp', tmp_path / '.epoch_2.pth.zz.tmp']
    for other in others:
        other.write_text('not a checkpoint part of this run')
    torch.save(weights_only_checkpoint(), tmp_path / 'start.pth')
    namespace = {}
    exec(runner_source('SafeCheckpointHook'), namespace)
    namespace['make'](work, tmp_path / 'start.pth').train()
    assert not stale.exists() and all(other.exists() for other in others)


def test_partial_write_never_replaces_a_checkpoint(tmp_path, monkeypatch):
    """A write that fails midway leaves the previous file whole and no temporary behind."""
    from dit_sam_mm.checkpoint import save_checkpoint_file
    target = tmp_path / 'epoch_1.pth'
    save_checkpoint_file(dict(state_dict=dict(w=torch.ones(2))), str(target))

    class Interrupted(Exception):
        pass

    def interrupted(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 half a checkpoint')
        raise Interrupted

    monkeypatch.setattr(torch, 'save', interrupted)
    with pytest.raises(Interrupted):
        save_checkpoint_file(dict(state_dict=dict(w=torch.zeros(2))), str(target))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint_file(target)['state_dict']['w'], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would have made it


def test_model_settings_import_nothing_named_by_the_checkpoint(tmp_path, monkeypatch):
    sentinel = tmp_path / 'imported'
    (tmp_path / 'plantedmod.py').write_text(
        f'import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    had_this = 'this' in sys.modules
    for kind in ('plantedmod.X', 'this'):
        meta = dict(cfg=f"model = dict(type='DITSAM', backbone=dict(type='{kind}'))\n")
        setting_mismatches(meta, dict(type='DITSAM', backbone=dict(type='DITSAMViT')))
    assert not sentinel.exists() and 'plantedmod' not in sys.modules
    assert ('this' in sys.modules) == had_this
    # what the check would do through the registry: the lookup imports the module
    with contextlib.suppress(Exception):
        MODELS.get('plantedmod.X')
    sys.modules.pop('plantedmod', None)
    assert sentinel.exists(), 'a registry lookup of pkg.Name imports pkg'


def test_config_text_that_is_no_config_is_answered_in_one_line(tmp_path):
    unhashable = dict(meta=dict(cfg='model = {[1]: 2}\n'))
    assert trained_state_dict(dict(unhashable, state_dict={}), 'c.pth', dict(type='DITSAM')) \
        == OrderedDict()
    huge = dict(meta=dict(cfg='model = dict(type=[' + '1, ' * 2_000_000 + '])\n'), state_dict={})
    with pytest.raises(CheckpointReadError, match='c.pth: .*characters of config text') as info:
        trained_state_dict(huge, 'c.pth', dict(type='DITSAM'))
    assert len(str(info.value)) < 300
