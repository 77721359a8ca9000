# Default SAM (text only in the decoder) with the tiny model on SynthRef, trained from scratch on the CPU in a few minutes:
#   python tools/train.py configs/synthref/default_tiny_synthref.py
_base_ = [
    '../_base_/models/dit_tiny.py', '../_base_/datasets/synthref.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_synthref.py'
]
model = dict(backbone=dict(text_mode='none'))
