# Paper Table 4, "CrossAtt + FFN" (RefCOCO oIoU 68.26 / 71.03 / 65.68): the CrossAtt injection
# followed by a residual LayerNorm + MLP (2048 hidden channels as the authors' release for ViT-B).
# From the repository root, with the root on PYTHONPATH (see ../README.md):
#   PYTHONPATH=$PWD python tools/train.py \
#       projects/text_injection_ablation/configs/ldit-crossatt-ffn_vitb_refcoco.py
_base_ = ['../../../configs/dit/ldit_vitb_refcoco.py']
custom_imports = dict(
    imports=['dit_sam_mm', 'projects.text_injection_ablation.injections'],
    allow_failed_imports=False)
model = dict(
    backbone=dict(
        injection=dict(
            type='CrossAttentionFFNTextInjection',
            residual=True,
            feedforward_channels=2048,
            attn_drop_rate=0.1,
            drop_rate=0.1,
            zero_init=True)))
