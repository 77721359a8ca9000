# refcoco_unc_on_synthref640.py with MMSeg's PhotoMetricDistortion (brightness, contrast, saturation
# and hue, each at random) in place of mmpretrain's ColorJitter, for comparison:
#   python tools/analysis_tools/benchmark.py \
#       configs/benchmark/refcoco_unc_on_synthref640_photometric.py \
#       --mode data --num-workers 0 --iters 150
_base_ = ['./refcoco_unc_on_synthref640.py']

data_root = 'data/benchmark/synthref640'
vocab_file = data_root + '/vocab.txt'
color_jitter = dict(type='PhotoMetricDistortion')
blur = dict(type='RandomGaussianBlur', sigma_range=(0.1, 2.0), prob=0.5)
train_pipeline = [
    dict(type='LoadReferImageFromFile', color_type='color_ignore_orientation'),
    dict(type='LoadReferAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[(320, 320), (352, 352), (384, 384), (416, 416), (448, 448), (480, 480),
                 (512, 512)],
         resize_type='Resize', keep_ratio=True),
    dict(type='ReferRandomFlip', prob=0.5),
    color_jitter,
    blur,
    dict(type='TokenizeText', vocab_file=vocab_file, max_length=20),
    dict(type='PackReferSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root=data_root, ann_file='instances.json', split_file='refs(unc).p',
                 data_prefix=dict(img_path='images/'), pipeline=train_pipeline))
