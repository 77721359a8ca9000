# L-DIT with SAM ViT-L (1024 channels, 24 blocks, 16 heads; not in the paper, which trains ViT-B
# and ViT-H). Every block attends globally over [text; image] (global_attn_with_text), as in the
# ViT-B and ViT-H models; SAM's own global blocks of ViT-L are 5, 11, 17 and 23.
#   data/pretrained/sam_vit_l_mmseg.pth  <- tools/model_converters/sam2mmseg.py sam_vit_l_0b3195.pth
_base_ = ['./dit_vit-b_layerwise.py']
model = dict(
    backbone=dict(arch='large'),
    pretrained='data/pretrained/sam_vit_l_mmseg.pth')
