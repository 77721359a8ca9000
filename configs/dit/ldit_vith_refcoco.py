# Paper Table 5: L-DIT, SAM ViT-H, refcoco.
_base_ = [
    '../_base_/models/dit_vit-h_layerwise.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
