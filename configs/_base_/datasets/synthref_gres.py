# SynthRef in the gRefCOCO format: SynthRef's images with multi-target ("both red shapes", "the
# two circles on the left") and no-target ("the blue triangle" where there is none) sentences,
# about 25% and 15% of each split. Generate it first (half a second):
#   python tools/dataset_converters/make_synthref.py data/synthref_gres --generalized
# SynthRef's dot clusters are crowd annotations and real targets here: include_crowd=True.
_base_ = ['./synthref.py']
data_root = 'data/synthref_gres'
vocab_file = 'data/synthref_gres/vocab.txt'  # SynthRef's words, then all/both/three/four/five
tokenize = dict(type='TokenizeText', vocab_file=vocab_file, max_length=20)
train_pipeline = [
    dict(type='LoadReferImageFromFile'),
    dict(type='LoadReferAnnotations'),
    dict(type='ReferRandomFlip', prob=0.5),
    tokenize,
    dict(type='PackReferSegInputs'),
]
test_pipeline = [
    dict(type='LoadReferImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='ReferPad', size=(64, 64)),
    dict(type='LoadReferAnnotations'),
    tokenize,
    dict(type='PackReferSegInputs'),
]
gres = dict(type='GRefCOCODataset', data_root=data_root, split_file='grefs(unc).json',
            include_crowd=True)
train_dataloader = dict(dataset=dict(**gres, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(**gres, pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(**gres, pipeline=test_pipeline))
val_evaluator = dict(type='GRESMetric')
test_evaluator = val_evaluator
