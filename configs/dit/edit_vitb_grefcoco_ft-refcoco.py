# E-DIT, SAM ViT-B, gRefCOCO, fine-tuned from an E-DIT RefCOCO checkpoint (train
# edit_vitb_refcoco.py first; see ldit_vitb_grefcoco_ft-refcoco.py):
#   python tools/train.py configs/dit/edit_vitb_grefcoco_ft-refcoco.py
_base_ = ['./edit_vitb_grefcoco.py']
load_from = 'work_dirs/edit_vitb_refcoco/epoch_40.pth'
