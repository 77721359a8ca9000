# Paper Table 3 (visual and text encoders frozen): ldit_vitb_refcoco.py with SAM's image encoder and
# BERT frozen; only the text projections and the mask decoder train.
_base_ = ['./ldit_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True), neck=dict(frozen=True))
