"""The (image, sentence) pairs of a batch-inference run, read from a JSON Lines file or a folder.

Two inputs (``tools/infer.py``, ``docs/en/custom_data.md#label-at-scale``):

- **A JSON Lines file**: one ``{"image": PATH, "sentence": TEXT, "id": ID}`` object a line;
  ``id`` (integer or string, unique) is optional and defaults to the line number. Blank lines
  are skipped; any other field is refused.
- **A folder of images with a sentence file** (``FOLDER/sentences.txt`` by default): one
  ``IMAGE<TAB>SENTENCE`` line per pair. ``IMAGE`` may be a glob pattern (``*.jpg``,
  ``street/*``): the sentence then applies to every image file it matches, in sorted order.
  Blank lines and lines starting with ``#`` are skipped. The id of a pair is ``IMAGE#LINE``.

Image paths are relative to the image root (the JSON Lines file's folder or the folder, unless
given): neither absolute nor leaving it with ``..``, so predictions convert into the custom
format with the same root. Every refusal names the file, the line and the field; a missing image
is found here, before the model runs.
"""
import glob
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Union

from ..datasets.custom_format import check_relative_path, iter_json_lines, iter_tab_lines

PairId = Union[int, str]
#: Fields of a JSON Lines input record.
INPUT_FIELDS = ('id', 'image', 'sentence')
#: Name of the sentence file of a folder input.
SENTENCE_FILE = 'sentences.txt'
#: Extensions a glob pattern of a sentence file matches.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


class Pair(NamedTuple):
    """One (image, sentence) pair to segment.

    Attributes:
        id (int | str): Unique id of the pair (the output record's ``id``).
        image (str): Path relative to the image root, as the output records it.
        path (str): The file to read.
        sentence (str): The referring sentence.
        where (str): ``'FILE, line N'``, for messages.
    """
    id: PairId
    image: str
    path: str
    sentence: str
    where: str


def file_stem(pair_id: PairId) -> str:
    """The file name (without extension) of a pair's PNG mask and overlay: its id, with every
    character other than letters, digits, ``.``, ``_``, ``-`` and ``#`` replaced by ``_``."""
    return re.sub(r'[^A-Za-z0-9._#-]', '_', str(pair_id))


def _pair(pair_id: object, image: object, sentence: object, image_root: str,
          where: str) -> Pair:
    if isinstance(pair_id, bool) or not isinstance(pair_id, (int, str)) or pair_id == '':
        raise ValueError(f'{where}: id: must be an integer or a non-empty string, got '
                         f'{pair_id!r}')
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f'{where}: sentence: must be a non-empty string, got {sentence!r}')
    try:
        image = check_relative_path(image)
    except ValueError as err:
        raise ValueError(f'{where}: image: {err}') from None
    path = osp.join(image_root, image)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{where}: image: {path} not found')
    return Pair(pair_id, image, path, sentence.strip(), where)


def read_jsonl_pairs(path: str, image_root: Optional[str] = None) -> List[Pair]:
    """The pairs of a JSON Lines input (see the module documentation).

    Args:
        path (str): The file.
        image_root (str, optional): Folder the image paths are relative to. Defaults to the
            file's folder.

    Returns:
        list[Pair]: The pairs in file order.

    Raises:
        FileNotFoundError: The file or an image is missing (file, line and field named).
        ValueError: A line is not a JSON object, lacks or misspells a field, or has an empty
            sentence or an absolute image path (file, line and field named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'input file not found: {path}')
    root = osp.dirname(path) if image_root is None else image_root
    pairs = []
    for number, value in iter_json_lines(path):
        where = f'{path}, line {number}'
        if not isinstance(value, dict):
            raise ValueError(f'{where}: must be a JSON object with "image" and "sentence", got '
                             f'{type(value).__name__}')
        unknown = sorted(set(value) - set(INPUT_FIELDS))
        if unknown:
            raise ValueError(f'{where}: unknown field(s) {unknown}; a pair has "image", '
                             '"sentence" and an optional "id"')
        for field in ('image', 'sentence'):
            if field not in value:
                raise ValueError(f'{where}: {field}: missing')
        pairs.append(_pair(value.get('id', number), value['image'], value['sentence'], root,
                           where))
    return pairs


def read_folder_pairs(folder: str, sentence_file: Optional[str] = None,
                      image_root: Optional[str] = None) -> List[Pair]:
    """The pairs of a folder of images and a sentence file (see the module documentation).

    Args:
        folder (str): The folder.
        sentence_file (str, optional): The ``IMAGE<TAB>SENTENCE`` file. Defaults to
            ``FOLDER/sentences.txt``.
        image_root (str, optional): Folder the image paths are relative to. Defaults to
            ``folder``.

    Returns:
        list[Pair]: The pairs in line order (a pattern's images sorted).

    Raises:
        FileNotFoundError: The sentence file or an image is missing (file and line named).
        ValueError: A line is not UTF-8, lacks its tab, has an empty sentence, or a pattern
            matches no image (file, line and field named).
    """
    source = sentence_file or osp.join(folder, SENTENCE_FILE)
    root = folder if image_root is None else image_root
    if not osp.isfile(source):
        raise FileNotFoundError(f'{source} not found; a folder input needs a sentence file of '
                                'IMAGE<TAB>SENTENCE lines (--sentences FILE names another)')
    pairs = []
    for number, where, (image, sentence) in iter_tab_lines(source, ('IMAGE', 'SENTENCE')):
        images = [image]
        if glob.has_magic(image):
            matches = glob.glob(osp.join(glob.escape(root), image), recursive=True)
            images = sorted(osp.relpath(m, root).replace(osp.sep, '/') for m in matches
                            if osp.isfile(m) and m.lower().endswith(IMAGE_EXTENSIONS))
            if not images:
                raise ValueError(f'{where}: image: the pattern {image!r} matches no image '
                                 f'file under {root}')
        pairs += [_pair(f'{name}#{number}', name, sentence, root, where) for name in images]
    return pairs


def check_unique_ids(pairs: List[Pair], file_names: bool = False) -> None:
    """Refuse two pairs with the same id (or, with ``file_names``, the same :func:`file_stem`).

    Args:
        pairs (list[Pair]): The pairs.
        file_names (bool): Also refuse ids that give the same PNG file name. Defaults to False.

    Raises:
        ValueError: Naming both lines.
    """
    seen: Dict[object, Pair] = {}
    for pair in pairs:
        key = file_stem(pair.id) if file_names else pair.id
        if key in seen:
            what = f'file name {key}.png' if file_names else f'id {pair.id!r}'
            raise ValueError(f'{pair.where}: id: {pair.id!r} repeats the {what} of '
                             f'{seen[key].where}')
        seen[key] = pair
