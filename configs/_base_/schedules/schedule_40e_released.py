# The authors' released training recipe: Adam with betas (0.9, 0.98) and eps 1e-9, no weight decay,
# gradient-norm clipping at 0.15, 3 warm-up epochs then cosine decay to 1e-6 over 40 epochs, and an
# exponential moving average of the weights (decay min(0.9997, (n+1)/(n+10)) at update n) used for
# validation and checkpoints.
_base_ = ['./schedule_40e_paper.py']
# DeferredGradNormOptimWrapper: the gradient norm is logged at the logging interval (with the
# losses, by the paper schedule's DeferredRuntimeInfoHook) instead of being read every step.
optim_wrapper = dict(
    type='DeferredGradNormOptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0),
    clip_grad=dict(max_norm=0.15, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=3, end=40,
         T_max=37, convert_to_iter_based=True),
]
# MMEngine's momentum is the weight of the new value: 1 - 0.9997. ForeachEMA adds the release's
# decay warm-up (decay_warmup=9) and updates without MMEngine's two host reads per step.
custom_hooks = [
    dict(type='EMAHook', ema_type='ForeachEMA', momentum=0.0003, decay_warmup=9,
         update_buffers=True, priority=49)
]
