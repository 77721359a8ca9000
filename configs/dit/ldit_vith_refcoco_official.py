# L-DIT, SAM ViT-H, RefCOCO: runs a checkpoint released with the authors' code (ViT-H layout:
# `prob_text` 768 -> 1280 before the per-block projections, folded into them by
# tools/model_converters/dit_official2mmseg.py). Everything else as ldit_vitb_refcoco_official.py.
_base_ = ['./ldit_vitb_refcoco_official.py']
model = dict(backbone=dict(arch='huge'))
