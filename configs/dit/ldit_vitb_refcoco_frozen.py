# Paper Tables 1 and 3 (visual encoder frozen, text encoder tuned): ldit_vitb_refcoco.py with the
# SAM image encoder frozen (its text projections stay trainable).
_base_ = ['./ldit_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True))
