"""Read checkpoint files so that no file can run code: tensors and plain data only.

A ``.pth`` file is a pickle, and a pickle is a program. ``torch.load(weights_only=True)`` (the
default since torch 2.6) builds only tensors and plain containers, but a checkpoint written by
MMEngine also holds the message hub: ``HistoryBuffer`` objects, numpy arrays and scalars, and
``getattr(HistoryBuffer, 'min')`` calls for its statistics methods. Allow-listing those globals
process-wide is what made hostile files dangerous: with ``getattr`` a pickle reaches any
attribute of any allowed object (``builtins.eval`` included), and ``HistoryBuffer.__setstate__``
copies whatever it is given into a class-level table of callables.

:func:`load_checkpoint_file` therefore allow-lists nothing process-wide. For one ``torch.load``
call it maps the few globals of MMEngine's bookkeeping to inert stand-ins:

- ``HistoryBuffer`` to :class:`_HistoryBufferRecord`, which only records the state it is given;
- ``getattr`` to :func:`_statistic_method`, which only answers ``getattr(HistoryBuffer, name)``
  for MMEngine's four statistics (``min``, ``max``, ``current``, ``mean``) with a name marker;
- numpy's array and scalar reconstructors and dtypes (they build data, never call into it).

Then the whole result is walked: tensors, numbers, strings, bytes, ``None``, numpy arrays and
scalars of plain dtypes (no Python objects inside), ``torch.Size`` / ``dtype`` / ``device`` and
lists, tuples, sets and dicts of these come back as they are; every record becomes a fresh
``HistoryBuffer`` built from validated fields; anything else stops the load with
:class:`UnsafeCheckpointError`, naming the file and where in it the object was.

:func:`register_safe_checkpoint_loader` makes MMEngine read checkpoints this way
(``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained')``), local files and URLs alike
(``http(s)://`` and the model-zoo schemes built on it, e.g. ``torchvision://``: MMEngine's own
loader for these unpickles without restriction); ``import dit_sam_mm`` calls it.
"""
import contextlib
import os
import os.path as osp
import pickle
import re
import tempfile
from collections import Counter, OrderedDict
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info

#: The statistics methods MMEngine's ``HistoryBuffer`` pickles by reference.
HISTORY_STATISTICS = ('min', 'max', 'current', 'mean')
_HISTORY_FIELDS = {'max_length', '_log_history', '_count_history'}
_PLAIN_ATOMS = (bool, int, float, complex, str, bytes, bytearray, type(None), torch.Size,
                torch.dtype, torch.device, torch.layout, torch.memory_format, torch.qscheme)
_SEQUENCES = (list, tuple, set)
_MAPPINGS = (dict, OrderedDict, Counter)
_PLAIN_ARRAY_KINDS = 'biufcSUM?'  # bool, integers, floats, complex, strings, datetimes


class CheckpointReadError(RuntimeError):
    """A checkpoint file cannot be read (missing, truncated, not a checkpoint)."""


class NonFiniteWeightsError(CheckpointReadError):
    """A checkpoint's weights hold NaN or infinite values."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint file asked to build something other than tensors and plain data."""


class _HistoryBufferRecord:
    """Stands in for ``HistoryBuffer`` while unpickling: records its state, calls nothing."""

    state: Optional[dict]

    def __new__(cls, *args: Any) -> '_HistoryBufferRecord':
        if args:
            raise UnsafeCheckpointError('HistoryBuffer is pickled without arguments')
        record = super().__new__(cls)
        record.state = None
        return record

    def __setstate__(self, state: Any) -> None:
        if self.state is not None:
            raise UnsafeCheckpointError('HistoryBuffer state given twice')
        if not isinstance(state, dict):
            raise UnsafeCheckpointError(
                f'HistoryBuffer state must be a dict, got {type(state).__name__}')
        self.state = state


class _StatisticName(str):
    """``getattr(HistoryBuffer, name)`` for one of :data:`HISTORY_STATISTICS`, as a marker."""


def _statistic_method(owner: Any, name: Any, *default: Any) -> _StatisticName:
    """Stands in for ``builtins.getattr``: only MMEngine's own statistics methods resolve."""
    if owner is not _HistoryBufferRecord or name not in HISTORY_STATISTICS or default:
        raise UnsafeCheckpointError(
            f'getattr({"HistoryBuffer" if owner is _HistoryBufferRecord else type(owner).__name__}'
            f', {name!r}) is not allowed: only HistoryBuffer statistics methods '
            f'{HISTORY_STATISTICS} may be referenced')
    return _StatisticName(name)


def _numpy_globals() -> List[Union[object, Tuple[object, str]]]:
    """numpy's array / scalar reconstruction, under the module names numpy 1.x and 2.x write."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    allowed: List[Union[object, Tuple[object, str]]] = [np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed += [(multiarray._reconstruct, f'{module}._reconstruct'),
                    (multiarray.scalar, f'{module}.scalar')]
    # numpy >= 1.25 pickles a dtype as an instance of its concrete class (e.g. Float64DType).
    if hasattr(np, 'dtypes'):
        allowed += [
            cls for cls in vars(np.dtypes).values()
            if isinstance(cls, type) and issubclass(cls, np.dtype)
        ]
    return allowed


def _stand_in_globals() -> List[Union[object, Tuple[object, str]]]:
    return _numpy_globals() + [
        (_HistoryBufferRecord, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_statistic_method, 'builtins.getattr'),
    ]


def _check_array(value: np.ndarray, where: str) -> None:
    if value.dtype.kind not in _PLAIN_ARRAY_KINDS or value.dtype.hasobject or \
            value.dtype.fields is not None:
        raise UnsafeCheckpointError(
            f'{where}: numpy array of dtype {value.dtype} (only plain numeric, boolean and '
            'string arrays are read)')


def _rebuild_history_buffer(record: _HistoryBufferRecord, where: str) -> Any:
    """A real ``HistoryBuffer`` from a record whose fields are checked one by one."""
    from mmengine.logging import HistoryBuffer

    state = dict(record.state or {})
    methods = state.pop('statistics_methods', {})
    if not isinstance(methods, dict) or any(
            type(v) is not _StatisticName or k != v for k, v in methods.items()):
        raise UnsafeCheckpointError(
            f'{where}: HistoryBuffer statistics_methods may only name {HISTORY_STATISTICS}')
    if set(state) != _HISTORY_FIELDS:
        raise UnsafeCheckpointError(
            f'{where}: HistoryBuffer fields must be {sorted(_HISTORY_FIELDS)}, got '
            f'{sorted(map(str, state))}')
    logs, counts, max_length = (state['_log_history'], state['_count_history'],
                                state['max_length'])
    if type(max_length) is not int or max_length <= 0:
        raise UnsafeCheckpointError(f'{where}: HistoryBuffer max_length must be a positive int')
    for name, array in (('_log_history', logs), ('_count_history', counts)):
        if type(array) is not np.ndarray or array.ndim != 1 or array.dtype.kind not in 'biuf':
            raise UnsafeCheckpointError(
                f'{where}: HistoryBuffer {name} must be a 1-D numeric numpy array')
    if len(logs) != len(counts):
        raise UnsafeCheckpointError(f'{where}: HistoryBuffer histories differ in length')
    return HistoryBuffer(logs, counts, max_length)


def _plain(value: Any, where: str) -> Any:
    """``value`` with records rebuilt, after checking that it is tensors and plain data only."""
    kind = type(value)
    if kind in _PLAIN_ATOMS or isinstance(value, torch.Tensor):
        return value
    if kind is np.ndarray:
        _check_array(value, where)
        return value
    if isinstance(value, np.generic) and kind.__module__ == 'numpy':
        _check_array(np.asarray(value), where)
        return value
    if kind is _HistoryBufferRecord:
        return _rebuild_history_buffer(value, where)
    if kind in _SEQUENCES:
        items = [_plain(item, f'{where}[{i}]') for i, item in enumerate(value)]
        return kind(items)
    if kind in _MAPPINGS:
        # Through a dict: a Counter built from pairs would count the pairs.
        rebuilt = kind(dict((_plain(key, f'{where} key'), _plain(item, f'{where}[{key!r}]'))
                            for key, item in value.items()))
        attributes = getattr(value, '__dict__', {})
        if attributes:
            # A module state dict carries its modules' versions in ``_metadata``, nothing else.
            if kind is not OrderedDict or set(attributes) != {'_metadata'}:
                raise UnsafeCheckpointError(
                    f'{where}: {kind.__name__} with attributes {sorted(attributes)}')
            rebuilt._metadata = _plain(value._metadata, f'{where}._metadata')
        return rebuilt
    raise UnsafeCheckpointError(
        f'{where}: a {kind.__module__}.{kind.__qualname__} object (only tensors, numbers, '
        'strings, numpy arrays and containers of these are read)')


def check_finite_weights(content: Any, filename: str) -> None:
    """Refuse weights with NaN or infinite values (every metric would silently be 0).

    Checks ``content['state_dict']`` (or ``content`` itself, a plain state dict) and
    ``content['ema_state_dict']``.

    Raises:
        NonFiniteWeightsError: Naming the file and the first keys.
    """
    for name in ('state_dict', 'ema_state_dict'):
        weights = content.get(name) if isinstance(content, dict) else None
        if name == 'state_dict' and weights is None and isinstance(content, dict):
            weights = content  # a plain state dict
        if not isinstance(weights, dict):
            continue
        bad = [k for k, v in weights.items() if isinstance(v, torch.Tensor)
               and v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            listed = ', '.join(map(str, bad[:10])) + (f' ... ({len(bad)} in all)'
                                                     if len(bad) > 10 else '')
            raise NonFiniteWeightsError(
                f'{filename}: {name} holds NaN or infinite values in {listed}; the training run '
                'that wrote it diverged. Use an earlier checkpoint.')


def _is_refusal(err: pickle.UnpicklingError) -> bool:
    """Whether the weights-only unpickler refused something (rather than met a broken file)."""
    if isinstance(err, UnsafeCheckpointError) or isinstance(err.__context__,
                                                             UnsafeCheckpointError):
        return True
    named = re.search(r'GLOBAL (\S+)', str(err))
    if named and not all(part.isidentifier() for part in named.group(1).split('.')):
        return False  # a file cut inside a global's name ('t.'), not a refused global
    return any(marker in str(err) for marker in ('GLOBAL', 'Trying to', 'Can only'))


def _unreadable(filename: str, err: Exception) -> CheckpointReadError:
    if isinstance(err, pickle.UnpicklingError):
        detail = _refusal(err)
    else:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else 'no detail'
    return CheckpointReadError(
        f'{filename}: not a readable PyTorch checkpoint (truncated, or not written by '
        f'torch.save): {type(err).__name__}: {detail}')


def _refusal(err: pickle.UnpicklingError) -> str:
    """The part of torch's weights-only error that says what was refused."""
    text = str(err)
    for marker in ('WeightsUnpickler error:', 'Trying to load', 'Unsupported global'):
        if marker in text:
            text = text[text.index(marker):]
            if marker.endswith(':'):
                text = text[len(marker):]
            break
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # torch goes on to suggest allow-listing the global: exactly what must not be done here.
    return lines[0].split('. Please use')[0] if lines else type(err).__name__


def load_checkpoint_file(filename: str, map_location: Any = 'cpu') -> Any:
    """Read a checkpoint file without letting it run code (see the module docstring).

    Args:
        filename (str): A file written by ``torch.save`` (zip or legacy format).
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        The file's content: tensors and plain data, with MMEngine's ``HistoryBuffer`` objects
        rebuilt from validated fields.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: The file asks for anything else (a global, a class, a call);
            nothing it holds was run. The message names the file.
        CheckpointReadError: The file is not a readable checkpoint (truncated, text, ...).
        NonFiniteWeightsError: Its ``state_dict`` (or ``ema_state_dict``, or the file as a
            plain state dict) holds NaN or infinite values.
    """
    filename = osp.expanduser(str(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    with open(filename, 'rb') as f:
        head = f.read(4)
    # torch.save writes a zip archive, or (legacy format) pickles of protocol 2 and up.
    if not (head.startswith(b'PK\x03\x04') or head[:1] == pickle.PROTO):
        raise CheckpointReadError(
            f'{filename}: not a PyTorch checkpoint (neither a zip archive nor a pickle of '
            f'protocol >= 2; it starts with {head!r})')
    try:
        with torch.serialization.safe_globals(_stand_in_globals()):
            content = torch.load(filename, map_location=map_location, weights_only=True)
        content = _plain(content, 'checkpoint')
    except pickle.UnpicklingError as err:
        if not _is_refusal(err):
            raise _unreadable(filename, err) from None
        reason = err if isinstance(err, UnsafeCheckpointError) else _refusal(err)
        raise UnsafeCheckpointError(
            f'{filename}: refused to read this checkpoint, it holds more than tensors and plain '
            f'data ({reason}). Nothing in it was run. Re-save it from a trusted environment as '
            'a plain state dict, or use a checkpoint from a source you trust.') from None
    except Exception as err:  # truncated, corrupt, or built from allowed parts that do not fit
        raise _unreadable(filename, err) from None
    check_finite_weights(content, filename)
    return content


def _download_to_cache(url: str, model_dir: Optional[str]) -> str:
    """The file of ``url`` in ``model_dir`` (torch's hub cache by default), downloaded once."""
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.isfile(cached):
        torch.hub.download_url_to_file(url, cached, progress=False)
    return cached


def load_checkpoint_url(url: str, map_location: Any = None, model_dir: Optional[str] = None,
                        progress: bool = False) -> Any:
    """MMEngine's ``http(s)://`` loader, reading the downloaded file with
    :func:`load_checkpoint_file`. In a distributed run rank 0 downloads first, as MMEngine's.

    Args:
        url (str): The checkpoint's URL.
        map_location: As for ``torch.load``. Defaults to None.
        model_dir (str, optional): Download folder. Defaults to torch's hub cache.
        progress (bool): Unused (MMEngine's signature); downloads are quiet.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        path = _download_to_cache(url, model_dir)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = _download_to_cache(url, model_dir)
    return load_checkpoint_file(path, map_location)


def register_safe_checkpoint_loader() -> None:
    """Make MMEngine read checkpoint files and URLs with :func:`load_checkpoint_file`.

    Replaces the loaders of MMEngine's ``CheckpointLoader`` for plain paths (prefix ``''``) and
    ``http(s)://`` (which ``Runner.load_checkpoint``, ``Runner.resume`` and ``load_checkpoint``
    go through), and ``mmengine.runner.checkpoint.load_from_http``, which the model-zoo schemes
    (``torchvision://``, ``open-mmlab://``, ``mmcls://``) call directly. Safe to call several
    times.
    """
    from mmengine.runner import checkpoint
    checkpoint.CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file,
                                                force=True)
    checkpoint.CheckpointLoader.register_scheme(prefixes=('http://', 'https://'),
                                                loader=load_checkpoint_url, force=True)
    checkpoint.load_from_http = load_checkpoint_url


def plain_state_dict(content: Any, filename: str) -> Dict[str, torch.Tensor]:
    """The state dict in a loaded checkpoint: the file itself or its ``state_dict`` entry.

    Raises:
        CheckpointReadError: Naming ``filename``, when there is no mapping of tensors.
    """
    if not isinstance(content, dict):
        raise CheckpointReadError(f'{filename}: holds a {type(content).__name__}, not a state '
                                  'dict')
    state_dict = content.get('state_dict', content)
    if not isinstance(state_dict, dict):
        raise CheckpointReadError(f"{filename}: 'state_dict' is a "
                                  f'{type(state_dict).__name__}, not a mapping')
    bad = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointReadError(f'{filename}: state dict entries that are not tensors: '
                                  f'{bad[:10]}')
    return state_dict


@contextlib.contextmanager
def atomic_write(filename: str) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``filename`` for writing; rename it to ``filename`` only when
    the block completes, so a kill midway leaves the old file (or none), never a partial one.

    The temporary file is named ``.<name>.<random>.tmp`` in the same folder (a rename across
    file systems would not be atomic) and removed if the block raises.
    """
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f'.{osp.basename(filename)}.', suffix='.tmp',
                                         dir=folder)
    try:
        with os.fdopen(handle, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, filename)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def save_checkpoint_file(content: Any, filename: str) -> None:
    """``torch.save(content, filename)`` through :func:`atomic_write`."""
    with atomic_write(filename) as f:
        torch.save(content, f)
