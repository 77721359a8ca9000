"""ReferSegInferencer: same result as evaluation, original-size masks, batching, errors."""
import copy

import mmcv
import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS
from refer_model_fixture import write_no_target_checkpoint, write_tiny_model

from dit_sam_mm.apis import (ReferSegInferencer, ReferSegResult, TokenCounts,
                             inference_pipeline_cfg)
from dit_sam_mm.checkpoint import CheckpointKeyMismatchError
from dit_sam_mm.datasets.image_limits import ImageTooLargeError

#: What every refused image array's message says is accepted.
ACCEPTED = r'uint8 \(0-255\) or float \(values in \[0, 1\]\)'
#: The tiny config with the head's no-target branch.
NO_TARGET = {'model.decode_head.no_target': True}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_inferencer'))


@pytest.fixture(scope='module')
def inferencer(tiny):
    return ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu',
                              batch_size=2)


@pytest.fixture(scope='module')
def image_path(tiny):
    return str(sorted((tiny.data_root / 'images').glob('*.jpg'))[0])


@pytest.fixture(scope='module')
def partial_checkpoint(tiny, tmp_path_factory):
    """The tiny checkpoint without ``decode_head.text_proj.weight``."""
    state = torch.load(tiny.checkpoint, weights_only=True)['state_dict']
    state.pop('decode_head.text_proj.weight')
    path = tmp_path_factory.mktemp('partial') / 'partial.pth'
    torch.save(dict(state_dict=state), path)
    return path


def test_pipeline_is_the_test_pipeline_without_annotations(inferencer):
    types = [t['type'] for t in inference_pipeline_cfg(inferencer.cfg)]
    assert types == ['LoadImageFromNDArray', 'Resize', 'ReferPad', 'TokenizeText', 'PackReferSegInputs']


def test_prediction_equals_the_evaluation_of_a_dataset_sample(tiny, inferencer):
    cfg = inferencer.cfg
    dataset = DATASETS.build(copy.deepcopy(cfg.test_dataloader.dataset))
    sample = dataset[0]
    meta = sample['data_samples'].metainfo
    with torch.no_grad():
        expected = inferencer.model.test_step(
            dict(inputs=[sample['inputs']], data_samples=[sample['data_samples']]))[0]
    result = inferencer(meta['img_path'], meta['sentence'], return_probs=True)
    np.testing.assert_array_equal(result.mask, expected.pred_sem_seg.data[0].numpy() == 1)
    np.testing.assert_allclose(result.probs, expected.seg_logits.data[0].numpy(), atol=1e-6)


def test_the_three_steps_give_what_a_call_gives(inferencer):
    """preprocess, forward and postprocess (tools/infer.py's loop) predict what __call__ does."""
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (50, 90, 3), dtype=np.uint8),
              rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)]
    sentences = ['the red circle', 'the blue square']
    expected = inferencer(images, sentences, return_probs=True, draw=True)
    outputs = inferencer.forward([inferencer.preprocess(image, sentence)
                                  for image, sentence in zip(images, sentences)])
    for image, output, want in zip(images, outputs, expected):
        got = inferencer.postprocess(output, image, return_probs=True, draw=True)
        np.testing.assert_array_equal(got.mask, want.mask)
        np.testing.assert_array_equal(got.probs, want.probs)
        np.testing.assert_array_equal(got.visualization, want.visualization)
        assert (got.score, got.tokens, got.no_target) == (want.score, want.tokens,
                                                          want.no_target)
    with pytest.raises(ValueError, match='draw=True needs the image'):
        inferencer.postprocess(outputs[0], draw=True)


def test_masks_and_probabilities_at_the_original_size(inferencer):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (50, 90, 3), dtype=np.uint8)  # resized to 36 x 64, padded
    result = inferencer(image, 'the red circle', return_probs=True, draw=True)
    assert result.mask.shape == result.probs.shape == (50, 90)
    assert result.mask.dtype == bool and result.probs.dtype == np.float32
    assert 0.0 <= result.probs.min() and result.probs.max() <= 1.0
    threshold = inferencer.model.decode_head.threshold
    np.testing.assert_array_equal(result.mask, result.probs > threshold)
    assert result.area == result.mask.sum()
    expected_score = result.probs[result.mask].mean() if result.mask.any() else 0.0
    assert result.score == pytest.approx(float(expected_score))
    assert result.visualization.ndim == 3 and result.visualization.shape[2] == 3
    assert inferencer(image, 'the red circle').probs is None


def test_path_array_and_grey_inputs(inferencer, image_path):
    by_path = inferencer(image_path, 'the blue square', return_probs=True)
    by_array = inferencer(mmcv.imread(image_path), 'the blue square', return_probs=True)
    np.testing.assert_array_equal(by_path.probs, by_array.probs)
    grey = mmcv.imread(image_path, flag='grayscale')
    assert inferencer(grey, 'the blue square').mask.shape == grey.shape


def test_lists_are_batched_and_match_single_calls(inferencer, image_path, tmp_path):
    # batch_size=2: two forward passes; the second image has another size (its own group)
    wide = np.ascontiguousarray(np.tile(mmcv.imread(image_path), (1, 2, 1)))
    images = [image_path, wide, image_path]
    sentences = ['the red circle', 'the leftmost shape', 'the biggest square']
    results = inferencer(images, sentences, return_probs=True, out_dir=str(tmp_path))
    assert isinstance(results, list) and len(results) == 3
    assert results[1].mask.shape == wide.shape[:2]
    for image, sentence, result in zip(images, sentences, results):
        single = inferencer(image, sentence, return_probs=True)
        np.testing.assert_allclose(result.probs, single.probs, atol=1e-5)
    # the sentence matters
    assert not np.allclose(results[0].probs, results[2].probs)
    stem = image_path.rsplit('/', 1)[-1][:-4]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f'{stem}_0.png', 'array_1.png', f'{stem}_2.png'])


def test_bad_input_errors(inferencer, image_path, tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        inferencer(str(tmp_path / 'missing.jpg'), 'the red circle')
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='broken.jpg'):
        inferencer(str(broken), 'the red circle')
    for sentence in ('', '   '):
        with pytest.raises(ValueError, match='empty'):
            inferencer(image_path, sentence)
    with pytest.raises(ValueError, match='2 images but 1 sentences'):
        inferencer([image_path, image_path], ['the red circle'])
    with pytest.raises(ValueError, match='two lists'):
        inferencer(image_path, ['the red circle', 'the blue square'])
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        inferencer(np.zeros((8, 8, 4), np.uint8), 'the red circle')


def test_checkpoint_errors(tiny, tmp_path, partial_checkpoint):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        ReferSegInferencer(str(tiny.config), weights=str(tmp_path / 'nothing.pth'), device='cpu')
    with pytest.raises(CheckpointKeyMismatchError, match='decode_head.text_proj.weight'):
        ReferSegInferencer(str(tiny.config), weights=str(partial_checkpoint), device='cpu')


def test_allow_partial_loads_the_keys_there_are(tiny, partial_checkpoint, image_path):
    partial = ReferSegInferencer(str(tiny.config), weights=str(partial_checkpoint), device='cpu',
                                 allow_partial=True)
    state = torch.load(partial_checkpoint, weights_only=True)['state_dict']
    loaded = partial.model.state_dict()
    assert set(loaded) - set(state) == {'decode_head.text_proj.weight'}
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert partial(image_path, 'the red circle').mask.shape == (64, 64)


def test_float_and_other_layouts_give_the_8_bit_prediction(inferencer, image_path):
    bgr = mmcv.imread(image_path)
    expected = inferencer(bgr, 'the red circle', return_probs=True).probs
    for dtype in (np.float16, np.float32, np.float64):
        floats = (bgr / 255.0).astype(dtype)
        np.testing.assert_array_equal(
            inferencer(floats, 'the red circle', return_probs=True).probs, expected)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    np.testing.assert_array_equal(  # a flipped view (negative strides) works
        inferencer(rgb[:, :, ::-1], 'the red circle', return_probs=True).probs, expected)
    grey = mmcv.imread(image_path, flag='grayscale')
    np.testing.assert_array_equal(
        inferencer(grey[:, :, None], 'the red circle', return_probs=True).probs,
        inferencer(grey, 'the red circle', return_probs=True).probs)


@pytest.mark.parametrize('array, message', [
    (np.zeros((0, 0), np.uint8), r'the image array is empty \(shape \(0, 0\)\)'),
    (np.zeros((0, 7, 3), np.uint8), r'empty \(shape \(0, 7, 3\)\)'),
    (np.zeros(8, np.uint8), r'got shape \(8,\)'),
    (np.zeros((2, 8, 8, 3), np.uint8), r'got shape \(2, 8, 8, 3\)'),
    (np.full((8, 8, 3), 200.0, np.float32),
     r'values in \[200, 200\], not in \[0, 1\] \(for 0-255 values convert it with '
     r'\.astype\(np\.uint8\)\)'),
    (np.full((8, 8), -0.5), r'values in \[-0.5, -0.5\]'),
    (np.array([[0.5, np.nan]] * 2, np.float32), 'NaN or infinite'),
    (np.array([[0.5, np.inf]] * 2), 'NaN or infinite'),
    (np.ones((8, 8, 3), bool), 'got dtype bool'),
    (np.ones((8, 8, 3), np.int64), 'got dtype int64'),
    (np.ones((8, 8, 3), np.uint16), 'got dtype uint16'),
])
def test_refused_arrays_name_the_argument_and_what_is_accepted(inferencer, image_path, array,
                                                               message):
    with pytest.raises(ValueError, match=f'^images: .*{message}.*; an image array must be a '
                       f'BGR array .*{ACCEPTED}'):
        inferencer(array, 'the red circle')
    with pytest.raises(ValueError, match=r'^images\[1\]: '):
        inferencer([image_path, array], ['the red circle', 'the blue square'])


def test_a_folder_or_an_empty_file_is_named(inferencer, tmp_path):
    with pytest.raises(IsADirectoryError, match=f'{tmp_path} is a folder, not an image file'):
        inferencer(str(tmp_path), 'the red circle')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty.jpg is empty \(0 bytes\)'):
        inferencer(empty, 'the red circle')


def test_results_count_unknown_and_dropped_word_pieces(inferencer, image_path):
    known, unknown, mostly, long = inferencer(
        [image_path] * 4,
        ['the red circle', 'zebra giraffe', 'the zebra giraffe', 'the red circle ' * 10])
    assert known.tokens == TokenCounts(num_tokens=3, num_unknown=0, num_dropped=0)
    assert known.tokens.num_kept == 3 and not known.tokens.truncated
    assert known.tokens.warnings() == []
    assert unknown.tokens == (2, 2, 0)
    assert unknown.tokens.warnings() == [
        "none of the 2 word pieces of the sentence is in the model's vocabulary (all read as "
        '[UNK]): the mask does not follow the sentence; use words like those the model was '
        'trained on']
    assert mostly.tokens == (3, 2, 0)
    assert mostly.tokens.warnings()[0].startswith('2 of the 3 word pieces of the sentence are '
                                                  "not in the model's vocabulary")
    # MAX_TEXT = 20: [CLS] + 18 pieces + [SEP]
    assert long.tokens == (30, 0, 12) and long.tokens.truncated and long.tokens.num_kept == 18
    assert long.tokens.warnings() == [
        'the sentence has 30 word pieces but the model reads only the first 18: the last 12 were '
        'dropped; shorten it']


def test_token_warnings_start_above_half_unknown():
    assert TokenCounts(4, 2, 0).warnings() == []
    assert len(TokenCounts(4, 3, 0).warnings()) == 1
    assert len(TokenCounts(40, 40, 21).warnings()) == 2


def test_summary_says_the_answer_area_score_and_word_pieces():
    mask = np.zeros((4, 5), bool)
    mask[:2, :3] = True
    plain = ReferSegResult(mask, 0.8125, tokens=TokenCounts(5, 1, 2))
    assert plain.summary() == [
        'mask area: 6 px (30.0% of the 5x4 image)',
        'score: 0.812 (mean probability inside the mask)',
        "word pieces: 5, 1 unknown (read as [UNK]), 3 read, 2 dropped past the tokenizer's length"]
    kept = ReferSegResult(mask, 0.8125, no_target_prob=0.25)
    assert kept.summary()[0] == 'no-target probability: 0.250' and len(kept.summary()) == 3
    empty = ReferSegResult(np.zeros_like(mask), 0.0, no_target_prob=0.75, no_target=True)
    assert empty.summary() == ['no matching object (no-target probability 0.750)',
                               'mask area: 0 px (0.0% of the 5x4 image)',
                               'score: 0.000 (mean probability inside the mask)']


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_gpu_matches_cpu(tiny, inferencer, image_path):
    cpu_result = inferencer(image_path, 'the red circle', return_probs=True)
    fp32 = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cuda',
                              fast=False)
    np.testing.assert_allclose(fp32(image_path, 'the red circle', return_probs=True).probs,
                               cpu_result.probs, atol=1e-3)
    # The default GPU path: bfloat16, compiled, a CUDA graph per size, replayed on later calls.
    fast = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cuda')
    assert fast.model.inference_accelerator is not None
    first, again = (fast(image_path, 'the red circle', return_probs=True) for _ in range(2))
    np.testing.assert_allclose(first.probs, cpu_result.probs, atol=3e-2)
    np.testing.assert_array_equal(again.probs, first.probs)


@pytest.fixture(scope='module')
def no_target_checkpoint(tiny, tmp_path_factory):
    return write_no_target_checkpoint(tiny, tmp_path_factory.mktemp('no_target') / 'nt.pth')


def test_a_model_without_the_branch_reports_no_probability(inferencer, image_path):
    result = inferencer(image_path, 'the red circle')
    assert result.no_target_prob is None and result.no_target is False


@pytest.mark.parametrize('threshold, no_target', [(0.5, True), (0.95, False)])
def test_no_target_probability_and_empty_mask(tiny, inferencer, no_target_checkpoint, image_path,
                                              threshold, no_target):
    options = {**NO_TARGET, 'model.decode_head.no_target_threshold': threshold}
    model = ReferSegInferencer(str(tiny.config), weights=str(no_target_checkpoint), device='cpu',
                               cfg_options=options)
    plain = inferencer([image_path] * 2, ['the red circle', 'the blue square'],
                       return_probs=True)
    results = model([image_path] * 2, ['the red circle', 'the blue square'], return_probs=True,
                    draw=True)
    assert any(r.area > 0 for r in plain)  # the plain model finds something to empty
    for result, reference in zip(results, plain):
        assert result.no_target_prob == pytest.approx(0.9, abs=1e-5)
        assert result.no_target is no_target
        # the mask branch is the plain model's
        np.testing.assert_allclose(result.probs, reference.probs, atol=1e-6)
        if no_target:
            assert result.mask.shape == reference.mask.shape and not result.mask.any()
            assert result.area == 0 and result.score == 0.0
        else:
            np.testing.assert_array_equal(result.mask, reference.mask)
            assert result.score == pytest.approx(reference.score)
        assert result.visualization.ndim == 3


def test_image_bytes_give_the_files_prediction_and_a_huge_header_is_refused(
        tiny, inferencer, image_path, tmp_path):
    with open(image_path, 'rb') as f:
        data = f.read()
    from_bytes = inferencer(data, 'the red circle')
    np.testing.assert_array_equal(from_bytes.mask, inferencer(image_path, 'the red circle').mask)
    strict = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu',
                                max_pixels=64 * 64 - 1)
    with pytest.raises(ImageTooLargeError, match=r'images \(bytes\) is 64 x 64 = 4,096 pixels, '
                       'more than the limit of 4,095'):
        strict(data, 'the red circle')
    with pytest.raises(ImageTooLargeError, match=f'{image_path} is 64 x 64'):
        strict([image_path], ['the red circle'])
    with pytest.raises(ValueError, match='max_pixels must be a positive number of pixels'):
        ReferSegInferencer(str(tiny.config), device='cpu', max_pixels=0)
