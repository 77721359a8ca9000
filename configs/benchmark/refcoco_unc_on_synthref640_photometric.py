# refcoco_unc_on_synthref640.py with MMSeg's PhotoMetricDistortion (brightness, contrast, saturation
# and hue, each at random) in place of mmpretrain's ColorJitter, for comparison:
#   python tools/analysis_tools/benchmark.py \
#       configs/benchmark/refcoco_unc_on_synthref640_photometric.py \
#       --mode data --num-workers 0 --iters 150
_base_ = ['./refcoco_unc_on_synthref640.py']

train_pipeline = [
    {{_base_.load_image}},
    dict(type='LoadReferAnnotations'),
    {{_base_.multiscale_resize}},
    {{_base_.flip}},
    dict(type='PhotoMetricDistortion'),
    {{_base_.gaussian_blur}},
    {{_base_.tokenize}},
    dict(type='PackReferSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
