# RefCOCOg, Google partition (train / val only):
#   data/refcocog/instances.json, data/refcocog/refs(google).p
_base_ = ['./refcoco_unc.py']
ann_file = 'refcocog/instances.json'
split_file = 'refcocog/refs(google).p'
train_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
val_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
test_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file, split=['val']))
