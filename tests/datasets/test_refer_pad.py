"""ReferPad: fixed-size test inputs whose padding the segmentor crops off again."""
import numpy as np
import pytest
import torch
from refer_model_fixture import write_tiny_model

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.datasets.transforms import ReferPad


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
