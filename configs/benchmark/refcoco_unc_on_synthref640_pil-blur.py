# refcoco_unc_on_synthref640.py with mmpretrain's Gaussian blur (PIL), which the RefCOCO pipeline
# used before RandomGaussianBlur (OpenCV) replaced it:
#   python tools/analysis_tools/benchmark.py \
#       configs/benchmark/refcoco_unc_on_synthref640_pil-blur.py \
#       --mode data --num-workers 0 --iters 150
_base_ = ['./refcoco_unc_on_synthref640.py']

data_root = 'data/benchmark/synthref640'
vocab_file = data_root + '/vocab.txt'
color_jitter = dict(type='RandomApply', prob=0.8, transforms=[
    dict(type='mmpretrain.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)])
blur = dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
            prob=0.5)
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
