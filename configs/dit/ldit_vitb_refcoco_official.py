# L-DIT, SAM ViT-B, RefCOCO: runs a checkpoint released with the authors' code as it was trained.
#   python tools/model_converters/dit_official2mmseg.py RELEASED.pth checkpoints/ldit_official.pth
#   python tools/test.py configs/dit/ldit_vitb_refcoco_official.py checkpoints/ldit_official.pth
# What the release does and this config reproduces: every block attends globally over
# [text; image] (the base's default), padded text tokens are attended to in the ViT and in the
# decoder (mask_text_padding=False), BERT's first encoder layer is the text feature (out_layer=1),
# the 128x128 logits are upsampled x4 with align_corners=True (nn.UpsamplingBilinear2d), 512
# input, threshold 0.35. The converted checkpoint holds all weights, BERT included, so BERT is
# built from its configuration (bert-base-uncased) and only the tokenizer's vocab.txt is read
# from data/pretrained/bert-base-uncased.
# The release resizes with PIL's bilinear filter (antialiased when shrinking; mmcv's
# backend='pillow' below, where OpenCV's default does not antialias) and pads the resized image
# to 512x512 *centred* after normalisation (ReferPad center=True, whose padding the
# ReferSegDataPreProcessor sets to the normalised 0).
_base_ = ['./ldit_vitb_refcoco.py']
bert_base_uncased = dict(
    vocab_size=30522,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    hidden_act='gelu',
    max_position_embeddings=512,
    type_vocab_size=2,
    layer_norm_eps=1e-12)
model = dict(
    pretrained=None,
    neck=dict(pretrained=None, bert_cfg=bert_base_uncased, out_layer=1),
    backbone=dict(global_attn_with_text=True, mask_text_padding=False),
    decode_head=dict(mask_text_padding=False, threshold=0.35, align_corners=True))
# Test-time input as the release prepares it: keep-ratio PIL resize, then centred padding.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 512), keep_ratio=True, backend='pillow'),
    dict(type='ReferPad', size=(512, 512), center=True),
    dict(type='LoadReferAnnotations'),
    dict(type='TokenizeText', tokenizer='data/pretrained/bert-base-uncased', max_length=20),
    dict(type='PackReferSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
