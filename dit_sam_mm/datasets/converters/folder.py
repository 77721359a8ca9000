"""From a folder of images, mask images and a sentence file to the custom format.

The folder::

    FOLDER/images/street_7.jpg ...        the images
    FOLDER/masks/street_7_car.png ...     one mask per object (non-zero pixels = object)
    FOLDER/sentences.txt                  IMAGE<TAB>MASKS<TAB>SENTENCE, one sentence a line

``IMAGE`` is relative to ``images/``; ``MASKS`` is one mask file relative to ``masks/``, several
joined by ``+`` (a sentence naming several objects), or ``-`` (it names nothing in the image).
Lines of the same image and masks become one record with several sentences; blank lines and
lines starting with ``#`` are skipped. Masks are stored as compressed RLE, so the written files
do not depend on the mask images any more.
"""
import os.path as osp
import zlib
from typing import Dict, List, Tuple

from ..custom_format import check_relative_path, iter_tab_lines
from ..custom_writer import make_record
from ..image_limits import check_image_size
from ..mask_codec import encode_mask, read_mask_file

SENTENCE_FILE = 'sentences.txt'
NO_TARGET = '-'


def split_of(image: str, holdout_split: str, holdout_fraction: float, split: str) -> str:
    """The split of an image: a stable pseudo-random ``holdout_fraction`` goes to
    ``holdout_split`` (by a CRC-32 of its path, so adding images moves no other image)."""
    if holdout_fraction <= 0:
        return split
    return holdout_split if zlib.crc32(image.encode()) % 10000 < holdout_fraction * 10000 \
        else split


def read_sentence_lines(path: str) -> List[Tuple[int, str, List[str], str]]:
    """``(line, image, masks, sentence)`` of every sentence line of ``sentences.txt``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A line is not UTF-8, lacks a field, or has an empty sentence or path.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; the folder needs a {SENTENCE_FILE} with '
                                'IMAGE<TAB>MASKS<TAB>SENTENCE lines')
    entries = []
    for number, where, (image, masks, sentence) in iter_tab_lines(
            path, ('IMAGE', 'MASKS', 'SENTENCE')):
        if not sentence:
            raise ValueError(f'{where}: empty sentence')
        try:
            image = check_relative_path(image)
            masks = ([] if masks == NO_TARGET else
                     [check_relative_path(m) for m in masks.split('+')])
        except ValueError as err:
            raise ValueError(f'{where}: {err}') from None
        entries.append((number, image, masks, sentence))
    if not entries:
        raise ValueError(f'{path} holds no sentence')
    return entries


def convert_folder(folder: str, split: str = 'train', holdout_split: str = 'val',
                   holdout_fraction: float = 0.0) -> Dict[str, List[dict]]:
    """Read a folder (see the module documentation) into custom-format records.

    Args:
        folder (str): The folder; it becomes the image root (records name ``images/...``).
        split (str): Split of the records. Defaults to ``'train'``.
        holdout_split (str): Split of the held-out images. Defaults to ``'val'``.
        holdout_fraction (float): Share of the images held out (chosen by their path).
            Defaults to 0.

    Returns:
        dict[str, list[dict]]: Split -> records.

    Raises:
        FileNotFoundError: ``sentences.txt``, an image or a mask is missing (named).
        ValueError: A line, image or mask is unusable (file and line named).
    """
    source = osp.join(folder, SENTENCE_FILE)
    records: Dict[Tuple[str, Tuple[str, ...]], dict] = {}
    sizes: Dict[str, Tuple[int, int]] = {}
    for number, image, masks, sentence in read_sentence_lines(source):
        where = f'{source}, line {number}'
        key = (image, tuple(masks))
        if key not in records:
            path = f'images/{image}'
            try:
                if image not in sizes:
                    if not osp.isfile(osp.join(folder, path)):
                        raise FileNotFoundError(f'image file not found: {osp.join(folder, path)}')
                    sizes[image] = check_image_size(osp.join(folder, path))
                width, height = sizes[image]
                objects = [dict(rle=encode_mask(read_mask_file(
                    osp.join(folder, 'masks', mask), (width, height)))) for mask in masks]
            except (OSError, ValueError) as err:
                raise ValueError(f'{where}: {err}') from None
            records[key] = make_record(f'{image}|{"+".join(masks) or NO_TARGET}', path, width,
                                       height, [], objects)
        records[key]['sentences'].append(sentence)
    splits: Dict[str, List[dict]] = {}
    for (image, _), record in records.items():
        splits.setdefault(split_of(image, holdout_split, holdout_fraction, split),
                          []).append(record)
    return splits
