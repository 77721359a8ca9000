# Paper Table 1, "Default": SAM ViT-B, text only as decoder prompts, full tuning, RefCOCO.
_base_ = [
    '../_base_/models/sam_vit-b_default.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
