"""Every tool and API that reads a checkpoint or a refs pickle refuses a hostile one.

Each case gives a tool a file that would create a sentinel if unpickled without restrictions
(see ``hostile_files``), and checks that the tool fails with exit status 1 and a one-line error
naming the file, and that the sentinel does not exist. The Runner-based tools (train, test) run
as subprocesses; the others run in-process as ``__main__``, as ``python tools/...`` runs them.
"""
import itertools
import pickle
import runpy
import subprocess
import sys

import pytest
import torch
from hostile_files import assert_payload_runs_unrestricted, system_payload, write_checkpoint
from refer_model_fixture import REPO_ROOT, write_tiny_model

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.datasets import RefCOCODataset
from dit_sam_mm.checkpoint import UnsafeCheckpointError


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny'))


@pytest.fixture
def hostile(tmp_path):
    """``make(payload, place, fmt)`` -> (file, sentinel); the file is proven hostile once."""
    def make(payload='system', place='state_dict', fmt='zip'):
        sentinel = tmp_path / f'ran_{payload}_{place}_{fmt}'
        path = write_checkpoint(tmp_path / f'hostile_{payload}_{fmt}.pth', sentinel, payload,
                                place, fmt)
        return path, sentinel

    return make


def run_runner_tool(tool, *args):
    """Run ``python tool args`` in a subprocess; return (exit status, stderr)."""
    proc = subprocess.run([sys.executable, tool, *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stderr


def run_tool(monkeypatch, capsys, tool, *args):
    """Run ``tool`` as ``python tool args`` in this process; return (exit status, stderr)."""
    monkeypatch.setattr(sys, 'argv', [tool, *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / tool), run_name='__main__')
    return exit_info.value.code, capsys.readouterr().err


def assert_refused(status, err, path, sentinel):
    assert status == 1
    assert str(path) in err and 'Traceback' not in err, err
    assert not sentinel.exists()


def test_payloads_used_here_are_hostile(hostile):
    assert_payload_runs_unrestricted(*itertools.chain.from_iterable(
        hostile(*args) for args in [('system', 'state_dict', 'zip'),
                                    ('eval_chain', 'message_hub', 'zip'),
                                    ('injected_state', 'message_hub', 'legacy'),
                                    ('system', 'optimizer', 'legacy')]))


def test_train_resume(tiny, hostile, tmp_path):
    """The getattr chain to eval in the message hub (MMEngine deep-copies the hub on resume); the
    other payloads and places go through the same loader (test_safe_checkpoint_loading)."""
    path, sentinel = hostile('eval_chain', 'message_hub')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(str(path))
    status, err = run_runner_tool('tools/train.py', tiny.config, '--resume', '--work-dir',
                                  work_dir)
    assert_refused(status, err, path, sentinel)


def test_train_load_from(tiny, hostile, tmp_path):
    path, sentinel = hostile('system', 'state_dict', 'legacy')
    status, err = run_runner_tool('tools/train.py', tiny.config, '--work-dir', tmp_path / 'work',
                                  '--cfg-options', f'load_from={path}')
    assert_refused(status, err, path, sentinel)


def test_test_tool(tiny, hostile, tmp_path):
    path, sentinel = hostile('eval_chain', 'state_dict')
    status, err = run_runner_tool('tools/test.py', tiny.config, path, '--work-dir',
                                  tmp_path / 'work')
    assert_refused(status, err, path, sentinel)


def test_inferencer(tiny, hostile):
    path, sentinel = hostile('system', 'state_dict', 'legacy')
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        ReferSegInferencer(str(tiny.config), weights=str(path), device='cpu')
    assert not sentinel.exists()


def test_image_demo(tiny, hostile, monkeypatch, capsys):
    path, sentinel = hostile('eval_chain', 'state_dict')
    image = sorted((tiny.data_root / 'images').glob('*.jpg'))[0]
    status, err = run_tool(monkeypatch, capsys, 'demo/image_demo.py', image, 'the red circle',
                           tiny.config, path, '--device', 'cpu')
    assert_refused(status, err, path, sentinel)


def test_export_onnx(tiny, hostile, tmp_path, monkeypatch, capsys):
    path, sentinel = hostile('system', 'state_dict')
    status, err = run_tool(monkeypatch, capsys, 'tools/deployment/export_onnx.py', tiny.config,
                           path, '--out', tmp_path / 'model.onnx')
    assert_refused(status, err, path, sentinel)
    assert not (tmp_path / 'model.onnx').exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy'])
def test_sam2mmseg(hostile, tmp_path, monkeypatch, capsys, fmt):
    path, sentinel = hostile('system', 'state_dict', fmt)
    status, err = run_tool(monkeypatch, capsys, 'tools/model_converters/sam2mmseg.py', path,
                           tmp_path / 'out.pth')
    assert_refused(status, err, path, sentinel)
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('fmt', ['zip', 'legacy', 'pickle'])
def test_dit_official2mmseg(hostile, tmp_path, monkeypatch, capsys, fmt):
    """Without --unsafe-load: the fallback reader replaces the payload and runs nothing; the
    payload's place then holds no tensor, so the file is refused."""
    path, sentinel = hostile('system', 'state_dict', fmt)
    status, err = run_tool(monkeypatch, capsys, 'tools/model_converters/dit_official2mmseg.py',
                           path, tmp_path / 'out.pth')
    assert status == 1 and str(path) in err
    assert not sentinel.exists()
    assert not (tmp_path / 'out.pth').exists()


def _hostile_refs(tmp_path):
    sentinel = tmp_path / 'ran_refs'
    folder = tmp_path / 'refcoco'
    folder.mkdir()
    refs = [dict(ref_id=1, ann_id=1, image_id=1, split='train', sentences=[],
                 payload=system_payload(sentinel))]
    (folder / 'refs(unc).p').write_bytes(pickle.dumps(refs, protocol=2))
    (folder / 'instances.json').write_text('{"images": [], "annotations": []}')
    return folder / 'refs(unc).p', sentinel


def test_dataset_refs_pickle(tmp_path):
    path, sentinel = _hostile_refs(tmp_path)
    assert_payload_runs_unrestricted(path, sentinel)
    with pytest.raises(pickle.UnpicklingError, match=r'refs\(unc\)\.p'):
        RefCOCODataset(data_root=str(path.parent), split='train')
    assert not sentinel.exists()


def test_data_checker_refs_pickle(tmp_path, monkeypatch, capsys):
    path, sentinel = _hostile_refs(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['refcoco.py', 'check', str(tmp_path), '--datasets',
                                      'refcoco'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / 'tools/dataset_converters/refcoco.py'),
                       run_name='__main__')
    assert exit_info.value.code == 1
    assert str(path) in capsys.readouterr().out
    assert not sentinel.exists()


def test_train_resume_of_a_checkpoint_with_hostile_data(tiny, tmp_path):
    """Weights-only data that would run its config and delete a file of the user through stock
    MMEngine (tests/security/test_hostile_checkpoint_data.py shows it): tools/train.py resumes
    from it, trains the last epoch, saves a new best and leaves the user's file alone."""
    sentinel = tmp_path / 'config_ran'
    victim = tmp_path / 'elsewhere' / 'best_oIoU_epoch_5.pth'
    victim.parent.mkdir()
    victim.write_text('a file of the user')
    state_dict = torch.load(tiny.checkpoint)['state_dict']
    hostile = dict(
        meta=dict(epoch=29, iter=87, seed=0,
                  config=f"_ = __import__('pathlib').Path({str(sentinel)!r}).touch()\n"),
        state_dict=state_dict,
        message_hub=dict(log_scalars={}, resumed_keys={},
                         runtime_info=dict(best_ckpt=str(victim), best_score=-1.0)))
    path = tmp_path / 'hostile.pth'
    torch.save(hostile, path)
    work_dir = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(tiny.config), '--work-dir', str(work_dir),
         '--resume', '--cfg-options', f'load_from={path}'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 29' in proc.stdout + proc.stderr
    assert (work_dir / 'epoch_30.pth').exists() and (work_dir / 'best_oIoU_epoch_30.pth').exists()
    assert not sentinel.exists() and victim.read_text() == 'a file of the user'
