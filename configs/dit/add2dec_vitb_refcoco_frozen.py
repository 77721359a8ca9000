# Paper Table 1, "Add 2 dec layers*": add2dec_vitb_refcoco.py with the image encoder frozen.
_base_ = ['./add2dec_vitb_refcoco.py']
model = dict(backbone=dict(frozen=True))
