# Paper Table 1, "End-to-end DIT" (E-DIT), SAM ViT-B, full tuning, RefCOCO.
_base_ = [
    '../_base_/models/dit_vit-b_e2e.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
