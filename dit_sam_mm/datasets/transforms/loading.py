"""Decoding of a ref's mask from its COCO segmentation."""
from typing import Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from pycocotools import mask as mask_utils

from mmseg.registry import TRANSFORMS


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

    Required keys: ``segmentation``, ``height``, ``width``.
    Optional keys: ``ori_shape`` (checked against the annotation's size),
    ``seg_fields``.
    Added keys: ``gt_seg_map`` (uint8, 1 = referred object); ``'gt_seg_map'``
    is appended to ``seg_fields`` so resizing/cropping transforms follow it.

    Args:
        check_image_size (bool): Raise if the loaded image's ``ori_shape``
            differs from the annotation's height/width. Defaults to True.
    """

    def __init__(self, check_image_size: bool = True) -> None:
        self.check_image_size = check_image_size

    def _describe(self, results: dict) -> str:
        return (f'ref_id={results.get("ref_id")} '
                f'ann_id={results.get("ann_id")} '
                f'(image {results.get("img_path")!r})')

    def transform(self, results: dict) -> dict:
        """Decode ``results['segmentation']`` into ``results['gt_seg_map']``.

        Args:
            results (dict): Sample from :class:`RefCOCODataset`.

        Returns:
            dict: ``results`` with ``gt_seg_map`` added.
        """
        for key in ('segmentation', 'height', 'width'):
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
        try:
            mask = decode_coco_segmentation(results['segmentation'], height,
                                            width)
        except ValueError as err:
            raise ValueError(
                f'Bad segmentation for {self._describe(results)}: {err}'
            ) from err
        results['gt_seg_map'] = mask
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}'
                f'(check_image_size={self.check_image_size})')
