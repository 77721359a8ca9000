# Paper Table 1, "Add 4 dec layers*": add4dec_vitb_refcoco.py with the image encoder frozen.
_base_ = ['./add4dec_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True))
