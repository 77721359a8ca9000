"""COCO RLE checked before pycocotools decodes it, and binary masks read from PNG files.

pycocotools decodes a run-length encoding without bounds checks: counts that add up to more than
``height * width`` (or a negative count in a compressed string) write past the mask buffer. A
file from a user is hostile, so :func:`check_rle` decodes the counts in numpy and compares their
sum with the size before the RLE reaches pycocotools. :func:`read_mask_file` reads a mask PNG
(its header size checked by :func:`~dit_sam_mm.datasets.image_limits.check_image_size` before
its pixels are decoded) and :func:`encode_mask` turns a mask into the compressed RLE the data
list keeps.
"""
import os.path as osp
from typing import Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .image_limits import check_image_size


def compressed_counts(counts: str) -> np.ndarray:
    """The run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``).

    Each count is written in 5-bit groups (value + 48 as a character, bit 0x20: more groups
    follow, bit 0x10 of the last group: negative); from the fourth count on, the value is a
    difference to the count two places before.

    Args:
        counts (str): The ``counts`` string.

    Returns:
        np.ndarray: int64 run lengths.

    Raises:
        ValueError: A character outside the encoding's range, or an unfinished last count.
    """
    if not counts.isascii():
        raise ValueError('compressed RLE counts hold characters outside the encoding')
    codes = np.frombuffer(counts.encode('ascii'), dtype=np.uint8).astype(np.int64) - 48
    if codes.size and (codes.min() < 0 or codes.max() > 63):
        raise ValueError('compressed RLE counts hold characters outside the encoding')
    if codes.size and codes[-1] & 0x20:
        raise ValueError('compressed RLE counts end inside a number (truncated?)')
    last = np.flatnonzero((codes & 0x20) == 0)  # the last group of every count
    group = np.zeros(codes.size, dtype=np.int64)
    group[last[:-1] + 1] = 1
    group = np.cumsum(group)
    first = np.concatenate([[0], last[:-1] + 1])
    shift = 5 * (np.arange(codes.size) - first[group])
    if codes.size and shift.max() > 50:
        raise ValueError('compressed RLE counts hold a number too large for a mask')
    values = np.zeros(last.size, dtype=np.int64)
    np.add.at(values, group, (codes & 0x1f) << shift)
    negative = (codes[last] & 0x10) != 0
    values[negative] -= np.int64(1) << (shift[last][negative] + 5)
    # pycocotools: for j > 2, count[j] = value[j] + count[j - 2].
    runs = values.copy()
    runs[1::2] = np.cumsum(values[1::2])
    if runs.size > 2:
        runs[2::2] = np.cumsum(values[2::2])
    return runs


def check_rle(rle: dict, height: int, width: int) -> None:
    """Refuse an RLE that pycocotools cannot decode safely into a (height, width) mask.

    Args:
        rle (dict): ``{'size': [h, w], 'counts': str | list[int]}``.
        height (int): The image height.
        width (int): The image width.

    Raises:
        ValueError: Another size, counts of another type, a negative count, or counts that do
            not add up to ``height * width``.
    """
    size = rle.get('size')
    if (not isinstance(size, list) or len(size) != 2
            or any(type(s) is not int for s in size)):
        raise ValueError(f'size must be [height, width], got {size!r}')
    if size != [height, width]:
        raise ValueError(f'size {size} differs from the image size [{height}, {width}]')
    counts = rle.get('counts')
    if isinstance(counts, str):
        runs = compressed_counts(counts)
    elif isinstance(counts, list) and all(type(c) is int for c in counts):
        runs = counts
    else:
        raise ValueError('counts must be a compressed string or a list of integers')
    if len(runs) and min(runs) < 0:
        raise ValueError('counts hold a negative run length')
    if int(sum(runs)) != height * width:
        raise ValueError(f'counts add up to {int(sum(runs)):,} pixels, not height x width = '
                         f'{height * width:,}')


def encode_mask(mask: np.ndarray) -> dict:
    """A (H, W) mask (non-zero = object) as a compressed COCO RLE with a text ``counts``.

    Args:
        mask (np.ndarray): The mask.

    Returns:
        dict: ``{'size': [H, W], 'counts': str}``, JSON-serialisable.
    """
    rle = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))


def read_mask_file(path: str, size: Tuple[int, int]) -> np.ndarray:
    """Read a mask image whose non-zero pixels are the object, refusing another size.

    A palette PNG counts palette index 0 as background (as VOC masks); a colour one any pixel
    with a non-zero channel as object. The size is read from the header and compared before the
    pixels are decoded.

    Args:
        path (str): The mask file (PNG, or any format PIL reads).
        size (tuple[int, int]): The expected (width, height).

    Returns:
        np.ndarray: (height, width) uint8 mask of 0 and 1.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: It is not a readable image, or its size differs from ``size``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask file not found: {path}')
    found = check_image_size(path)
    if found != tuple(size):
        raise ValueError(f'mask {path} is {found[0]}x{found[1]} pixels, but its image is '
                         f'{size[0]}x{size[1]}')
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f'mask {path} is not a readable image: {err}') from None
    if pixels.ndim == 3:
        pixels = pixels.any(axis=2)
    return (pixels != 0).astype(np.uint8)
