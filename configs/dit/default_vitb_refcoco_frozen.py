# Paper Table 1, "Default*": as default_vitb_refcoco.py with the image encoder frozen.
_base_ = ['./default_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True))
