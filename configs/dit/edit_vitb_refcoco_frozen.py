# Paper Tables 1 and 3 (visual encoder frozen, text encoder tuned): edit_vitb_refcoco.py with the
# SAM image encoder frozen (its text projections stay trainable).
_base_ = ['./edit_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True))
