# refcoco_unc_on_synthref640.py with mmpretrain's Gaussian blur (PIL), which the RefCOCO pipeline
# used before RandomGaussianBlur (OpenCV) replaced it:
#   python tools/analysis_tools/benchmark.py \
#       configs/benchmark/refcoco_unc_on_synthref640_pil-blur.py \
#       --mode data --num-workers 0 --iters 150
_base_ = ['./refcoco_unc_on_synthref640.py']

pil_blur = dict(type='mmpretrain.GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
                prob=0.5)
train_pipeline = [
    {{_base_.load_image}},
    dict(type='LoadReferAnnotations'),
    {{_base_.multiscale_resize}},
    {{_base_.flip}},
    {{_base_.color_jitter}},
    pil_blur,
    {{_base_.tokenize}},
    dict(type='PackReferSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
