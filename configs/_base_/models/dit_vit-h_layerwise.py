# L-DIT with SAM ViT-H (paper Table 5). Activation checkpointing keeps ViT-H trainable.
#   data/pretrained/sam_vit_h_mmseg.pth  <- tools/model_converters/sam2mmseg.py sam_vit_h_4b8939.pth
_base_ = ['./dit_vit-b_layerwise.py']
model = dict(
    backbone=dict(arch='huge', with_cp=True),
    pretrained='data/pretrained/sam_vit_h_mmseg.pth')
