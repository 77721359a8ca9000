# RefCOCO (UNC splits) in the standard REFER layout (docs/en/dataset_prepare.md):
#   data/coco/train2014/*.jpg, data/refcoco/instances.json, data/refcoco/refs(unc).p
# Training draws one item per ref with a random sentence (as the released code does); evaluation
# takes every sentence of every ref, at the image's original resolution. `tools/test.py` evaluates
# val, testA and testB in one run and reports the numbers per split.
dataset_type = 'RefCOCODataset'
data_root = 'data'
ann_file = 'refcoco/instances.json'
split_file = 'refcoco/refs(unc).p'
train_split = 'train'
val_split = 'val'
test_split = ['val', 'testA', 'testB']
# A local copy of bert-base-uncased (its vocab.txt is what the tokenizer needs).
text_tokenizer = 'data/pretrained/bert-base-uncased'
max_text_length = 20
crop_size = (512, 512)
# COCO's polygons and its width/height are in the stored pixel order; a few photos carry an EXIF
# rotation that OpenCV would apply ('color'), turning the image against its masks.
load_image = dict(type='LoadReferImageFromFile', color_type='color_ignore_orientation')

# Multi-scale training of the released code: long side in {320, 352, ..., 512}.
multiscale_resize = dict(
    type='RandomChoiceResize',
    scales=[(320, 320), (352, 352), (384, 384), (416, 416), (448, 448), (480, 480), (512, 512)],
    resize_type='Resize',
    keep_ratio=True)
flip = dict(type='ReferRandomFlip', prob=0.5)
color_jitter = dict(type='RandomApply', prob=0.8, transforms=[
    dict(type='mmpretrain.ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4)])
gaussian_blur = dict(type='RandomGaussianBlur', sigma_range=(0.1, 2.0), prob=0.5)

train_pipeline = [
    load_image,
    dict(type='LoadReferAnnotations'),
    multiscale_resize,
    flip,
    color_jitter,
    gaussian_blur,
    dict(type='TokenizeText', tokenizer=text_tokenizer, max_length=max_text_length),
    dict(type='PackReferSegInputs'),
]
test_pipeline = [
    load_image,
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    # Pad to one size (bottom-right, as SAM) so test batches mix aspect ratios; the segmentor
    # crops the padding off again.
    dict(type='ReferPad', size=crop_size),
    # After Resize: the ground truth stays at the original resolution for the metric.
    dict(type='LoadReferAnnotations'),
    dict(type='TokenizeText', tokenizer=text_tokenizer, max_length=max_text_length),
    dict(type='PackReferSegInputs'),
]

dataset = dict(
    type=dataset_type,
    data_root=data_root,
    ann_file=ann_file,
    split_file=split_file,
    data_prefix=dict(img_path='coco/train2014'))
loader = dict(batch_size=8, num_workers=4, persistent_workers=True)
train_dataloader = dict(
    **loader,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(**dataset, split=train_split, sample_mode='ref', pipeline=train_pipeline))
val_dataloader = dict(
    **loader,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split=val_split, sample_mode='sentence', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    **loader,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, split=test_split, sample_mode='sentence', test_mode=True,
                 pipeline=test_pipeline))
val_evaluator = dict(type='ReferSegMetric')
test_evaluator = val_evaluator
