# Paper Table 2, "dynamic+static": ldit_vitb_refcoco.py plus learnable static prompt tokens
# (concatenated after the projected text tokens; see DITSAMViT's num_static_prompts).
_base_ = ['./ldit_vitb_refcoco.py']
model = dict(backbone=dict(num_static_prompts=10))
