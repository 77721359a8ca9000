# gRefCOCO (GRES, CVPR 2023; RefCOCO's UNC splits) in the REFER layout:
#   data/coco/train2014/*.jpg, data/grefcoco/instances.json, data/grefcoco/grefs(unc).json
# A sentence names one object, several (the ground truth is the union of their masks, crowd
# annotations left out as by the GRES reference code: include_crowd=False) or none (an empty
# ground truth). Pipelines as RefCOCO's; the metric is GRES's (cIoU, gIoU, N-acc, T-acc, Pr@X)
# at the original resolution (GRESMetric(protocol='gres') scores at 480x480 as the GRES code).
_base_ = ['./refcoco_unc.py']
grefcoco = dict(
    type='GRefCOCODataset',
    ann_file='grefcoco/instances.json',
    split_file='grefcoco/grefs(unc).json',
    include_crowd=False)
train_dataloader = dict(dataset=grefcoco)
val_dataloader = dict(dataset=grefcoco)
test_dataloader = dict(dataset=grefcoco)
val_evaluator = dict(type='GRESMetric')
test_evaluator = val_evaluator
