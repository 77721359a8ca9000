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

- ``HistoryBuffer`` to :class:`~.content.HistoryBufferRecord`, which only records
  the state it is given;
- ``getattr`` to :func:`~.content.statistic_method`, which only answers
  ``getattr(HistoryBuffer, name)`` for MMEngine's four statistics (``min``, ``max``,
  ``current``, ``mean``) with a name marker;
- numpy's array and scalar reconstructors and dtypes (they build data, never call into it).

Then the result is checked and rebuilt as plain values (``content``: each object
once, fresh plain tensors, ``HistoryBuffer`` objects from validated fields), the bookkeeping
that MMEngine acts on (counters, the files its checkpoint hook removes, an old checkpoint's
config text) is validated (:func:`~.content.check_run_state`), and NaN or infinite
weights are refused. Writing goes through :func:`atomic_write`: a checkpoint appears under its
name only once it is complete.

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
from typing import IO, Any, Iterator, List, Optional, Tuple, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info

from .content import (CheckpointReadError, HistoryBufferRecord, UnsafeCheckpointError,
                      check_finite_weights, check_run_state, plain_content, statistic_method)


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
        (HistoryBufferRecord, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (statistic_method, 'builtins.getattr'),
    ]


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
        content = plain_content(content)
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
    check_run_state(content, filename)
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
        # mkstemp makes the file private (0600); give it the mode open() would have given it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
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
