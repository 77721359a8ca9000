# L-DIT, SAM ViT-B, gRefCOCO (multi-target and no-target sentences), from SAM + BERT, with the
# decoder's no-target branch (an empty mask when the sentence names nothing in the image):
#   python tools/train.py configs/dit/ldit_vitb_grefcoco.py
# Our recipe is the paper's RefCOCO one (512 input, Adam 1e-4, 40 epochs, batch 64); the GRES
# paper trains and scores at 480x480 (GRESMetric(protocol='gres') reproduces its scoring).
_base_ = [
    '../_base_/models/dit_vit-b_layerwise.py', '../_base_/datasets/grefcoco_unc.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
model = dict(
    # The no-target MLP on the decoder's IoU and mask tokens, trained on them detached (the mask
    # trains as without it; docs/en/grefcoco.md has why), thresholded at probability 0.5.
    decode_head=dict(
        no_target=True,
        no_target_threshold=0.5,
        detach_no_target=True,
        loss_no_target=dict(type='MaskBCELoss', loss_weight=1.0, loss_name='loss_no_target')),
    # SAM's checkpoint has no no-target branch either (the base list plus it).
    allowed_missing_keys=['neck.*', 'backbone.text_injections.*', 'backbone.static_prompts',
                          'decode_head.text_proj.*', 'decode_head.no_target_head.*'])
# The best checkpoint by GRES's headline number.
default_hooks = dict(checkpoint=dict(save_best='gIoU'))
