"""Safe loading of REFER ``refs(*).p`` pickles.

A pickle is a program: ``pickle.load`` on a file from the internet runs whatever
callables the file names. The REFER refs files only hold plain data (a list of
dicts of strings, numbers and lists), which the pickle protocol encodes with
opcodes that never look up a global. :func:`load_refs` therefore uses an
unpickler whose ``find_class`` refuses every global, so a crafted file cannot
import or call anything; it then checks that the loaded value only contains
plain data and has the shape of a REFER refs list.
"""
import io
import os.path as osp
import pickle
from typing import Any, List, Union

#: Types a REFER refs pickle may contain after loading.
PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))

#: Keys every ref must have to be usable by :class:`RefCOCODataset`.
REQUIRED_REF_KEYS = ('ref_id', 'ann_id', 'image_id', 'split', 'sentences')


class UnsafePickleError(pickle.UnpicklingError):
    """A refs pickle asked to build something other than plain data."""


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickler that builds no object except the pickle protocol's built-ins.

    Args:
        file (io.BufferedIOBase): Open binary file.
        source (str): Name of the file, for error messages.
    """

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        # REFER pickles were written by Python 2: its ``str`` objects arrive as
        # bytes and are decoded here (ASCII in practice, UTF-8 to be safe).
        super().__init__(file, encoding='utf-8', errors='strict')
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f'Refused to load {self.source!r}: it asks to build '
            f"'{module}.{name}', but a REFER refs file may only contain plain "
            'lists, dicts, tuples, strings, numbers, booleans and None. The '
            'file is corrupt or malicious; nothing in it was executed.')

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f'Refused to load {self.source!r}: it uses persistent ids, which a '
            'REFER refs file never does; nothing in it was executed.')


def _check_plain(value: Any, source: str) -> None:
    """Raise if ``value`` holds anything but :data:`PLAIN_TYPES`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) not in PLAIN_TYPES:
            raise UnsafePickleError(
                f'Refused {source!r}: it contains a {type(item).__name__} '
                'object; a REFER refs file may only contain plain data.')
        if type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif type(item) in (list, tuple):
            stack.extend(item)


def load_plain_pickle(path_or_bytes: Union[str, bytes],
                      source: str = '<bytes>') -> Any:
    """Load a pickle that may only contain plain data.

    Args:
        path_or_bytes (str | bytes): A file path, or the pickle's bytes.
        source (str): Name used in error messages when bytes are given.
            Defaults to ``'<bytes>'``.

    Returns:
        The loaded value (lists, dicts, tuples, strings, numbers, bools, None).

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafePickleError: The pickle names a global or holds other types.
    """
    if isinstance(path_or_bytes, bytes):
        buffer = io.BytesIO(path_or_bytes)
    else:
        source = str(path_or_bytes)
        if not osp.isfile(source):
            raise FileNotFoundError(f'REFER refs file not found: {source!r}')
        with open(source, 'rb') as f:
            buffer = io.BytesIO(f.read())
    try:
        value = _PlainDataUnpickler(buffer, source).load()
    except UnsafePickleError:
        raise
    except Exception as err:  # truncated file, bad opcode, bad encoding
        raise pickle.UnpicklingError(
            f'Cannot read {source!r} as a REFER refs pickle: {err}') from err
    _check_plain(value, source)
    return value


def load_refs(path: str) -> List[dict]:
    """Load and check a REFER ``refs(*).p`` file without running its code.

    Args:
        path (str): Path of ``refs(unc).p``, ``refs(umd).p``, ...

    Returns:
        list[dict]: The refs, each with at least :data:`REQUIRED_REF_KEYS`.
    """
    return check_refs(load_plain_pickle(path), path)


def check_refs(refs: Any, path: str) -> list:
    """``refs`` if it is a list of dicts with :data:`REQUIRED_REF_KEYS`, else a ValueError
    naming ``path``, the ref's position and its ``ref_id``."""
    if not isinstance(refs, list):
        raise ValueError(f'{path!r} must hold a list of refs, '
                         f'got a {type(refs).__name__}')
    for position, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise ValueError(f'{path!r}: ref #{position} is a '
                             f'{type(ref).__name__}, expected a dict')
        missing = [key for key in REQUIRED_REF_KEYS if key not in ref]
        if missing:
            raise ValueError(
                f'{path!r}: ref #{position} (ref_id={ref.get("ref_id")}) '
                f'lacks the key(s) {missing}')
    return refs
