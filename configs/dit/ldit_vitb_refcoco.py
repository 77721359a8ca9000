# Paper Table 1 and the design card's command, "Layer-wise DIT" (L-DIT), SAM ViT-B, RefCOCO:
#   python tools/train.py configs/dit/ldit_vitb_refcoco.py
_base_ = [
    '../_base_/models/dit_vit-b_layerwise.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
