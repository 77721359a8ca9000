# E-DIT, SAM ViT-B, gRefCOCO, from SAM + BERT, with the no-target branch; everything else as
# ldit_vitb_grefcoco.py:  python tools/train.py configs/dit/edit_vitb_grefcoco.py
_base_ = ['./ldit_vitb_grefcoco.py']
model = dict(backbone=dict(text_mode='e2e'))
