# L-DIT, SAM ViT-B, RefCOCO: runs a checkpoint released with the authors' code as it was trained.
#   python tools/model_converters/dit_official2mmseg.py RELEASED.pth checkpoints/ldit_official.pth
#   python tools/test.py configs/dit/ldit_vitb_refcoco_official.py checkpoints/ldit_official.pth
# What the release does and this config reproduces:
# - model: every block attends globally over [text; image] (the base's default), padded text
#   tokens are attended to in the ViT and in the decoder (mask_text_padding=False), BERT's first
#   encoder layer is the text feature (out_layer=1), the 128x128 logits are upsampled x4 with
#   align_corners=True (nn.UpsamplingBilinear2d), 512 input;
# - output: sigmoid > 0.35 at 512, then the 0/1 mask is resized to the image and every pixel
#   above 0 kept (test_cfg threshold_before_resize); Pr@X counts IoU > X (strict_threshold);
# - input: REFER's cleaned lower-case sentences ('sent', what the SimREC-format annotations the
#   release reads hold); images read without EXIF rotation (PIL), resized with PIL's bilinear
#   filter (antialiased when shrinking; backend='pillow', where OpenCV's does not antialias),
#   normalised, then padded to 512x512 *centred* with 0 (ReferPad center=True, whose padding the
#   ReferSegDataPreProcessor sets to the normalised 0).
# The converted checkpoint holds all weights, BERT included, so BERT is built from its
# configuration (bert-base-uncased) and only the tokenizer's vocab.txt is read from
# data/pretrained/bert-base-uncased.
_base_ = ['./ldit_vitb_refcoco.py']
# Float32 and eager on GPUs too, as the release: its numbers, not the bfloat16 fast path's.
gpu_fast_path = False
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
    decode_head=dict(mask_text_padding=False, threshold=0.35, align_corners=True),
    test_cfg=dict(mode='whole', threshold_before_resize=True))
# Test-time input as the release prepares it: keep-ratio PIL resize, then centred padding.
test_pipeline = [
    dict(type='LoadReferImageFromFile', color_type='color_ignore_orientation'),
    dict(type='Resize', scale=(512, 512), keep_ratio=True, backend='pillow'),
    dict(type='ReferPad', size=(512, 512), center=True),
    dict(type='LoadReferAnnotations'),
    dict(type='TokenizeText', tokenizer='data/pretrained/bert-base-uncased', max_length=20),
    dict(type='PackReferSegInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, sentence_key='sent'))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline, sentence_key='sent'))
val_evaluator = dict(type='ReferSegMetric', strict_threshold=True)
test_evaluator = val_evaluator
