# RefCOCO+ (UNC splits): same images and pipelines as RefCOCO, its own annotation files
#   data/refcoco+/instances.json, data/refcoco+/refs(unc).p
_base_ = ['./refcoco_unc.py']
ann_file = 'refcoco+/instances.json'
split_file = 'refcoco+/refs(unc).p'
train_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
val_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
test_dataloader = dict(dataset=dict(ann_file=ann_file, split_file=split_file))
