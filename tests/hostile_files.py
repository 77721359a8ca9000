"""Hostile checkpoint and pickle files for the security tests.

Each *payload* is an object whose unpickling would create a sentinel file: ``os.system`` in a
``__reduce__``, or a chain of ``getattr`` calls from an allowed class to ``builtins.eval``.
:func:`write_checkpoint` hides a payload in a realistic MMEngine checkpoint (state dict,
optimizer state or message hub) and writes it as a torch zip file, a legacy (non-zip) torch file
or a plain pickle. :func:`assert_payload_runs_unrestricted` proves a file is really hostile.

The *shape* payloads use only globals an MMEngine checkpoint legitimately holds, with state no
honest checkpoint has; they must be refused by field validation, not by the global allow-list.
"""
import copyreg
import os
import pickle
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

FORMATS = ('zip', 'legacy', 'pickle')
PLACES = ('state_dict', 'optimizer', 'message_hub')


class Call:
    """Pickles as ``func(*args)``; ``func`` may itself be a :class:`Call` (a chain of calls)."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __call__(self, *args: Any) -> None:  # pickle wants the reduce function to be callable
        raise TypeError('only pickled')

    def __reduce__(self):
        return (self.func, self.args)


def built(cls: type, state: Any) -> Any:
    """An instance of ``cls`` that pickles as ``cls.__new__(cls)`` + ``BUILD`` with ``state``,
    as ``pickle`` writes any plain object (NEWOBJ, then its ``__dict__``)."""
    obj = cls.__new__(cls)
    obj.__reduce_ex__ = lambda protocol: (copyreg.__newobj__, (cls, ), state)
    return obj


def system_payload(sentinel: Path) -> Call:
    """``os.system('touch SENTINEL')``."""
    return Call(os.system, f'touch {sentinel}')


def eval_chain_payload(sentinel: Path) -> Call:
    """``getattr`` from ``HistoryBuffer`` to its module's builtins, then ``eval``."""
    init = Call(getattr, HistoryBuffer, '__init__')
    module_globals = Call(getattr, init, '__globals__')
    builtins_dict = Call(Call(getattr, module_globals, 'get'), '__builtins__')
    evaluate = Call(Call(getattr, builtins_dict, 'get'), 'eval')
    return Call(evaluate, f"__import__('pathlib').Path({str(sentinel)!r}).touch()")


def injected_state_payload(sentinel: Path) -> Any:
    """A ``HistoryBuffer`` whose state plants a statistics method that evaluates code."""
    return built(HistoryBuffer, dict(
        max_length=10, _log_history=np.zeros(1), _count_history=np.ones(1),
        statistics_methods={'mean': eval_chain_payload(sentinel)}))


PAYLOADS: Dict[str, Callable[[Path], Any]] = dict(
    system=system_payload, eval_chain=eval_chain_payload, injected_state=injected_state_payload)


def mmengine_checkpoint(payload: Any = None, place: str = 'message_hub') -> dict:
    """A checkpoint with MMEngine's layout (as ``CheckpointHook`` writes it), payload inside."""
    buffer = HistoryBuffer([0.5, 0.25], [1, 1])
    checkpoint = dict(
        meta=dict(epoch=1, iter=3, seed=0, mmengine_version='0.10.7'),
        state_dict=OrderedDict(weight=torch.ones(2, 2), bias=torch.zeros(2)),
        optimizer=dict(state={0: dict(step=torch.tensor(3.0), exp_avg=torch.zeros(2))},
                       param_groups=[dict(lr=1e-4, betas=(0.9, 0.999), params=[0, 1])]),
        message_hub=dict(log_scalars=OrderedDict({'train/loss': buffer}),
                         runtime_info=dict(epoch=1, iter=3, loss=np.float64(0.25)),
                         resumed_keys=dict(epoch=True, iter=True)))
    if payload is not None:
        target = dict(state_dict=checkpoint['state_dict'],
                      optimizer=checkpoint['optimizer']['state'][0],
                      message_hub=checkpoint['message_hub']['runtime_info'])[place]
        target['hostile'] = payload
    return checkpoint


def write_file(content: Any, path: Path, fmt: str = 'zip') -> Path:
    """Write ``content`` as a torch zip file, a legacy torch file or a plain pickle."""
    if fmt == 'pickle':
        path.write_bytes(pickle.dumps(content, protocol=2))
    else:
        torch.save(content, path, _use_new_zipfile_serialization=(fmt == 'zip'))
    return path


def write_checkpoint(path: Path, sentinel: Path, payload: str = 'system',
                     place: str = 'message_hub', fmt: str = 'zip') -> Path:
    """An MMEngine checkpoint with ``PAYLOADS[payload]`` at ``place``, written as ``fmt``."""
    return write_file(mmengine_checkpoint(PAYLOADS[payload](sentinel), place), path, fmt)


_UNRESTRICTED_LOAD = """
import pickle, sys
import torch
for path in sys.argv[1:]:
    try:
        torch.load(path, weights_only=False)
    except Exception:  # the payload may break the rest of the load after it ran
        pass
    with open(path, 'rb') as f:  # a plain pickle is no torch file: torch refuses it late
        try:
            pickle.load(f)
        except Exception:
            pass
"""


def assert_payload_runs_unrestricted(path: Path, sentinel: Path, *more: Path) -> None:
    """Guard that files are really hostile: unrestricted loading creates each one's sentinel.

    ``more`` continues the pairs (``path2, sentinel2, ...``); all are loaded, one after the
    other, in one fresh interpreter (an unpickled ``HistoryBuffer`` changes class-level state,
    which must not reach the tests' process).
    """
    pairs = [(path, sentinel)] + list(zip(more[::2], more[1::2]))
    assert not any(s.exists() for _, s in pairs)
    subprocess.run([sys.executable, '-c', _UNRESTRICTED_LOAD, *(str(p) for p, _ in pairs)],
                   check=True, capture_output=True, timeout=120)
    for path, sentinel in pairs:
        assert sentinel.exists(), f'{path} is not hostile'
        sentinel.unlink()
