# Paper Table 4, "CrossAtt" (RefCOCO oIoU 67.06 / 69.67 / 64.85): L-DIT ViT-B whose text slots
# come from cross-attention of the BERT features onto each block's image tokens. From the
# repository root:
#   python tools/train.py projects/text_injection_ablation/configs/ldit-crossatt_vitb_refcoco.py
_base_ = ['../../../configs/dit/ldit_vitb_refcoco.py']
custom_imports = dict(
    imports=['dit_sam_mm', 'projects.text_injection_ablation.injections'],
    allow_failed_imports=False)
model = dict(
    backbone=dict(
        injection=dict(
            type='CrossAttentionTextInjection',
            residual=True,
            attn_drop_rate=0.1,
            drop_rate=0.1,
            zero_init=True)))
