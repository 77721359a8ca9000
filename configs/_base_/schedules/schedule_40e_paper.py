# The paper's schedule (section 4.3): Adam, lr 1e-4, 40 epochs with 3 warm-up epochs and the
# learning rate multiplied by 0.2 at epochs 30 and 35. Batch 64 in total (8 GPUs x 8 images).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=0.0, fused=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=3,
         convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=40, milestones=[30, 35], gamma=0.2),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=40, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# The recipe is stated for a total batch of 64; `--auto-scale-lr`-style scaling is off by default.
auto_scale_lr = dict(enable=False, base_batch_size=64)
default_hooks = dict(
    # reads the logged losses on the host at the logging interval only (no per-step sync)
    runtime_info=dict(type='DeferredRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # MMEngine's CheckpointHook, writing atomically and removing only its own files
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3,
                    save_best='oIoU', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    epoch_seed=dict(type='EpochSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    invalid_loss=dict(type='InvalidLossStopHook', interval=50))
