"""Image reading that names the file in every error and refuses huge images before decoding;
decoding of ref masks."""
from pathlib import Path
from typing import Optional, Union

import cv2
import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from pycocotools import mask as mask_utils

from mmseg.registry import TRANSFORMS
from ..image_limits import DEFAULT_MAX_PIXELS, check_image_size


def decode_image(img_bytes: bytes,
                 name: str,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file's bytes, refusing a huge image before decoding it.

    The size is read from the header first (:func:`check_image_size`); the image is then what
    ``mmcv.imfrombytes`` decodes. MMCV's own errors leave the file out (OpenCV's
    ``!buf.empty()`` assertion for a zero-byte file, an ``AssertionError`` for an undecodable
    one); these name it.

    Args:
        img_bytes (bytes): The encoded image.
        name (str): The file, for the messages.
        color_type (str): The ``flag`` of :func:`mmcv.imfrombytes`, e.g. ``'color'`` (BGR) or
            ``'color_ignore_orientation'``. Defaults to ``'color'``.
        imdecode_backend (str): The decoding backend of :func:`mmcv.imfrombytes`. Defaults to
            ``'cv2'``.
        max_pixels (int): Larger images are refused before decoding. Defaults to
            :data:`DEFAULT_MAX_PIXELS`.

    Returns:
        np.ndarray: The decoded image.

    Raises:
        ImageTooLargeError: The header claims more than ``max_pixels`` pixels.
        ValueError: The bytes are empty, or no image the backend decodes.
    """
    if not img_bytes:
        raise ValueError(f'image file {name} is empty (0 bytes): '
                         'replace it with a complete copy')
    check_image_size(img_bytes, name, max_pixels)
    try:
        img = mmcv.imfrombytes(img_bytes, flag=color_type,
                               backend=imdecode_backend)
    except Exception as err:  # each backend its own: cv2.error, OSError, ...
        raise ValueError(f'cannot decode image file {name}: {err}') from err
    if img is None:
        raise ValueError(
            f'cannot decode image file {name}: not an image, or a format or '
            f'corruption the {imdecode_backend!r} decoder cannot read '
            f'({len(img_bytes):,} bytes)')
    return img


def read_image_file(path: Union[str, Path],
                    color_type: str = 'color',
                    imdecode_backend: str = 'cv2',
                    backend_args: Optional[dict] = None,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file, naming the file in every error (see :func:`decode_image`).

    Args:
        path (str | Path): The image file (local or any MMEngine file backend).
        color_type (str): The ``flag`` of :func:`mmcv.imfrombytes`. Defaults to ``'color'``.
        imdecode_backend (str): The decoding backend of :func:`mmcv.imfrombytes`. Defaults to
            ``'cv2'``.
        backend_args (dict, optional): Arguments of the file backend.
            Defaults to None.
        max_pixels (int): Larger images are refused before decoding. Defaults to
            :data:`DEFAULT_MAX_PIXELS`.

    Returns:
        np.ndarray: The decoded image.

    Raises:
        FileNotFoundError: The file does not exist.
        IsADirectoryError: The path is a folder.
        OSError: Another reading error (e.g. no permission); the operating
            system's message names the file.
        ImageTooLargeError: The header claims more than ``max_pixels`` pixels.
        ValueError: The file is empty or cannot be decoded.
    """
    path = str(path)
    try:
        img_bytes = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as err:
        raise FileNotFoundError(f'image file not found: {path}') from err
    except IsADirectoryError as err:
        raise IsADirectoryError(
            f'{path} is a folder, not an image file') from err
    return decode_image(img_bytes, path, color_type, imdecode_backend,
                        max_pixels)


@TRANSFORMS.register_module()
class LoadReferImageFromFile(LoadImageFromFile):
    """MMCV's ``LoadImageFromFile`` whose every reading error names the file.

    A missing, empty or undecodable image stops the run with a
    ``FileNotFoundError`` / ``ValueError`` naming it (read by
    :func:`read_image_file`) instead of OpenCV's assertion without a file
    name; an image with more than ``max_pixels`` pixels, with an
    ``ImageTooLargeError`` before it is decoded. Everything else is
    ``LoadImageFromFile``'s, except the deprecated ``file_client_args``,
    which it does not take (use ``backend_args``).

    Required keys: ``img_path``.
    Added keys: ``img``, ``img_shape``, ``ori_shape``.

    Args:
        to_float32 (bool): Convert the image to float32. Defaults to False.
        color_type (str): The ``flag`` of :func:`mmcv.imfrombytes`.
            Defaults to ``'color'``.
        imdecode_backend (str): The decoding backend. Defaults to ``'cv2'``.
        ignore_empty (bool): Return None (the dataset then draws another
            sample) instead of raising when the image cannot be read.
            Defaults to False.
        backend_args (dict, optional): Arguments of the file backend.
            Defaults to None.
        max_pixels (int): Refuse images whose header claims more pixels,
            before decoding them. Defaults to ``DEFAULT_MAX_PIXELS`` of
            ``dit_sam_mm.datasets.image_limits`` (Pillow's limit, 89,478,485).
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 ignore_empty: bool = False,
                 *,
                 backend_args: Optional[dict] = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(to_float32=to_float32, color_type=color_type,
                         imdecode_backend=imdecode_backend,
                         ignore_empty=ignore_empty,
                         backend_args=backend_args)
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        """Read ``results['img_path']`` into ``results['img']``.

        Args:
            results (dict): Sample holding ``img_path``.

        Returns:
            dict | None: ``results`` with the image and its shapes, or None
            for an unreadable image with ``ignore_empty=True``.
        """
        try:
            img = read_image_file(results['img_path'], self.color_type,
                                  self.imdecode_backend, self.backend_args,
                                  self.max_pixels)
        except (OSError, ValueError):
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


def decode_coco_segmentation(segmentation: Union[list, dict], height: int,
                             width: int) -> np.ndarray:
    """Decode a COCO segmentation into a (height, width) uint8 0/1 mask.

    Args:
        segmentation (list | dict): Polygons ``[[x1, y1, x2, y2, ...], ...]``,
            an uncompressed RLE ``{'counts': [int, ...], 'size': [h, w]}``
            (crowd annotations) or a compressed RLE (``counts`` a string).
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: C-contiguous uint8 mask with values 0 and 1.
    """
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=np.uint8)
        rle = mask_utils.merge(
            mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and 'counts' in segmentation:
        size = [int(s) for s in segmentation.get('size', (height, width))]
        if size != [height, width]:
            raise ValueError(f'RLE size {size} differs from the image size '
                             f'{[height, width]}')
        if isinstance(segmentation['counts'], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = segmentation
    else:
        raise ValueError('segmentation must be a polygon list or an RLE dict, '
                         f'got {type(segmentation).__name__}')
    # pycocotools gives a column-major (Fortran) array; OpenCV's transpose of
    # its row-major transpose is a ~10x faster C-order copy than numpy's.
    return cv2.transpose(np.ascontiguousarray(mask_utils.decode(rle).T))


@TRANSFORMS.register_module()
class LoadReferAnnotations(BaseTransform):
    """Decode the referred object's mask into ``gt_seg_map``.

    The mask is decoded with pycocotools at the image's original size
    (``height``, ``width`` from ``instances.json``). Put it after ``Resize``
    in a test pipeline (MMSeg's convention) so the metric sees the mask at
    the original resolution, and before it in a training pipeline.

    A RefCOCO sample has one ``segmentation``. A gRefCOCO sample (it has
    ``ann_ids``, see ``GRefCOCODataset``) has one segmentation per target in
    ``segmentations``: the mask is their union, all zeros when there is no
    target.

    Required keys: ``height``, ``width``, and ``segmentation`` or (with
    ``ann_ids``) ``segmentations``.
    Optional keys: ``ori_shape`` (checked against the annotation's size),
    ``seg_fields``.
    Added keys: ``gt_seg_map`` (uint8 (H, W), 1 = referred object(s));
    ``'gt_seg_map'`` is appended to ``seg_fields`` so resizing/cropping
    transforms follow it.

    Args:
        check_image_size (bool): Raise if the loaded image's ``ori_shape``
            differs from the annotation's height/width. Defaults to True.
    """

    def __init__(self, check_image_size: bool = True) -> None:
        self.check_image_size = check_image_size

    def _describe(self, results: dict) -> str:
        ann = (f'ann_ids={results["ann_ids"]}' if 'ann_ids' in results else
               f'ann_id={results.get("ann_id")}')
        return (f'ref_id={results.get("ref_id")} {ann} '
                f'(image {results.get("img_path")!r})')

    def _decode(self, results: dict, height: int, width: int) -> np.ndarray:
        """The (height, width) uint8 mask: one segmentation or a union."""
        if 'ann_ids' in results:
            segmentations = results.get('segmentations')
            if segmentations is None:
                raise KeyError('LoadReferAnnotations needs \'segmentations\' '
                               f'in the sample of {self._describe(results)}')
        else:
            if 'segmentation' not in results:
                raise KeyError('LoadReferAnnotations needs \'segmentation\' '
                               f'in the sample of {self._describe(results)}')
            segmentations = [results['segmentation']]
        try:
            masks = [decode_coco_segmentation(segmentation, height, width)
                     for segmentation in segmentations]
        except ValueError as err:
            raise ValueError(
                f'Bad segmentation for {self._describe(results)}: {err}'
            ) from err
        if not masks:
            return np.zeros((height, width), dtype=np.uint8)
        for other in masks[1:]:  # each decoded mask is a fresh array
            masks[0] |= other
        return masks[0]

    def transform(self, results: dict) -> dict:
        """Decode the sample's segmentation(s) into ``results['gt_seg_map']``.

        Args:
            results (dict): Sample from :class:`RefCOCODataset` or
                :class:`GRefCOCODataset`.

        Returns:
            dict: ``results`` with ``gt_seg_map`` added.
        """
        for key in ('height', 'width'):
            if key not in results:
                raise KeyError(f'LoadReferAnnotations needs {key!r} in the '
                               f'sample of {self._describe(results)}')
        height, width = int(results['height']), int(results['width'])
        ori_shape = results.get('ori_shape')
        if (self.check_image_size and ori_shape is not None
                and tuple(ori_shape[:2]) != (height, width)):
            raise ValueError(
                f'Image size {tuple(ori_shape[:2])} of '
                f'{self._describe(results)} differs from the annotation size '
                f'{(height, width)} in instances.json')
        results['gt_seg_map'] = self._decode(results, height, width)
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}'
                f'(check_image_size={self.check_image_size})')
