"""ReferPad: fixed-size test inputs whose padding the preprocessor normalises like SAM's and the
segmentor crops off again."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmseg.models import SegDataPreProcessor
from mmseg.structures import SegDataSample
from refer_model_fixture import write_tiny_model
from segment_anything.modeling import Sam

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.datasets.transforms import ReferPad
from dit_sam_mm.models import ReferSegDataPreProcessor

SAM_MEAN, SAM_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def padded(img, **kwargs):
    return ReferPad(**kwargs)(dict(img=img, img_path='x.jpg'))


def test_pads_bottom_right_like_sam():
    img = np.full((30, 50, 3), 7, np.uint8)
    out = padded(img, size=(64, 64))
    assert out['img'].shape == (64, 64, 3)
    assert out['pad_shape'] == (64, 64)
    assert out['img_padding_size'] == [0, 14, 0, 34]  # left, right, top, bottom
    np.testing.assert_array_equal(out['img'][:30, :50], img)
    assert out['img'][30:].max() == 0 and out['img'][:, 50:].max() == 0


def test_centres_like_the_released_code():
    img = np.full((30, 50, 3), 7, np.uint8)
    out = padded(img, size=(64, 64), center=True)
    assert out['img_padding_size'] == [7, 7, 17, 17]
    np.testing.assert_array_equal(out['img'][17:47, 7:57], img)


def test_refuses_an_image_larger_than_the_size():
    with pytest.raises(ValueError, match="'x.jpg' is 80x50 .* larger than size=\\(64, 64\\)"):
        padded(np.zeros((80, 50, 3), np.uint8), size=(64, 64))


def preprocess(preprocessor, img_bgr, center):
    """ReferPad to 64x64, then the test-time preprocessor; returns the (3, 64, 64) input."""
    out = padded(img_bgr, size=(64, 64), center=center)
    sample = SegDataSample(metainfo=dict(img_shape=img_bgr.shape[:2],
                                         img_padding_size=out['img_padding_size']))
    inputs = torch.from_numpy(out['img']).permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)
    return preprocessor(dict(inputs=[inputs], data_samples=[sample]), False)['inputs'][0]


def test_padding_is_normalised_like_sam_preprocess():
    """Bottom-right: exactly ``segment_anything``'s ``Sam.preprocess`` (normalise, then pad with
    0); centred: the same normalised image at the centre of a zero canvas, as the release."""
    img_bgr = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    rgb = torch.from_numpy(img_bgr[..., ::-1].copy()).permute(2, 0, 1).float()[None]
    ours = ReferSegDataPreProcessor(mean=SAM_MEAN, std=SAM_STD, bgr_to_rgb=True, pad_val=0)
    sam = SimpleNamespace(pixel_mean=torch.tensor(SAM_MEAN).view(-1, 1, 1),
                          pixel_std=torch.tensor(SAM_STD).view(-1, 1, 1),
                          image_encoder=SimpleNamespace(img_size=64))
    expected = Sam.preprocess(sam, rgb)[0]
    torch.testing.assert_close(preprocess(ours, img_bgr, center=False), expected, rtol=0,
                               atol=1e-6)
    centred = F.pad(expected[:, :30, :50], (7, 7, 17, 17))  # left, right, top, bottom
    torch.testing.assert_close(preprocess(ours, img_bgr, center=True), centred, rtol=0, atol=1e-6)
    # MMSeg's preprocessor normalises ReferPad's black pixels instead (about -2)
    mmseg = SegDataPreProcessor(mean=SAM_MEAN, std=SAM_STD, bgr_to_rgb=True, pad_val=0)
    assert preprocess(mmseg, img_bgr, center=False)[:, 30:].max() < -1.7


@pytest.fixture(scope='module')
def inferencer(tmp_path_factory):
    tiny = write_tiny_model(tmp_path_factory.mktemp('tiny_pad'))
    return ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu',
                              batch_size=3)


def test_a_batch_of_mixed_aspect_ratios_equals_one_image_at_a_time(inferencer):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, shape, dtype=np.uint8)
              for shape in [(64, 64, 3), (40, 96, 3), (120, 48, 3)]]
    sentences = ['the red circle', 'the leftmost square', 'the shape below the green triangle']
    batched = inferencer(images, sentences, return_probs=True)
    for image, sentence, result in zip(images, sentences, batched):
        alone = inferencer(image, sentence, return_probs=True)
        assert result.mask.shape == image.shape[:2]
        torch.testing.assert_close(result.probs, alone.probs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(result.mask, alone.mask)
