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
# docs/en/benchmark.md has the numbers and the two variants (PIL blur, PhotoMetricDistortion),
# which replace `color_jitter` or `gaussian_blur` of this pipeline.
_base_ = ['../_base_/datasets/refcoco_unc.py']
custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))

data_root = 'data/benchmark/synthref640'
tokenize = dict(type='TokenizeText', vocab_file=data_root + '/vocab.txt', max_length=20)
train_pipeline = [
    {{_base_.load_image}},
    dict(type='LoadReferAnnotations'),
    {{_base_.multiscale_resize}},
    {{_base_.flip}},
    {{_base_.color_jitter}},
    {{_base_.gaussian_blur}},
    tokenize,
    dict(type='PackReferSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(data_root=data_root, ann_file='instances.json', split_file='refs(unc).p',
                 data_prefix=dict(img_path='images/'), pipeline=train_pipeline))
