"""Dataloader -> SegDataPreProcessor -> Evaluator(ReferSegMetric) on SynthRef."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.models import SegDataPreProcessor

from dit_sam_mm.datasets.synthref import make_synthref


@pytest.fixture(scope='module')
def val_loader(tmp_path_factory):
    init_default_scope('mmseg')
    root = tmp_path_factory.mktemp('synthref_eval')
    make_synthref(str(root), num_images=18, seed=2)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(128, 128), keep_ratio=True),
        dict(type='LoadReferAnnotations'),
        dict(type='TokenizeText', vocab_file=str(root / 'vocab.txt')),
        dict(type='PackReferSegInputs'),
    ]
    return Runner.build_dataloader(dict(
        batch_size=4, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='RefCOCODataset', data_root=str(root),
                     split=['val', 'testA', 'testB'], test_mode=True,
                     data_prefix=dict(img_path='images/'),
                     pipeline=pipeline)))


def _run(loader, predict):
    preprocessor = SegDataPreProcessor(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, size=(128, 128), pad_val=0, seg_pad_val=255)
    evaluator = Evaluator(dict(type='ReferSegMetric'))
    evaluator.dataset_meta = loader.dataset.metainfo
    for batch in loader:
        data = preprocessor(batch, training=False)
        assert data['inputs'].shape[1:] == (3, 128, 128)
        for sample in data['data_samples']:
            assert sample.text_ids.shape == (20, )
            assert sample.text_mask.dtype == torch.int64
            gt = sample.gt_sem_seg.data
            assert gt.shape[1:] == sample.ori_shape  # original resolution
            sample.pred_sem_seg = PixelData(data=predict(gt))
        evaluator.process(data_samples=data['data_samples'], data_batch=batch)
    return evaluator.evaluate(len(loader.dataset))


def test_perfect_and_empty_predictions(val_loader):
    perfect = _run(val_loader, lambda gt: gt.clone())
    assert perfect['oIoU'] == 100.0 and perfect['mIoU'] == 100.0
    assert perfect['testB/Pr@0.9'] == 100.0
    empty = _run(val_loader, torch.zeros_like)
    assert empty['oIoU'] == 0.0 and empty['Pr@0.5'] == 0.0
    assert {'val/oIoU', 'testA/oIoU', 'testB/oIoU'} <= set(empty)
