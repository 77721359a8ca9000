# Paper Table 5: L-DIT, SAM ViT-B, refcocog-google.
_base_ = [
    '../_base_/models/dit_vit-b_layerwise.py', '../_base_/datasets/refcocog_google.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
