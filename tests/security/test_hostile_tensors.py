"""Tensors and containers that stock torch loads weights-only, but that lie.

A tensor whose attributes shadow its methods, one that claims more elements than it stores,
sparse, meta and quantized tensors, shared references that stand for 10^12 paths, and a legacy
file whose module record makes torch write a ``.patch`` file: each is loaded by stock torch
(proving the unpickler lets it through) and refused, or read harmlessly, by ``dit_sam_mm``.
"""
import contextlib
import importlib
import io
import os
import pickle
import runpy
import signal
import sys
import warnings
from collections import OrderedDict

import pytest
import torch
from refer_model_fixture import REPO_ROOT

from dit_sam_mm.checkpoint import NonFiniteWeightsError, UnsafeCheckpointError, load_checkpoint_file


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (the walks these tests guard against take hours)."""
    def expired(signum, frame):
        raise TimeoutError(f'still running after {seconds} s')

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_nan_weights_with_a_shadowed_method_are_refused(tmp_path):
    weight = torch.full((4, 4), float('nan'))
    weight.is_floating_point = OrderedDict  # an allowed global: returns an empty, falsy dict
    path = tmp_path / 'nan.pth'
    torch.save(dict(state_dict=dict(weight=weight)), path)
    loaded = torch.load(path)['state_dict']['weight']
    assert not loaded.is_floating_point(), 'the shadowing survives weights-only loading'
    with pytest.raises(NonFiniteWeightsError, match='weight'):
        load_checkpoint_file(path)
    clean = dict(state_dict=dict(weight=torch.ones(2)))
    clean['state_dict']['weight'].detach = OrderedDict
    torch.save(clean, tmp_path / 'ok.pth')
    rebuilt = load_checkpoint_file(tmp_path / 'ok.pth')['state_dict']['weight']
    assert type(rebuilt) is torch.Tensor and vars(rebuilt) == {}
    assert torch.equal(rebuilt, torch.ones(2))


@pytest.mark.parametrize('kind', ['stride0_2e9', 'stride0_1e12', 'meta', 'sparse', 'quantized'])
def test_tensors_that_are_not_dense_data_are_refused_in_one_line(tmp_path, kind):
    tensor = dict(
        stride0_2e9=lambda: torch.zeros(1).expand(2_000_000_000),
        stride0_1e12=lambda: torch.zeros(1).expand(10**12),
        meta=lambda: torch.empty(10**6, device='meta'),
        sparse=lambda: torch.eye(3).to_sparse(),
        quantized=lambda: torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.quint8),
    )[kind]()
    path = tmp_path / f'{kind}.pth'
    torch.save(dict(state_dict=dict(weight=tensor)), path)
    assert torch.load(path)['state_dict']['weight'].shape == tensor.shape
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    message = str(info.value)
    assert str(path) in message and "['weight']" in message and '\n' not in message


def test_shared_references_are_walked_once(tmp_path):
    laughs = ['lol']
    for _ in range(40):  # 2**40 paths to the innermost list
        laughs = [laughs, laughs]
    path = tmp_path / 'laughs.pth'
    torch.save(dict(meta=dict(laughs=laughs), state_dict=dict(w=torch.ones(1))), path)
    assert os.path.getsize(path) < 10_000
    with deadline(60):
        loaded = load_checkpoint_file(path)
    outer = loaded['meta']['laughs']
    assert outer[0] is outer[1]  # sharing kept, each object rebuilt once


def legacy_file_holding(object_pickle: bytes) -> bytes:
    """A legacy-format torch file whose object record is ``object_pickle`` (no tensors)."""
    template = io.BytesIO()
    torch.save([], template, _use_new_zipfile_serialization=False)
    template.seek(0)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(template)
    start = template.tell()
    pickle.load(template)
    data = template.getvalue()
    return data[:start] + object_pickle + data[template.tell():]


def test_nesting_deeper_than_any_checkpoint_is_refused(tmp_path):
    # 100,000 lists each inside the previous: pickle builds them without recursion (torch.save
    # could not write them, it recurses); a recursive walk would raise RecursionError.
    depth = 100_000
    nested = pickle.PROTO + b'\x02' + pickle.EMPTY_LIST * depth + pickle.APPEND * (depth - 1) + \
        pickle.STOP
    path = tmp_path / 'deep.pth'
    path.write_bytes(legacy_file_holding(nested))
    assert len(torch.load(path)) == 1
    with pytest.raises(UnsafeCheckpointError, match='nested more than') as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value)


PATCHED_MODULE = '''
import torch

class Container(torch.nn.Module):
    dump_patches = True

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
'''


def test_converter_never_writes_a_patch_file_for_a_module_record(tmp_path, monkeypatch, capsys):
    """A legacy file saved from a module object records its class's source; torch, loading it
    where the source differs, writes ``<class>.patch`` in the working folder."""
    (tmp_path / 'planted.py').write_text(PATCHED_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    planted = importlib.import_module('planted')
    monkeypatch.setitem(sys.modules, 'planted', planted)  # removed again at the end
    path = tmp_path / 'module_record.pth'
    torch.save(dict(state_dict=planted.Container()), path, _use_new_zipfile_serialization=False)
    (tmp_path / 'planted.py').write_text(PATCHED_MODULE.replace('ones', 'zeros'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch's SourceChangeWarning
        torch.load(path, weights_only=False)  # stock: the file is benign, only the patch is shown
    assert (tmp_path / 'Container.patch').exists(), 'stock torch writes the patch file'
    (tmp_path / 'Container.patch').unlink()

    # torch's module-record check starts by reading the class's source: it must not be reached
    checked = []
    monkeypatch.setattr(torch.serialization, 'get_source_lines_and_file',
                        lambda obj, *args: checked.append(obj) or ([], 0, ''))
    monkeypatch.setattr(sys, 'argv', ['dit_official2mmseg.py', str(path),
                                      str(tmp_path / 'out.pth')])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / 'tools/model_converters/dit_official2mmseg.py'),
                       run_name='__main__')
    assert exit_info.value.code == 1
    assert 'only tensor storages are read' in capsys.readouterr().err
    assert checked == []
    assert not list(tmp_path.glob('*.patch')) and not (tmp_path / 'out.pth').exists()
