"""ReferSegLocalVisualizer: binary overlays side by side with the sentence; tools/test.py --show-dir."""
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, VISUALIZERS
from mmseg.structures import SegDataSample
from refer_model_fixture import REPO_ROOT, write_tiny_model

from dit_sam_mm.visualization import ReferSegLocalVisualizer, mask_iou

H, W = 48, 64


def sample(sentence: str = 'the dog on the left', **meta) -> SegDataSample:
    gt = torch.zeros(1, H, W, dtype=torch.uint8)
    gt[:, 10:30, 5:25] = 1
    gt[:, :2] = 255  # ignored rows
    pred = torch.zeros(1, H, W)  # one float 0/1 channel, as DITSAM.predict gives it
    pred[:, 10:30, 15:35] = 1.0
    pred[:, :2] = 1.0  # predicted inside the ignored rows: not counted
    data_sample = SegDataSample(metainfo=dict(sentence=sentence, ref_id=7, sent_id=70, **meta))
    data_sample.gt_sem_seg = PixelData(data=gt)
    data_sample.pred_sem_seg = PixelData(data=pred)
    return data_sample


def test_draws_ground_truth_and_prediction_side_by_side_with_the_caption():
    visualizer = VISUALIZERS.build(dict(type='ReferSegLocalVisualizer', min_size=128,
                                        name='test_side_by_side'))
    assert isinstance(visualizer, ReferSegLocalVisualizer)
    image = np.full((H, W, 3), 100, dtype=np.uint8)
    data_sample = sample()
    assert visualizer.caption(data_sample, mask_iou(
        np.zeros((2, 2), bool), np.zeros((2, 2), bool))) == ['"the dog on the left"', 'IoU 1.000']
    drawn = visualizer.draw_sample(image, data_sample)
    k = 2  # enlarged so the longer side (64) is >= 128
    top = next(r for r in range(drawn.shape[0]) if drawn[r, 0, 0] == 100)  # under the titles
    assert drawn.shape == (drawn.shape[0], 2 * W * k, 3) and drawn.shape[0] > top + H * k
    gt_panel, pred_panel = drawn[top:top + H * k, :W * k], drawn[top:top + H * k, W * k:]
    gt_mask = np.kron(data_sample.gt_sem_seg.data[0].numpy() == 1, np.ones((k, k), bool))
    pred_mask = np.kron(data_sample.pred_sem_seg.data[0].numpy() == 1, np.ones((k, k), bool))
    # only the object is tinted: green ground truth, red prediction, the rest unchanged
    assert (gt_panel[~gt_mask] == 100).all() and (pred_panel[~pred_mask] == 100).all()
    gt_px = gt_panel[20 * k, 10 * k]
    pred_px = pred_panel[20 * k, 30 * k]
    assert gt_px[1] > gt_px[0] and pred_px[0] > pred_px[1]
    caption = drawn[top + H * k:]
    assert (caption > 200).any()  # white text on the dark bar


def test_iou_ignores_the_ignore_index_and_flip_is_reported():
    visualizer = ReferSegLocalVisualizer(name='test_caption', show_flip=True)
    data_sample = sample('the dog on the right', flip=True, ori_sentence='the dog on the left')
    gt_values = data_sample.gt_sem_seg.data[0].numpy()
    valid = gt_values != 255
    iou = mask_iou(data_sample.pred_sem_seg.data[0].numpy() == 1, gt_values == 1, valid)
    assert iou == pytest.approx(200 / 600)  # 20x10 overlap, 20x30 union
    assert visualizer.caption(data_sample, iou) == [
        '"the dog on the right"', 'flipped: yes, was "the dog on the left"', 'IoU 0.333']
    assert visualizer.caption(sample(flip=False))[1] == 'flipped: no'


def test_one_picture_per_sample(tmp_path):
    visualizer = ReferSegLocalVisualizer(
        name='test_names', vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path))
    image = np.zeros((H, W, 3), dtype=np.uint8)
    for sent_id in (70, 71):  # two sentences about the same image file
        data_sample = sample()
        data_sample.set_metainfo(dict(sent_id=sent_id))
        visualizer.add_datasample('test_COCO_1.jpg', image, data_sample, step=0)
    names = sorted(p.name for p in tmp_path.rglob('*.png'))
    assert names == ['test_COCO_1_ref7_sent70_0.png', 'test_COCO_1_ref7_sent71_0.png']
    out_file = tmp_path / 'one.png'
    visualizer.add_datasample('x', image, sample(), out_file=str(out_file))
    assert mmcv.imread(str(out_file)).shape[1] == 2 * 384


def test_tools_test_show_dir_writes_every_sample(tmp_path):
    tiny = write_tiny_model(tmp_path)
    show_dir = tmp_path / 'show'
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'test.py'), str(tiny.config),
         str(tiny.checkpoint), '--work-dir', str(tmp_path / 'work'), '--show-dir', str(show_dir),
         '--cfg-options', 'default_hooks.visualization.interval=1'],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = Config.fromfile(str(tiny.config))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    pictures = sorted(show_dir.rglob('*.png'))
    assert len(pictures) == len(dataset)  # every sentence of every ref of val + testA
    first = mmcv.imread(str(pictures[0]))
    assert first.shape[1] == 2 * 384  # ground truth | prediction, enlarged 64 -> 384
