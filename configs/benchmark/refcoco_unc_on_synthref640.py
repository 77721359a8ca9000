# The RefCOCO training data pipeline (configs/_base_/datasets/refcoco_unc.py) on SynthRef drawn at
# 640x480, the size of a COCO photo, for tools/analysis_tools/benchmark.py --mode data (no model).
# Only the data root and the vocabulary differ from the RefCOCO config: SynthRef's vocab.txt stands
# in for bert-base-uncased's (both make the same BertTokenizerFast; it only changes which word
# pieces come out). Make the data once, then measure one core's throughput:
#
#   python tools/dataset_converters/make_synthref.py data/benchmark/synthref640 \
#       --size 640x480 --num-images 180
#   python tools/analysis_tools/benchmark.py configs/benchmark/refcoco_unc_on_synthref640.py \
#       --mode data --num-workers 0 --iters 150 [--per-transform]
#
# docs/en/benchmark.md has the numbers and the two variants (PIL blur, PhotoMetricDistortion).
_base_ = ['../_base_/datasets/refcoco_unc.py']
custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))

data_root = 'data/benchmark/synthref640'
vocab_file = data_root + '/vocab.txt'
color_jitter = dict(type='RandomApply', prob=0.8, transforms=[
    dict(type='mmpretrain.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)])
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
