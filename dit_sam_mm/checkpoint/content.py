"""What a checkpoint may hold once unpickled, checked and rebuilt from plain values.

:func:`~.safe_load.load_checkpoint_file` unpickles with inert stand-ins for MMEngine's
bookkeeping; this module then decides what of the result is kept. Every value read from a file
is hostile, also when its type is allowed, so:

- the result is walked once per object (by identity): shared references ("billion laughs", a
  few KB that stand for 10^12 paths) cost one visit each, and nesting deeper than
  :data:`MAX_DEPTH` is refused;
- every tensor is replaced by a fresh plain tensor made here. A tensor from the file may carry
  instance attributes that shadow its methods (``is_floating_point``, ``detach``...), so no
  method is ever called on it: only ``torch.Tensor``'s own functions and its (unshadowable)
  properties. Sparse, quantized, nested and meta tensors, and tensors that claim more elements
  than their storage holds (stride-0 tricks that make a check allocate gigabytes), are refused;
- MMEngine ``HistoryBuffer`` records are rebuilt from validated fields;
- anything else stops the load with :class:`UnsafeCheckpointError`, naming the file and where
  in it the object was.
"""
import pickle
from collections import Counter, OrderedDict
from typing import Any, Dict, Optional

import numpy as np
import torch

#: The statistics methods MMEngine's ``HistoryBuffer`` pickles by reference.
HISTORY_STATISTICS = ('min', 'max', 'current', 'mean')
#: Nesting deeper than this is refused (an MMEngine checkpoint nests about 6 levels).
MAX_DEPTH = 64
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


class HistoryBufferRecord:
    """Stands in for ``HistoryBuffer`` while unpickling: records its state, calls nothing."""

    state: Optional[dict]

    def __new__(cls, *args: Any) -> 'HistoryBufferRecord':
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


class StatisticName(str):
    """``getattr(HistoryBuffer, name)`` for one of :data:`HISTORY_STATISTICS`, as a marker."""


def statistic_method(owner: Any, name: Any, *default: Any) -> StatisticName:
    """Stands in for ``builtins.getattr``: only MMEngine's own statistics methods resolve."""
    if owner is not HistoryBufferRecord or name not in HISTORY_STATISTICS or default:
        raise UnsafeCheckpointError(
            f'getattr({"HistoryBuffer" if owner is HistoryBufferRecord else type(owner).__name__}'
            f', {name!r}) is not allowed: only HistoryBuffer statistics methods '
            f'{HISTORY_STATISTICS} may be referenced')
    return StatisticName(name)


def _check_array(value: np.ndarray, where: str) -> None:
    if value.dtype.kind not in _PLAIN_ARRAY_KINDS or value.dtype.hasobject or \
            value.dtype.fields is not None:
        raise UnsafeCheckpointError(
            f'{where}: numpy array of dtype {value.dtype} (only plain numeric, boolean and '
            'string arrays are read)')


def _rebuild_history_buffer(record: HistoryBufferRecord, where: str) -> Any:
    """A real ``HistoryBuffer`` from a record whose fields are checked one by one."""
    from mmengine.logging import HistoryBuffer

    state = dict(record.state or {})
    methods = state.pop('statistics_methods', {})
    if not isinstance(methods, dict) or any(
            type(v) is not StatisticName or k != v for k, v in methods.items()):
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


def plain_tensor(value: Any, where: str) -> torch.Tensor:
    """A fresh, detached, dense ``torch.Tensor`` with the data of ``value``, a tensor from a file.

    Only ``torch.Tensor``'s own functions are called (never a method looked up on ``value``,
    which instance attributes could shadow).

    Raises:
        UnsafeCheckpointError: ``value`` is no plain tensor or parameter, is sparse, quantized,
            nested or on the meta device, or claims more elements than its storage holds.
    """
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        raise UnsafeCheckpointError(f'{where}: a {type(value).__qualname__} (only plain tensors '
                                    'are read)')
    if value.layout != torch.strided or value.is_quantized or value.is_nested or value.is_meta:
        kind = ('meta' if value.is_meta else 'quantized' if value.is_quantized else
                'nested' if value.is_nested else str(value.layout).replace('torch.', ''))
        raise UnsafeCheckpointError(f'{where}: a {kind} tensor (only dense tensors with data '
                                    'are read)')
    numel = torch.Tensor.numel(value)
    if numel:
        item = torch.Tensor.element_size(value)
        stored = torch.Tensor.untyped_storage(value).nbytes()
        last = torch.Tensor.storage_offset(value) + sum(
            (size - 1) * stride for size, stride in zip(value.shape, torch.Tensor.stride(value)))
        if numel * item > stored or (last + 1) * item > stored:
            raise UnsafeCheckpointError(
                f'{where}: a tensor of shape {tuple(value.shape)} ({numel * item} bytes) over a '
                f'storage of {stored} bytes (overlapping or expanded; save it with '
                '.contiguous())')
    return torch.Tensor.detach(value)


class _PlainWalker:
    """Checks and rebuilds loaded content, each object once (see the module docstring)."""

    def __init__(self) -> None:
        self._done: Dict[int, Any] = {}
        self._keep: list = []  # the originals stay alive, so their ids stay theirs

    def __call__(self, value: Any, where: str, depth: int = 0) -> Any:
        kind = type(value)
        if kind in _PLAIN_ATOMS:
            return value
        if id(value) in self._done:
            return self._done[id(value)]
        if depth > MAX_DEPTH:
            raise UnsafeCheckpointError(f'{where}: nested more than {MAX_DEPTH} levels deep')
        self._keep.append(value)
        if kind in _SEQUENCES and kind is not tuple:
            rebuilt: Any = kind()
            self._done[id(value)] = rebuilt
            items = (self(item, f'{where}[{i}]', depth + 1) for i, item in enumerate(value))
            rebuilt.update(items) if kind is set else rebuilt.extend(items)
            return rebuilt
        if kind in _MAPPINGS:
            return self._mapping(value, where, depth)
        if kind is tuple:
            rebuilt = tuple(self(item, f'{where}[{i}]', depth + 1) for i, item in enumerate(value))
        elif isinstance(value, torch.Tensor):
            rebuilt = plain_tensor(value, where)
        elif kind is np.ndarray or (isinstance(value, np.generic) and kind.__module__ == 'numpy'):
            _check_array(np.asarray(value), where)
            rebuilt = value
        elif kind is HistoryBufferRecord:
            rebuilt = _rebuild_history_buffer(value, where)
        else:
            raise UnsafeCheckpointError(
                f'{where}: a {kind.__module__}.{kind.__qualname__} object (only tensors, numbers,'
                ' strings, numpy arrays and containers of these are read)')
        self._done[id(value)] = rebuilt
        return rebuilt

    def _mapping(self, value: Any, where: str, depth: int) -> Any:
        kind = type(value)
        attributes = getattr(value, '__dict__', None) or {}  # a data descriptor: unshadowable
        # A module state dict carries its modules' versions in ``_metadata``, nothing else.
        if attributes and (kind is not OrderedDict or set(attributes) != {'_metadata'}):
            raise UnsafeCheckpointError(
                f'{where}: {kind.__name__} with attributes {sorted(map(str, attributes))}')
        rebuilt = kind()
        self._done[id(value)] = rebuilt
        for key, item in dict.items(value):
            rebuilt[self(key, f'{where} key', depth + 1)] = self(item, f'{where}[{key!r}]',
                                                                 depth + 1)
        if attributes:
            rebuilt._metadata = self(attributes['_metadata'], f'{where}._metadata', depth + 1)
        return rebuilt


def plain_content(value: Any, where: str = 'checkpoint') -> Any:
    """``value`` (an unpickled checkpoint) checked and rebuilt; see the module docstring.

    Raises:
        UnsafeCheckpointError: Naming where in ``value`` the first refused object was.
    """
    return _PlainWalker()(value, where)


def check_finite_weights(content: Any, filename: str) -> None:
    """Refuse weights with NaN or infinite values (every metric would silently be 0).

    Checks ``content['state_dict']`` (or ``content`` itself, a plain state dict) and
    ``content['ema_state_dict']``. Each tensor is first made a plain tensor
    (:func:`plain_tensor`), so no method of an object from the file is called.

    Raises:
        NonFiniteWeightsError: Naming the file and the first keys.
        UnsafeCheckpointError: A value that is no plain dense tensor.
    """
    for name in ('state_dict', 'ema_state_dict'):
        weights = content.get(name) if isinstance(content, dict) else None
        if name == 'state_dict' and weights is None and isinstance(content, dict):
            weights = content  # a plain state dict
        if not isinstance(weights, dict):
            continue
        bad = []
        for key, value in dict.items(weights):
            if isinstance(value, torch.Tensor):
                tensor = plain_tensor(value, f'{filename}: {name}[{key!r}]')
                if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
                    bad.append(key)
        if bad:
            listed = ', '.join(map(str, bad[:10])) + (f' ... ({len(bad)} in all)'
                                                     if len(bad) > 10 else '')
            raise NonFiniteWeightsError(
                f'{filename}: {name} holds NaN or infinite values in {listed}; the training run '
                'that wrote it diverged. Use an earlier checkpoint.')


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


def _refuse_field(filename: str, field: str, value: Any, wanted: str) -> UnsafeCheckpointError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + '...'
    return UnsafeCheckpointError(f'{filename}: {field} is {shown}, not {wanted}; nothing in it '
                                 'was run')


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def check_run_state(content: Any, filename: str) -> None:
    """Check the bookkeeping MMEngine's ``Runner.resume`` and ``CheckpointHook`` act on.

    - ``meta['epoch']`` and ``meta['iter']`` must be non-negative integers, ``meta['seed']``
      None or an integer in [0, 2**32) (numpy's seed range);
    - ``meta['config']`` (the config text of MMCV 1.x checkpoints, which ``Runner.resume`` runs
      with ``Config.fromstring``) is removed: a checkpoint's config is code, never run here;
    - in ``message_hub['runtime_info']``, the files MMEngine's ``CheckpointHook`` removes on a
      new best or when trimming old checkpoints must be named as it names them:
      ``best_ckpt*`` a ``best_*.pth`` path, ``keep_ckpt_ids`` a list of non-negative integers,
      ``best_score*`` a number. (Which folder a removed file may be in is checked by
      :class:`~dit_sam_mm.engine.SafeCheckpointHook`, which knows the run's folder.)

    Raises:
        UnsafeCheckpointError: Naming the file and the field.
    """
    if not isinstance(content, dict):
        return
    meta = content.get('meta')
    if isinstance(meta, dict):
        for field in ('epoch', 'iter'):
            if field in meta and not _is_count(meta[field]):
                raise _refuse_field(filename, f"meta['{field}']", meta[field],
                                    'a non-negative integer')
        seed = meta.get('seed')
        if seed is not None and not (_is_count(seed) and seed < 2**32):
            raise _refuse_field(filename, "meta['seed']", seed, 'an integer in [0, 2**32)')
        if 'config' in meta:
            from mmengine.logging import print_log
            del meta['config']
            print_log(f"{filename}: ignored meta['config'], the config text of an old "
                      'checkpoint: a config is code and a checkpoint is data, so it is not run',
                      logger='current')
    hub = content.get('message_hub')
    info = hub.get('runtime_info') if isinstance(hub, dict) else None
    if not isinstance(info, dict):
        return
    for key, value in info.items():
        field = f"message_hub['runtime_info'][{key!r}]"
        if not isinstance(key, str):
            continue
        if key.startswith('best_ckpt') and value is not None and not (
                isinstance(value, str) and _is_best_checkpoint_name(value)):
            raise _refuse_field(filename, field, value, 'the path of a best_*.pth checkpoint')
        if key.startswith('best_score') and (isinstance(value, bool) or not isinstance(
                value, (int, float, np.integer, np.floating))):
            raise _refuse_field(filename, field, value, 'a number')
        if key == 'keep_ckpt_ids' and not (isinstance(value, list)
                                           and all(map(_is_count, value))):
            raise _refuse_field(filename, field, value, 'a list of non-negative integers')


def _is_best_checkpoint_name(path: str) -> bool:
    name = path.replace('\\', '/').rsplit('/', 1)[-1]
    return name.startswith('best_') and name.endswith('.pth') and '\0' not in path
