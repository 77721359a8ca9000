# L-DIT with the tiny model on SynthRef-GRES (multi-target and no-target sentences), with the
# decoder's no-target branch, trained from scratch on the CPU in a few minutes:
#   python tools/dataset_converters/make_synthref.py data/synthref_gres --generalized
#   python tools/train.py configs/synthref/ldit_tiny_synthref-gres.py
_base_ = [
    '../_base_/models/dit_tiny.py', '../_base_/datasets/synthref_gres.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_synthref.py'
]
model = dict(
    backbone=dict(text_mode='layerwise'),
    decode_head=dict(
        no_target=True,
        no_target_threshold=0.5,
        detach_no_target=True,
        loss_no_target=dict(type='MaskBCELoss', loss_weight=1.0, loss_name='loss_no_target')))
# The best checkpoint by GRES's headline number.
default_hooks = dict(checkpoint=dict(save_best='gIoU'))
