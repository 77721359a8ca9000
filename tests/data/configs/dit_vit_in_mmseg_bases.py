# Mixing test 2: the DITSAMViT backbone inside a model built from MMSegmentation's own base configs
# (FCN model, runtime and 20k schedule from the installed mmseg), trained on SynthRef. A stock
# EncoderDecoder passes no text, so the backbone runs as a plain SAM encoder (text_mode='none').
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py', '../../../configs/_base_/datasets/synthref.py'
]
custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(
        _delete_=True,
        type='DITSAMViT',
        arch=dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128,
                  global_attn_indexes=[1]),
        img_size=64,
        patch_size=8,
        window_size=4,
        out_channels=64,
        text_mode='none'),
    decode_head=dict(in_channels=64, in_index=0, channels=32, num_convs=1, num_classes=2,
                     out_channels=1, threshold=0.35, norm_cfg=norm_cfg,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True)),
    auxiliary_head=None)
train_cfg = dict(max_iters=1, val_interval=1)
