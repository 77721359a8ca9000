# A short CPU schedule for the tiny model on SynthRef, derived from the paper's: Adam 1e-3 with one
# warm-up epoch, cosine decay over 30 epochs, validation and checkpoints every 5 epochs (the best
# val oIoU kept), logging every 20 iterations, a fixed seed.
_base_ = ['./schedule_40e_paper.py']
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=None))
max_epochs = 30
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=max_epochs,
         T_max=max_epochs - 1, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=5, max_keep_ckpts=2),
    invalid_loss=dict(interval=20))
randomness = dict(seed=0)
# Without CUDA, tools/train.py and tools/test.py run on this many threads (unset: torch's default
# of all cores; OMP_NUM_THREADS overrides it): the tiny model runs fastest on one.
cpu_threads = 1
