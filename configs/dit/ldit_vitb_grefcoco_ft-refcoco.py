# L-DIT, SAM ViT-B, gRefCOCO, fine-tuned from an L-DIT RefCOCO checkpoint (train
# ldit_vitb_refcoco.py first). Its weights load into everything but the new no-target branch,
# which starts from its initialisation (MMEngine's load_from logs those keys as missing):
#   python tools/train.py configs/dit/ldit_vitb_grefcoco_ft-refcoco.py
_base_ = ['./ldit_vitb_grefcoco.py']
load_from = 'work_dirs/ldit_vitb_refcoco/epoch_40.pth'
