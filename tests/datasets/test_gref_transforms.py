"""Empty (no-target) and multi-part (multi-target) masks through every transform.

The pipelines are those of the RefCOCO configs (training: load, resize, flip,
blur, tokenize, pack, then the preprocessor's batch padding; test: resize,
ReferPad, load the mask at the original size, tokenize, pack) on the
gRefCOCO fixture (see conftest.py).
"""
import cv2
import mmcv
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from dit_sam_mm.datasets import (GRefCOCODataset, LoadReferAnnotations,
                                 RefCOCODataset)
from dit_sam_mm.models import ReferSegDataPreProcessor

LOAD = dict(type='LoadReferImageFromFile',
            color_type='color_ignore_orientation')


def train_pipeline(vocab_file):
    return [
        LOAD,
        dict(type='LoadReferAnnotations'),
        dict(type='Resize', scale=(80, 80), keep_ratio=True),
        dict(type='ReferRandomFlip', prob=1.0),
        dict(type='RandomGaussianBlur', prob=1.0),
        dict(type='TokenizeText', vocab_file=vocab_file, max_length=8),
        dict(type='PackReferSegInputs'),
    ]


def eval_pipeline(vocab_file):
    return [
        LOAD,
        dict(type='Resize', scale=(64, 64), keep_ratio=True),
        dict(type='ReferPad', size=(64, 64)),
        dict(type='LoadReferAnnotations'),
        dict(type='TokenizeText', vocab_file=vocab_file, max_length=8),
        dict(type='PackReferSegInputs'),
    ]


def union(root, ann_ids, shape):
    coco = COCO(str(root / 'instances.json'))
    mask = np.zeros(shape, np.uint8)
    for ann_id in ann_ids:
        mask |= coco.annToMask(coco.anns[ann_id])
    return mask


def parts(mask):
    """Number of 8-connected foreground parts of a 0/1 mask."""
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def dataset(root, split, pipeline):
    return GRefCOCODataset(data_root=str(root), split=split,
                           data_prefix=dict(img_path='images/'),
                           pipeline=pipeline, test_mode=True)


def test_training_pipeline_flips_and_resizes_the_union(gref_root, vocab_file):
    data = dataset(gref_root, 'train', train_pipeline(vocab_file))
    multi, no_target = data[0], data[2]  # ref 1 (ann 101 + 102), ref 2
    expected = mmcv.imresize(union(gref_root, [101, 102], (30, 40)),
                             (80, 60), interpolation='nearest')[:, ::-1]
    gt = multi['data_samples'].gt_sem_seg.data
    assert gt.shape == (1, 60, 80) == (1, ) + multi['inputs'].shape[1:]
    np.testing.assert_array_equal(gt[0].numpy(), expected)
    assert parts(expected) == 3  # ann 101 has two polygons, ann 102 one
    meta = multi['data_samples'].metainfo
    assert meta['no_target'] is False and meta['flip'] is True
    assert meta['sentence'] == 'both things on the right'

    empty = no_target['data_samples']
    assert empty.gt_sem_seg.data.shape == (1, 60, 80)
    assert empty.gt_sem_seg.data.dtype == multi[
        'data_samples'].gt_sem_seg.data.dtype
    assert not empty.gt_sem_seg.data.any()
    assert empty.metainfo['no_target'] is True and empty.metainfo['flip']


def test_batch_padding_keeps_empty_and_multi_part_masks(gref_root,
                                                        vocab_file):
    data = dataset(gref_root, 'train', train_pipeline(vocab_file))
    batch = [data[0], data[2]]
    before = [item['data_samples'].gt_sem_seg.data.clone() for item in batch]
    preprocessor = ReferSegDataPreProcessor(
        mean=[0, 0, 0], std=[1, 1, 1], pad_val=0, seg_pad_val=255,
        size=(96, 96))
    out = preprocessor(dict(inputs=[b['inputs'] for b in batch],
                            data_samples=[b['data_samples'] for b in batch]),
                       True)
    assert out['inputs'].shape == (2, 3, 96, 96)
    for sample, gt in zip(out['data_samples'], before):
        padded = sample.gt_sem_seg.data
        assert padded.shape == (1, 96, 96)
        torch.testing.assert_close(padded[:, :60, :80], gt)
        assert (padded[:, 60:] == 255).all() and (padded[:, :, 80:] == 255
                                                  ).all()
    assert not out['data_samples'][1].gt_sem_seg.data[:, :60, :80].any()


@pytest.mark.parametrize('split, index, ann_ids, no_target', [
    ('testB', 0, [], True),  # ref 5, image 3 (32 x 32)
    ('testB', 2, [301, 302], False),  # ref 7, two objects
    ('val', 0, [202], False),  # ref 3 without its crowd target
])
def test_test_pipeline_keeps_the_mask_at_the_original_size(
        gref_root, vocab_file, split, index, ann_ids, no_target):
    data = dataset(gref_root, split, eval_pipeline(vocab_file))
    packed = data[index]
    sample = packed['data_samples']
    height, width = sample.metainfo['ori_shape']
    assert packed['inputs'].shape == (3, 64, 64)  # ReferPad
    expected = union(gref_root, ann_ids, (height, width))
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(),
                                  expected)
    assert sample.metainfo['no_target'] is no_target
    assert sample.metainfo['img_padding_size'] is not None
    if len(ann_ids) == 2:
        assert parts(expected) == 2


def test_refcoco_samples_pack_no_no_target(refer_root, vocab_file):
    data = RefCOCODataset(data_root=str(refer_root), split='val',
                          data_prefix=dict(img_path='images/'),
                          pipeline=eval_pipeline(vocab_file), test_mode=True)
    assert 'no_target' not in data[0]['data_samples'].metainfo


def test_a_bad_target_segmentation_names_the_ref_and_its_targets():
    sample = dict(ann_ids=[5, 6], segmentations=[[[0, 0, 4, 0, 4, 4]], 'x'],
                  height=5, width=6, ref_id=9, img_path='a.jpg')
    with pytest.raises(ValueError, match=r"Bad segmentation for ref_id=9 "
                       r"ann_ids=\[5, 6\] \(image 'a.jpg'\)"):
        LoadReferAnnotations()(sample)
    del sample['segmentations']
    with pytest.raises(KeyError, match=r"'segmentations' .*ref_id=9"):
        LoadReferAnnotations()(sample)
