# Mixing test 1: the plugin's RefCOCODataset, REFER pipeline and ReferSegMetric with a stock MMSeg
# segmentor (EncoderDecoder + a small ResNet + FCNHead) that ignores the text entirely.
_base_ = [
    '../../../configs/_base_/datasets/synthref.py', '../../../configs/_base_/default_runtime.py'
]
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(64, 64)),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=16,
                  num_stages=4, out_indices=(3, ), norm_cfg=dict(type='BN')),
    decode_head=dict(
        type='FCNHead', in_channels=128, in_index=0, channels=32, num_convs=1,
        concat_input=False, num_classes=2, out_channels=1, threshold=0.35,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
