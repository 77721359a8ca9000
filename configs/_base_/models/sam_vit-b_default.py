# "Default SAM" (paper Table 1): SAM ViT-B at 512 input, text enters only the mask decoder as
# sparse prompts (Linear(768 -> 256) of every BERT token). E-DIT and L-DIT change `text_mode`.
#
# Weights (docs/en/train_test.md, "Prepare the pretrained weights"):
#   data/pretrained/sam_vit_b_mmseg.pth   <- tools/model_converters/sam2mmseg.py sam_vit_b_01ec64.pth
#   data/pretrained/bert-base-uncased/    <- a local copy of bert-base-uncased (config, vocab, weights)
data_preprocessor = dict(
    # normalises and pads as SegDataPreProcessor; padding added by ReferPad (test pipelines) gets the
    # same normalised pad value (0, the mean colour) as SAM's and the training batches' padding.
    type='ReferSegDataPreProcessor',
    # SAM's pixel statistics (RGB).
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # SAM pads bottom-right to a square input.
    size=(512, 512))
model = dict(
    type='DITSAM',
    data_preprocessor=data_preprocessor,
    neck=dict(
        type='BertNeck',
        pretrained='data/pretrained/bert-base-uncased',
        out_layer=-1,
        frozen=False),
    backbone=dict(
        type='DITSAMViT',
        arch='base',
        img_size=512,
        text_mode='none',
        text_dims=768,
        global_attn_with_text=True,
        mask_text_padding=True,
        frozen=False,
        with_cp=False),
    decode_head=dict(
        type='SAMDecoderHead',
        in_channels=256,
        text_dim=768,
        decoder_depth=2,
        mask_text_padding=True,
        threshold=0.35),
    pretrained='data/pretrained/sam_vit_b_mmseg.pth',
    # What SAM's checkpoint cannot hold: BERT (loaded by BertNeck), the text projections.
    allowed_missing_keys=['neck.*', 'backbone.text_injections.*', 'backbone.static_prompts',
                          'decode_head.text_proj.*'],
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
