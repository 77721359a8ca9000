# Runtime shared by every config of this repository (MMSegmentation 1.x style).
# Loading the plugin here registers its datasets, transforms, models and metrics.
custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
# Draws ground truth and prediction side by side with the sentence (tools/test.py --show-dir).
visualizer = dict(type='ReferSegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
# On CUDA: bfloat16 autocast and torch.compile in training, testing and inference
# (dit_sam_mm/utils/fast_path.py). False, or --fp32 / --eager, runs float32 / eagerly.
gpu_fast_path = True
load_from = None
resume = False
