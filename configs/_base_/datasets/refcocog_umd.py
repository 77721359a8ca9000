# RefCOCOg, UMD partition (train / val / test):
#   data/refcocog/instances.json, data/refcocog/refs(umd).p
_base_ = ['./refcoco_unc.py']
ann_file = 'refcocog/instances.json'
split_file = 'refcocog/refs(umd).p'
train_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
val_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
test_dataloader = dict(
    dataset=dict(ann_file=ann_file, split_file=split_file, split=['val', 'test']))
