# E-DIT (paper section 3.2): projected text tokens prepended once and carried through all blocks.
_base_ = ['./sam_vit-b_default.py']
model = dict(backbone=dict(text_mode='e2e'))
