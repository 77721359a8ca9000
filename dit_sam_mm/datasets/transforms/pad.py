"""Pad a test image to a fixed size and record where, so predictions are cropped back."""
from typing import Tuple

import mmcv
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ReferPad(BaseTransform):
    """Pad ``img`` to ``size`` and record the padding in ``img_padding_size``.

    Every test image then has the same shape, so test batches can hold images of different
    aspect ratios (MMSeg 1.2.2's ``SegDataPreProcessor`` refuses test batches of mixed sizes), and
    ``BaseSegmentor.postprocess_result`` crops the padding off the prediction before resizing it
    to the original size, because it reads ``img_padding_size`` (left, right, top, bottom).
    The ground truth is not touched: in a test pipeline it is loaded after this transform, at the
    original resolution.

    SAM pads at the bottom right (``center=False``, the default); the DIT-SAM authors' released
    code centres the image (``center=True``). Both pad *after* normalisation, with 0 (the mean
    colour), as the training batches are padded. This transform pads raw pixels, so pair it with
    ``ReferSegDataPreProcessor`` (the DIT-SAM configs' preprocessor), which sets the recorded
    padding to the normalised pad value; with ``SegDataPreProcessor`` the padding stays
    ``pad_val`` before normalisation (black for 0).

    Required keys: ``img``. Modified keys: ``img``, ``pad_shape``. Added keys:
    ``img_padding_size``.

    Args:
        size (tuple[int, int]): Output (height, width). Defaults to (512, 512).
        center (bool): Centre the image instead of padding bottom-right. Defaults to False.
        pad_val (float): Value of the padded pixels (before normalisation). Defaults to 0.
    """

    def __init__(self, size: Tuple[int, int] = (512, 512), center: bool = False,
                 pad_val: float = 0) -> None:
        self.size = tuple(size)
        self.center = center
        self.pad_val = pad_val

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        out_h, out_w = self.size
        if height > out_h or width > out_w:
            raise ValueError(
                f'ReferPad: image {results.get("img_path")!r} is {height}x{width} after resizing, '
                f'larger than size={self.size}; resize it first (Resize with keep_ratio=True and '
                f'scale={self.size})')
        top = (out_h - height) // 2 if self.center else 0
        left = (out_w - width) // 2 if self.center else 0
        bottom, right = out_h - height - top, out_w - width - left
        results['img'] = mmcv.impad(
            results['img'], padding=(left, top, right, bottom), pad_val=self.pad_val)
        results['pad_shape'] = results['img'].shape[:2]
        results['img_padding_size'] = [left, right, top, bottom]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, center={self.center}, '
                f'pad_val={self.pad_val})')
