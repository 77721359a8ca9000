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
import itertools
import os.path as osp
import pickle
import reprlib
from typing import Any, Dict, Iterator, List, Union

#: Types a REFER refs pickle may contain after loading.
PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, type(None))

#: Keys every ref must have to be usable by :class:`RefCOCODataset`.
REQUIRED_REF_KEYS = ('ref_id', 'ann_id', 'image_id', 'split', 'sentences')

#: The type of each required key's value (``ann_id`` of a gRefCOCO ref may
#: also be a list, checked by ``gref_targets``).
REF_KEY_TYPES = dict(ref_id=int, ann_id=int, image_id=int, split=str,
                     sentences=list)

#: Deepest nesting of lists, dicts and tuples a loaded refs file may have.
#: REFER's is 5 (refs > ref > sentences > sentence > tokens); far deeper data
#: is no REFER data and would break recursive code (``repr``, ``pickle``).
MAX_NESTING = 32

_BRIEF = reprlib.Repr()
_BRIEF.maxlevel, _BRIEF.maxlist, _BRIEF.maxdict, _BRIEF.maxtuple = 2, 4, 4, 4
_BRIEF.maxstring = _BRIEF.maxother = 60


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


def _contents(container: Union[dict, list, tuple]) -> Iterator[Any]:
    """The items of a list or tuple, the keys and values of a dict."""
    if type(container) is dict:
        return itertools.chain(container.keys(), container.values())
    return iter(container)


def _check_plain(value: Any, source: str) -> None:
    """Raise unless ``value`` is plain data, at most :data:`MAX_NESTING` deep.

    A pickle can share one list many times: a list holding the previous one
    twice, 40 times over, is a few hundred bytes and 10**12 paths. The walk
    therefore visits each list, dict and tuple once, by identity, keeping
    how deep it nests (its height); a reference cycle is refused.

    Raises:
        UnsafePickleError: Naming ``source``: a type other than
            :data:`PLAIN_TYPES`, nesting beyond :data:`MAX_NESTING`, or a
            container that contains itself.
    """
    heights: Dict[int, int] = {}  # id -> levels of containers, itself included
    walking = set()  # ids of the containers whose contents are being walked
    stack = [(value, 1, False)]  # (item, its depth, contents walked)
    while stack:
        item, depth, walked = stack.pop()
        if type(item) not in PLAIN_TYPES:
            raise UnsafePickleError(
                f'Refused {source!r}: it contains a {type(item).__name__} '
                'object; a REFER refs file may only contain plain data.')
        if type(item) not in (dict, list, tuple):
            continue
        key = id(item)
        if walked:
            walking.discard(key)
            heights[key] = 1 + max(
                (heights.get(id(child), 0) for child in _contents(item)),
                default=0)
            continue
        if depth + heights.get(key, 1) - 1 > MAX_NESTING:
            raise UnsafePickleError(
                f'Refused {source!r}: its lists, dicts and tuples nest more '
                f'than {MAX_NESTING} deep; a REFER refs file nests 5 deep.')
        if key in heights:
            continue
        if key in walking:
            raise UnsafePickleError(
                f'Refused {source!r}: a {type(item).__name__} in it contains '
                'itself (a reference cycle), which REFER data never does.')
        walking.add(key)
        stack.append((item, depth, True))
        stack.extend((child, depth + 1, False) for child in _contents(item))


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


def brief_repr(value: Any) -> str:
    """``repr`` of a value read from a file, cut short (a few items, two levels).

    For error messages: a full ``repr`` of a crafted value can be gigabytes
    long or, with shared references, never end.
    """
    return _BRIEF.repr(value)


def _where(path: str, position: int, ref: dict) -> str:
    """``'PATH': ref #N (ref_id=ID)`` for messages; the id only when an int."""
    ref_id = ref.get('ref_id')
    return (f'{path!r}: ref #{position}'
            + (f' (ref_id={ref_id})' if type(ref_id) is int else ''))


def _check_ref(ref: Any, path: str, position: int,
               multi_target: bool) -> None:
    """Raise a ValueError naming ``path`` and the ref if ``ref`` is malformed."""
    if not isinstance(ref, dict):
        raise ValueError(f'{path!r}: ref #{position} is a '
                         f'{type(ref).__name__}, expected a dict')
    where = _where(path, position, ref)
    missing = [key for key in REQUIRED_REF_KEYS if key not in ref]
    if missing:
        raise ValueError(f'{where} lacks the key(s) {missing}')
    for key, expected in REF_KEY_TYPES.items():
        allowed = (int, list) if key == 'ann_id' and multi_target else (
            expected, )
        if type(ref[key]) not in allowed:
            raise ValueError(
                f'{where}: {key!r} is {brief_repr(ref[key])} of type '
                f'{type(ref[key]).__name__}, expected '
                + ' or '.join(kind.__name__ for kind in allowed))
    for number, sentence in enumerate(ref['sentences']):
        if not isinstance(sentence, dict):
            raise ValueError(f'{where}: sentence #{number} is a '
                             f'{type(sentence).__name__}, expected a dict')
        sent_id = sentence.get('sent_id', number)
        if type(sent_id) is not int:
            raise ValueError(f'{where}: sentence #{number} has sent_id '
                             f'{brief_repr(sent_id)}, expected an int')


def check_refs(refs: Any, path: str, multi_target: bool = False) -> list:
    """``refs`` if it is a non-empty list of well-formed refs, else a ValueError.

    A well-formed ref is a dict with :data:`REQUIRED_REF_KEYS` of the types
    :data:`REF_KEY_TYPES`, whose sentences are dicts with an int
    ``sent_id`` (when they have one). The texts are checked by the dataset,
    which knows which key it reads.

    Args:
        refs: The loaded file.
        path (str): The file, for the messages.
        multi_target (bool): ``ann_id`` may also be a list (gRefCOCO).
            Defaults to False.

    Returns:
        list: ``refs``.

    Raises:
        ValueError: Naming ``path``, the ref's position and ``ref_id``, the
            key and what is wrong with it.
    """
    if not isinstance(refs, list):
        raise ValueError(f'{path!r} must hold a list of refs, '
                         f'got a {type(refs).__name__}')
    if not refs:
        raise ValueError(f'{path!r} holds an empty list: no refs')
    for position, ref in enumerate(refs):
        _check_ref(ref, path, position, multi_target)
    return refs
