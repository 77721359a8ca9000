# L-DIT (paper section 3.3): the text slots are refilled with a fresh projection of the BERT
# features before every block.
_base_ = ['./sam_vit-b_default.py']
model = dict(backbone=dict(text_mode='layerwise'))
