"""Flip with word swapping, tokenization, packing and full pipelines."""
import os

import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile, RandomFlip
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample
from pycocotools.coco import COCO

from dit_sam_mm.datasets import (LoadReferAnnotations,
                                 LoadReferImageFromFile, PackReferSegInputs,
                                 RefCOCODataset, ReferRandomFlip,
                                 TokenizeText, read_image_file,
                                 swap_left_right)


@pytest.mark.parametrize('sentence, flipped', [
    ('the man on the left', 'the man on the right'),
    ('right guy', 'left guy'),
    ('leftmost chair', 'rightmost chair'),
    ('Rightmost one', 'Leftmost one'),
    ('Left person', 'Right person'),
    ('LEFT CUP', 'RIGHT CUP'),
    ('left-most zebra, right-hand side', 'right-most zebra, left-hand side'),
    ('leftover pizza on the bright left plate',
     'leftover pizza on the bright right plate'),
    ('the man to the left of the right car.',
     'the man to the right of the left car.'),
    ('lefthand person, rightside', 'righthand person, leftside'),
    ('alright: copyright 2', 'alright: copyright 2'),
    ('  left\tright  ', '  right\tleft  '),
])
def test_swap_left_right(sentence, flipped):
    assert swap_left_right(sentence) == flipped
    assert swap_left_right(flipped) == sentence


def _sample(sentence='the dog on the left'):
    img = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    gt = np.zeros((4, 6), dtype=np.uint8)
    gt[1:3, 0:2] = 1
    return dict(img=img, gt_seg_map=gt, seg_fields=['gt_seg_map'],
                sentence=sentence, ref_id=1, img_shape=(4, 6))


def test_flip_moves_image_mask_and_words_together():
    flip = TRANSFORMS.build(dict(type='ReferRandomFlip', prob=1.0))
    assert isinstance(flip, RandomFlip)  # MMCV's flip does the pixels
    sample = _sample()
    img, gt = sample['img'].copy(), sample['gt_seg_map'].copy()
    out = flip(sample)
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    np.testing.assert_array_equal(out['gt_seg_map'], gt[:, ::-1])
    assert out['gt_seg_map'][1:3, 4:6].all()  # the object is now right
    assert out['sentence'] == 'the dog on the right'
    assert out['ori_sentence'] == 'the dog on the left'
    assert out['flip'] is True and out['flip_direction'] == 'horizontal'


def test_no_flip_changes_nothing():
    out = ReferRandomFlip(prob=0.0)(_sample())
    assert out['sentence'] == 'the dog on the left' and out['flip'] is False
    np.testing.assert_array_equal(out['img'], _sample()['img'])


def test_flip_probability_and_consistency():
    flip = ReferRandomFlip()  # prob 0.5
    np.random.seed(1)
    flips = 0
    for _ in range(400):
        out = flip(_sample())
        flipped_words = out['sentence'].endswith('right')
        assert flipped_words == out['flip']
        assert bool(out['gt_seg_map'][1, 5]) == out['flip']
        flips += out['flip']
    assert 150 < flips < 250


def test_flip_refuses_vertical_and_late_use():
    with pytest.raises(ValueError, match='horizontal'):
        ReferRandomFlip(direction='vertical')
    sample = _sample()
    sample['text_ids'] = np.zeros(20, dtype=np.int64)
    with pytest.raises(RuntimeError, match='before TokenizeText'):
        ReferRandomFlip(prob=1.0)(sample)


def _ids(vocab_file, words):
    vocab = open(vocab_file).read().split()
    return [vocab.index(w) for w in words]


def test_tokenizer_pads_truncates_and_masks(vocab_file):
    tokenize = TRANSFORMS.build(
        dict(type='TokenizeText', vocab_file=vocab_file, max_length=8))
    out = tokenize(dict(sentence='The Man on the LEFT'))
    cls, sep, pad = _ids(vocab_file, ['[CLS]', '[SEP]', '[PAD]'])
    words = _ids(vocab_file, ['the', 'man', 'on', 'the', 'left'])
    assert out['text_ids'].dtype == np.int64 and out['text_ids'].shape == (8,)
    assert out['text_ids'].tolist() == [cls] + words + [sep, pad]
    assert out['text_mask'].tolist() == [1] * 7 + [0]
    assert out['text_mask'].dtype == np.int64

    # word pieces and unknown words
    out = tokenize(dict(sentence='lowest zebra'))
    assert out['text_ids'].tolist()[:5] == [cls] + _ids(
        vocab_file, ['low', '##est', '[UNK]']) + [sep]

    # truncation keeps [CLS] + max_length - 2 pieces + [SEP]
    long = 'the man on the left ' * 4
    out = tokenize(dict(sentence=long))
    assert out['text_ids'].tolist() == [cls] + (words + words)[:6] + [sep]
    assert out['text_mask'].tolist() == [1] * 8


def test_tokenizer_counts_unknown_and_dropped_pieces(vocab_file):
    tokenize = TokenizeText(vocab_file=vocab_file, max_length=8)

    def counts(sentence):
        out = tokenize(dict(sentence=sentence))
        return (out['num_tokens'], out['num_unknown_tokens'],
                out['num_dropped_tokens'])

    assert counts('the man on the left') == (5, 0, 0)
    assert counts('lowest zebra') == (3, 1, 0)  # low ##est [UNK]
    assert counts('zebra giraffe okapi') == (3, 3, 0)
    # 6 of 20 pieces fit in [CLS] + 6 + [SEP]; the unknown ones are all
    # counted, read or not
    assert counts('the man on the left ' * 3 + 'zebra ' * 5) == (20, 5, 14)
    assert counts('the man on the left side') == (6, 0, 0)  # exactly full
    packed = PackReferSegInputs()(
        tokenize(dict(_sample(), sentence='lowest zebra')))
    meta = packed['data_samples'].metainfo
    assert (meta['num_tokens'], meta['num_unknown_tokens'],
            meta['num_dropped_tokens']) == (3, 1, 0)


def test_tokenizer_default_length_and_local_folder(vocab_file, tmp_path):
    from transformers import BertTokenizerFast
    BertTokenizerFast(vocab_file=vocab_file).save_pretrained(str(tmp_path))
    tokenize = TokenizeText(tokenizer=str(tmp_path))
    out = tokenize(dict(sentence='small box'))
    assert out['text_ids'].shape == (20, ) and out['text_mask'].sum() == 4
    with pytest.raises(ValueError, match='exactly one'):
        TokenizeText()


EDGE_SENTENCES = ['the man on the LEFT', 'Ünïcödé  Man', '[SEP] the [CLS] man', 'x' * 300,
                  'the ' * 40, 'LEFT?! man,,', '  spaced\tout\nline  ', 'çà et là 中文 🙂',
                  '[UNK] [PAD] [MASK]', 'the[SEP]man', 'lowest zebra']


@pytest.mark.parametrize('max_length', [3, 8, 20])
def test_tokenizer_equals_the_wrappers_truncation_and_padding(vocab_file, tmp_path,
                                                              max_length):
    """TokenizeText runs the Rust backend directly: the ids and mask are those of the Python
    wrapper's own truncation='longest_first' and padding='max_length', also for a
    tokenizer.json that sets its own truncation and padding (which the wrapper turns off)."""
    import json
    from transformers import BertTokenizerFast
    BertTokenizerFast(vocab_file=vocab_file).save_pretrained(str(tmp_path))
    settings = json.loads((tmp_path / 'tokenizer.json').read_text())
    settings['truncation'] = dict(direction='Right', max_length=2, strategy='LongestFirst',
                                  stride=0)
    settings['padding'] = dict(strategy=dict(Fixed=30), direction='Left', pad_to_multiple_of=None,
                               pad_id=0, pad_type_id=0, pad_token='[PAD]')
    (tmp_path / 'tokenizer.json').write_text(json.dumps(settings))
    for tokenize in (TokenizeText(vocab_file=vocab_file, max_length=max_length),
                     TokenizeText(tokenizer=str(tmp_path), max_length=max_length)):
        reference = BertTokenizerFast(vocab_file=vocab_file)
        for sentence in EDGE_SENTENCES:
            out = tokenize(dict(sentence=sentence))
            expected = reference(sentence, max_length=max_length, truncation='longest_first',
                                 padding='max_length')
            assert out['text_ids'].tolist() == expected['input_ids'], sentence
            assert out['text_mask'].tolist() == expected['attention_mask'], sentence
            pieces = reference(sentence, add_special_tokens=False)['input_ids']
            assert out['num_tokens'] == len(pieces)
            assert out['num_unknown_tokens'] == pieces.count(reference.unk_token_id)


def test_a_tokenizer_folder_without_vocabulary_is_named(tmp_path):
    (tmp_path / 'tokenizer_config.json').write_text('{"do_lower_case": true}')
    with pytest.raises(FileNotFoundError) as error:
        TokenizeText(tokenizer=str(tmp_path))
    assert str(error.value).startswith(
        f"tokenizer folder '{tmp_path}' holds neither vocab.txt nor tokenizer.json (it holds "
        "['tokenizer_config.json'])")


def test_tokenizer_refuses_empty_sentence(vocab_file):
    tokenize = TokenizeText(vocab_file=vocab_file)
    with pytest.raises(ValueError, match='ref_id=4 sent_id=40'):
        tokenize(dict(sentence=' \t', ref_id=4, sent_id=40))


def test_pack_sets_text_fields_and_meta(vocab_file):
    sample = TokenizeText(vocab_file=vocab_file, max_length=6)(
        dict(_sample(), ref_id=3, sent_id=31, split='val', img_path='x.jpg',
             ori_shape=(4, 6)))
    packed = PackReferSegInputs()(sample)
    data_sample = packed['data_samples']
    assert isinstance(data_sample, SegDataSample)
    assert packed['inputs'].dtype == torch.uint8
    assert packed['inputs'].shape == (3, 4, 6)
    assert data_sample.gt_sem_seg.data.shape == (1, 4, 6)
    assert set(data_sample.gt_sem_seg.data.unique().tolist()) == {0, 1}
    assert data_sample.text_ids.dtype == torch.int64
    assert data_sample.text_ids.shape == (6, )
    assert data_sample.text_mask.tolist() == [1, 1, 1, 1, 1, 1]
    assert 'text_ids' in data_sample.keys()  # a data field, moved by .to()
    meta = data_sample.metainfo
    assert (meta['sentence'], meta['ref_id'], meta['sent_id'],
            meta['split']) == ('the dog on the left', 3, 31, 'val')
    with pytest.raises(KeyError, match='TokenizeText'):
        PackReferSegInputs()(_sample())


def test_load_annotations_checks_image_size():
    sample = dict(segmentation=[[0, 0, 4, 0, 4, 4]], height=5, width=6,
                  ori_shape=(6, 5), ref_id=9, ann_id=90, img_path='a.jpg')
    with pytest.raises(ValueError, match='ann_id=90'):
        LoadReferAnnotations()(sample)


@pytest.mark.parametrize('color_type',
                         ['color', 'color_ignore_orientation', 'grayscale'])
def test_load_image_equals_mmcv_on_good_files(refer_root, color_type):
    path = str(refer_root / 'images' / 'fixture_000001.jpg')
    ours = TRANSFORMS.build(dict(type='LoadReferImageFromFile',
                                 color_type=color_type, to_float32=True))
    mmcv_loader = LoadImageFromFile(color_type=color_type, to_float32=True)
    expected = mmcv_loader(dict(img_path=path))
    loaded = ours(dict(img_path=path))
    np.testing.assert_array_equal(loaded['img'], expected['img'])
    assert loaded['img'].dtype == np.float32
    assert loaded['img_shape'] == loaded['ori_shape'] == (30, 40)


def test_read_image_file_names_the_file_in_every_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found: .*missing.jpg'):
        read_image_file(tmp_path / 'missing.jpg')
    folder = tmp_path / 'folder.jpg'
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match='folder.jpg is a folder'):
        read_image_file(folder)
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty.jpg is empty \(0 bytes\)'):
        read_image_file(empty)
    garbage = tmp_path / 'garbage.png'
    garbage.write_bytes(b'\x89PNG\r\n not really')
    for backend in ('cv2', 'pillow'):
        with pytest.raises(ValueError,
                           match='cannot decode image file .*garbage.png'):
            read_image_file(garbage, imdecode_backend=backend)
    loop = tmp_path / 'loop.jpg'  # unreadable even for root
    os.symlink(loop, loop)
    with pytest.raises(OSError, match='loop.jpg'):
        read_image_file(loop)


def test_load_image_ignore_empty_skips_unreadable_files(tmp_path):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    for path in (empty, tmp_path / 'missing.jpg'):
        assert LoadReferImageFromFile(ignore_empty=True)(
            dict(img_path=str(path))) is None
        with pytest.raises((ValueError, FileNotFoundError),
                           match=path.name):
            LoadReferImageFromFile()(dict(img_path=str(path)))


def _pipelines(vocab_file):
    train = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadReferAnnotations'),
        dict(type='RandomChoiceResize',
             scales=[(s, s) for s in range(320, 513, 32)],
             resize_type='Resize', keep_ratio=True),
        dict(type='ReferRandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='TokenizeText', vocab_file=vocab_file),
        dict(type='PackReferSegInputs'),
    ]
    test = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(512, 512), keep_ratio=True),
        dict(type='LoadReferAnnotations'),  # after Resize: gt at ori size
        dict(type='TokenizeText', vocab_file=vocab_file),
        dict(type='PackReferSegInputs'),
    ]
    return train, test


def test_full_train_and_test_pipelines(refer_root, vocab_file):
    train_pipeline, test_pipeline = _pipelines(vocab_file)
    common = dict(data_root=str(refer_root),
                  data_prefix=dict(img_path='images/'))
    train = RefCOCODataset(split='train', sample_mode='ref',
                           pipeline=train_pipeline, **common)
    np.random.seed(0)
    for i in range(len(train)):
        out = train[i]
        sample = out['data_samples']
        h, w = out['inputs'].shape[1:]
        assert max(h, w) in range(320, 513, 32)
        assert sample.gt_sem_seg.data.shape == (1, h, w)
        assert sample.text_ids.shape == (20, )
        assert sample.metainfo['split'] == 'train'
        assert sample.gt_sem_seg.data.sum() > 0

    coco = COCO(str(refer_root / 'instances.json'))
    test = RefCOCODataset(split=['val', 'testA', 'testB'], test_mode=True,
                          pipeline=test_pipeline, **common)
    assert len(test) == 5
    for i in range(len(test)):
        out = test[i]
        sample = out['data_samples']
        info = test.get_data_info(i)
        assert max(out['inputs'].shape[1:]) == 512
        assert sample.ori_shape == (info['height'], info['width'])
        expected = coco.annToMask(coco.anns[info['ann_id']])
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(),
                                      expected)
        assert sample.sentence == info['sentence']
        assert sample.sent_id == info['sent_id']


def test_random_gaussian_blur_matches_opencv():
    import cv2
    img = np.random.default_rng(0).integers(0, 255, (12, 16, 3),
                                            dtype=np.uint8)
    gt = np.zeros((12, 16), dtype=np.uint8)
    blur = TRANSFORMS.build(
        dict(type='RandomGaussianBlur', sigma_range=(0.5, 1.5), prob=1.0))
    np.random.seed(3)
    np.random.rand()
    sigma = np.random.uniform(0.5, 1.5)  # what the transform will draw
    np.random.seed(3)
    out = blur(dict(img=img[:, ::-1], gt_seg_map=gt))  # a flipped view
    expected = cv2.GaussianBlur(np.ascontiguousarray(img[:, ::-1]), (0, 0),
                                sigma, borderType=cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(out['img'], expected)
    assert out['gt_seg_map'] is gt and out['img'].dtype == np.uint8
    untouched = TRANSFORMS.build(dict(type='RandomGaussianBlur', prob=0.0))(
        dict(img=img))
    assert untouched['img'] is img
    with pytest.raises(ValueError, match='sigma_range'):
        TRANSFORMS.build(dict(type='RandomGaussianBlur', sigma_range=(0, 1)))
