# SynthRef: the synthetic REFER-format dataset that lives in this repository (data/synthref/,
# regenerate with `python tools/dataset_converters/make_synthref.py data/synthref --overwrite`).
# 64x64 images of coloured shapes; every sentence names exactly one shape, by attribute, position
# or comparison.
# It is read through exactly the same RefCOCODataset path as RefCOCO; the tokenizer uses the
# vocabulary built from its sentences (a tiny BERT is trained from scratch on it).
dataset_type = 'RefCOCODataset'
data_root = 'data/synthref'
vocab_file = 'data/synthref/vocab.txt'
max_text_length = 20

train_pipeline = [
    dict(type='LoadReferImageFromFile'),
    dict(type='LoadReferAnnotations'),
    dict(type='ReferRandomFlip', prob=0.5),
    dict(type='TokenizeText', vocab_file=vocab_file, max_length=max_text_length),
    dict(type='PackReferSegInputs'),
]
test_pipeline = [
    dict(type='LoadReferImageFromFile'),
    # SynthRef images are 64x64 already; these make any other image (demo, inferencer) fit.
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='ReferPad', size=(64, 64)),
    dict(type='LoadReferAnnotations'),
    dict(type='TokenizeText', vocab_file=vocab_file, max_length=max_text_length),
    dict(type='PackReferSegInputs'),
]
dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file='instances.json',
    split_file='refs(unc).p',
    data_prefix=dict(img_path='images/'))
# Non-persistent workers seeded per epoch (EpochSeedHook): a resumed run repeats exactly.
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=False,
    worker_init_fn=dict(type='seed_worker_from_torch'),
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**dataset, split='train', sample_mode='ref', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split='val', sample_mode='sentence', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split=['val', 'testA', 'testB'], sample_mode='sentence',
                 test_mode=True, pipeline=test_pipeline))
val_evaluator = dict(type='ReferSegMetric')
test_evaluator = val_evaluator
