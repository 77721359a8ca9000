# L-DIT, SAM ViT-L, RefCOCO, with the paper's ViT-B recipe (section 4.3: batch 64, Adam 1e-4,
# 40 epochs, 3 warm-up epochs, x0.2 at epochs 30 and 35). Not in the paper: no number to compare.
_base_ = [
    '../_base_/models/dit_vit-l_layerwise.py', '../_base_/datasets/refcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
