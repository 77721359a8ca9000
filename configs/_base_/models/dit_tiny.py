# A tiny DIT-SAM for SynthRef and CPU runs: a 4-block SAM ViT (64 channels, patch 8, 64x64 input,
# 8x8 token grid), a 2-layer BERT trained from scratch on SynthRef's vocabulary and a SAM decoder
# of width 64. Nothing is pretrained. `text_mode` is set by the leaf configs.
_base_ = ['./sam_vit-b_default.py']
tiny_dims = 64
data_preprocessor = dict(size=(64, 64))
model = dict(
    data_preprocessor=data_preprocessor,
    neck=dict(
        _delete_=True,
        type='BertNeck',
        bert_cfg=dict(
            vocab_size=64,  # >= the 40 words of data/synthref/vocab.txt
            hidden_size=tiny_dims,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=4 * tiny_dims,
            max_position_embeddings=32)),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=tiny_dims, num_layers=4, num_heads=4,
                  feedforward_channels=4 * tiny_dims, global_attn_indexes=[1, 3]),
        img_size=64,
        patch_size=8,
        window_size=4,
        out_channels=tiny_dims,
        text_dims=tiny_dims),
    decode_head=dict(
        in_channels=tiny_dims,
        text_dim=tiny_dims,
        num_heads=4,
        mlp_dim=4 * tiny_dims),
    pretrained=None)
