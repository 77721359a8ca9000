"""Data preprocessor that gives padding added in the pipeline the normalised pad value."""
from typing import Any, Dict

from mmseg.models import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class ReferSegDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` for pipelines that pad before normalisation (``ReferPad``).

    SAM, the DIT-SAM release and MMSeg's own batching pad *after* normalisation, with 0: the
    padding is the mean colour, and that is what a model sees in training, where
    ``SegDataPreProcessor`` pads the batch. A test pipeline that pads the image to a fixed size
    (``ReferPad``, so test batches can mix aspect ratios) pads raw pixels instead, which
    normalisation turns into about -2 (black). This preprocessor normalises as its parent, then
    sets everything outside the image content of each sample to ``pad_val``: the content is
    ``img_shape`` (the resized image) at offset (top, left) from the sample's
    ``img_padding_size`` (left, right, top, bottom). Samples without ``img_padding_size`` are
    left as the parent returns them, so training is unchanged.

    Config: ``data_preprocessor = dict(type='ReferSegDataPreProcessor', mean=..., std=..., ...)``
    (the arguments of ``SegDataPreProcessor``).
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """``SegDataPreProcessor.forward`` (``inputs`` (B, 3, H, W) float, normalised), then the
        pipeline padding of each sample set to ``pad_val`` in place."""
        data = super().forward(data, training)
        inputs = data['inputs']
        for image, sample in zip(inputs, data['data_samples'] or []):
            padding = sample.metainfo.get('img_padding_size')
            if padding is None:
                continue
            left, _, top, _ = padding
            content_h, content_w = sample.metainfo['img_shape'][:2]
            # image: (C, H, W), a view into the batch
            image[:, :top] = self.pad_val
            image[:, top + content_h:] = self.pad_val
            image[:, :, :left] = self.pad_val
            image[:, :, left + content_w:] = self.pad_val
        return data
