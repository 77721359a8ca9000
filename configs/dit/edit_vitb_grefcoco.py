# E-DIT, SAM ViT-B, gRefCOCO, from SAM + BERT, with the no-target branch (see
# ldit_vitb_grefcoco.py):  python tools/train.py configs/dit/edit_vitb_grefcoco.py
_base_ = [
    '../_base_/models/dit_vit-b_e2e.py', '../_base_/datasets/grefcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
model = dict(
    decode_head=dict(no_target=True, no_target_threshold=0.5),
    # SAM's checkpoint has no no-target branch either (the base list plus it).
    allowed_missing_keys=['neck.*', 'backbone.text_injections.*', 'backbone.static_prompts',
                          'decode_head.text_proj.*', 'decode_head.no_target_head.*'])
# The best checkpoint by GRES's headline number.
default_hooks = dict(checkpoint=dict(save_best='gIoU'))
