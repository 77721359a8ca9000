# L-DIT, SAM ViT-B, fine-tuned on your own data (data/custom, see docs/en/custom_data.md) from an
# L-DIT RefCOCO checkpoint (train configs/dit/ldit_vitb_refcoco.py first, or point load_from at
# yours): 10 epochs at a tenth of the paper's learning rate, validation every epoch.
#   python tools/train.py configs/custom/ldit_vitb_custom_ft-refcoco.py
_base_ = [
    '../_base_/models/dit_vit-b_layerwise.py', '../_base_/datasets/custom_refer.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40e_paper.py'
]
load_from = 'work_dirs/ldit_vitb_refcoco/epoch_40.pth'
max_epochs = 10
optim_wrapper = dict(optimizer=dict(lr=1e-5))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-7, by_epoch=True, begin=0, end=max_epochs,
         T_max=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
