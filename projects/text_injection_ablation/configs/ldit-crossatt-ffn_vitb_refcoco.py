# Paper Table 4, "CrossAtt + FFN" (RefCOCO oIoU 68.26 / 71.03 / 65.68): the CrossAtt injection
# followed by a residual LayerNorm + MLP (2048 hidden channels as the authors' release for ViT-B).
# From the repository root:
#   python tools/train.py projects/text_injection_ablation/configs/ldit-crossatt-ffn_vitb_refcoco.py
_base_ = ['./ldit-crossatt_vitb_refcoco.py']
model = dict(
    backbone=dict(
        injection=dict(type='CrossAttentionFFNTextInjection', feedforward_channels=2048)))
