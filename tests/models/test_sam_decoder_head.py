"""SAMDecoderHead: parity with segment_anything 1.0, padding invariance, losses, gradients."""
import fnmatch

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer

from dit_sam_mm.models.decode_heads import (SAM_DECODER_KEYS_DROPPED, SAMDecoderHead,
                                            TextPromptedInputs, is_dropped_sam_decoder_key)

DIM = 32
TEXT_DIM = 24
HEADS = 2
MLP_DIM = 64


def build_head(**kwargs) -> SAMDecoderHead:
    cfg = dict(in_channels=DIM, text_dim=TEXT_DIM, num_heads=HEADS, mlp_dim=MLP_DIM)
    cfg.update(kwargs)
    return SAMDecoderHead(**cfg)


def build_sam(grid=(4, 4), depth=2):
    """Official SAM prompt encoder + mask decoder with random weights, at reduced width."""
    prompt_encoder = PromptEncoder(
        embed_dim=DIM,
        image_embedding_size=grid,
        input_image_size=(grid[0] * 16, grid[1] * 16),
        mask_in_chans=8)
    mask_decoder = MaskDecoder(
        transformer_dim=DIM,
        transformer=TwoWayTransformer(
            depth=depth, embedding_dim=DIM, num_heads=HEADS, mlp_dim=MLP_DIM),
        iou_head_hidden_dim=DIM)
    # SAM's default init leaves LayerNorms at identity and embeddings ~ N(0, 1); perturb
    # everything so that a wrongly mapped parameter cannot go unnoticed.
    with torch.no_grad():
        for p in list(prompt_encoder.parameters()) + list(mask_decoder.parameters()):
            p.add_(0.3 * torch.randn_like(p))
    return prompt_encoder.eval(), mask_decoder.eval()


def sam_state_dict_for_head(prompt_encoder, mask_decoder):
    """Convert like tools/model_converters/sam2mmseg.py: keep the prefix, drop unused keys."""
    state = {}
    for prefix, module in (('prompt_encoder.', prompt_encoder), ('mask_decoder.', mask_decoder)):
        for key, value in module.state_dict().items():
            if not is_dropped_sam_decoder_key(prefix + key):
                state[prefix + key] = value
    return state


def load_sam_into_head(head, prompt_encoder, mask_decoder):
    state = sam_state_dict_for_head(prompt_encoder, mask_decoder)
    result = head.load_state_dict(state, strict=False)
    # Only the text projection is new; nothing of SAM's is left over.
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ['text_proj.bias', 'text_proj.weight']


def test_dropped_keys_are_exactly_the_unbuilt_ones():
    prompt_encoder, mask_decoder = build_sam()
    sam_keys = {'prompt_encoder.' + k for k in prompt_encoder.state_dict()}
    sam_keys |= {'mask_decoder.' + k for k in mask_decoder.state_dict()}
    head_keys = set(build_head().state_dict()) - {'text_proj.weight', 'text_proj.bias'}
    dropped = {k for k in sam_keys if is_dropped_sam_decoder_key(k)}
    assert sam_keys - dropped == head_keys
    # every pattern drops something, and the hypernetwork of mask token 0 is kept
    assert 'mask_decoder.output_hypernetworks_mlps.0.layers.0.weight' in head_keys
    for pattern in SAM_DECODER_KEYS_DROPPED:
        assert any(fnmatch.fnmatchcase(k, pattern) for k in sam_keys), pattern


@pytest.mark.parametrize('grid', [(4, 4), (3, 5)])
def test_parity_with_segment_anything(grid):
    torch.manual_seed(0)
    prompt_encoder, mask_decoder = build_sam(grid)
    head = build_head().eval()
    load_sam_into_head(head, prompt_encoder, mask_decoder)

    batch, num_tokens = 2, 5
    image_embedding = torch.randn(batch, DIM, *grid)
    text_feats = torch.randn(batch, num_tokens, TEXT_DIM)
    text_mask = torch.ones(batch, num_tokens, dtype=torch.bool)
    with torch.no_grad():
        ours = head((image_embedding, ), text_feats, text_mask)
        assert ours.shape == (batch, 1, 4 * grid[0], 4 * grid[1])
        assert ours.std().item() > 0.1  # O(1) logits: the 1e-4 tolerance is meaningful
        sparse = head.text_proj(text_feats)
        for b in range(batch):  # SAM repeats the image per prompt set: one image at a time
            sam_sparse, sam_dense = prompt_encoder(points=None, boxes=None, masks=None)
            assert sam_sparse.shape[1] == 0  # text is appended after SAM's (empty) sparse prompts
            sam_masks, _ = mask_decoder(
                image_embeddings=image_embedding[b:b + 1],
                image_pe=prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=torch.cat([sam_sparse, sparse[b:b + 1]], dim=1),
                dense_prompt_embeddings=sam_dense,
                multimask_output=False)
            assert sam_masks.shape == (1, 1, 4 * grid[0], 4 * grid[1])
            assert (ours[b:b + 1] - sam_masks).abs().max().item() <= 1e-4


def test_dense_pe_matches_sam_for_any_grid():
    torch.manual_seed(0)
    prompt_encoder, _ = build_sam()
    head = build_head()
    head.prompt_encoder.load_state_dict(
        {k: v for k, v in prompt_encoder.state_dict().items()
         if not is_dropped_sam_decoder_key('prompt_encoder.' + k)})
    for size in [(3, 7), (32, 32), (9, 5)]:
        ours = head.prompt_encoder.get_dense_pe(size)
        theirs = prompt_encoder.pe_layer(size).unsqueeze(0)
        assert ours.shape == (1, DIM, *size)
        assert (ours - theirs).abs().max().item() <= 1e-6


def test_padding_tokens_do_not_change_the_output():
    torch.manual_seed(0)
    head = build_head().eval()
    image_embedding = torch.randn(2, DIM, 4, 4)
    text_feats = torch.randn(2, 4, TEXT_DIM)
    text_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    padded_feats = torch.cat([text_feats, torch.randn(2, 3, TEXT_DIM)], dim=1)
    padded_mask = torch.cat([text_mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        short = head((image_embedding, ), text_feats, text_mask)
        long = head((image_embedding, ), padded_feats, padded_mask)
        sample1_alone = head((image_embedding[1:], ), text_feats[1:, :2], text_mask[1:, :2])
    assert (short - long).abs().max().item() <= 1e-5
    assert (short[1:] - sample1_alone).abs().max().item() <= 1e-5

    # With mask_text_padding=False (the released code) the padding does leak in.
    unmasked = build_head(mask_text_padding=False).eval()
    unmasked.load_state_dict(head.state_dict())
    with torch.no_grad():
        leaky = unmasked((image_embedding, ), padded_feats, padded_mask)
    assert (leaky - long).abs().max().item() > 1e-4


def make_samples(gt_masks):
    samples = []
    for gt in gt_masks:
        sample = SegDataSample(metainfo=dict(img_shape=gt.shape, pad_shape=gt.shape))
        sample.gt_sem_seg = PixelData(data=gt[None].long())
        samples.append(sample)
    return samples


def test_loss_predict_and_gradients():
    torch.manual_seed(0)
    head = build_head(
        decoder_depth=3,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True,
                 loss_weight=1.0),
            dict(type='DiceLoss', use_sigmoid=True, loss_weight=0.5),
        ])
    assert not hasattr(head, 'conv_seg')
    assert len(head.mask_decoder.transformer.layers) == 3
    feats = (torch.randn(2, DIM, 4, 4), )
    text = torch.randn(2, 3, TEXT_DIM)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    gt = (torch.rand(2, 64, 64) > 0.5).long()
    gt[0, 48:] = 255  # padding rows are ignored
    losses = head.loss(TextPromptedInputs(feats, text, mask), make_samples(gt), train_cfg={})
    assert set(losses) == {'loss_ce', 'loss_dice', 'acc_seg'}
    (losses['loss_ce'] + losses['loss_dice']).backward()
    no_grad = [n for n, p in head.named_parameters() if p.grad is None]
    assert no_grad == []
    assert 0.0 <= losses['acc_seg'].item() <= 100.0

    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    with torch.no_grad():
        logits = head.predict(TextPromptedInputs(feats, text, mask), metas, test_cfg={})
    assert logits.shape == (2, 1, 64, 64)


def test_binary_loss_values_match_definitions():
    """BCE averages over non-ignored pixels; Dice uses the foreground, not the background."""
    head = build_head(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True),
        dict(type='DiceLoss', use_sigmoid=True, naive_dice=True, eps=1e-6),
    ])
    logits = torch.randn(1, 1, 8, 8)
    gt = (torch.rand(1, 8, 8) > 0.5).long()
    gt[0, 6:] = 255
    losses = head.loss_by_feat(logits, make_samples(gt))
    valid = gt[0] != 255
    prob = logits[0, 0].sigmoid()[valid]
    target = gt[0][valid].float()
    bce = torch.nn.functional.binary_cross_entropy(prob, target)
    dice = 1 - (2 * (prob * target).sum() + 1e-6) / (prob.sum() + target.sum() + 1e-6)
    acc = ((prob > 0.35).float() == target).float().mean() * 100
    assert torch.allclose(losses['loss_ce'], bce, atol=1e-5)
    assert torch.allclose(losses['loss_dice'], dice, atol=1e-5)
    assert torch.allclose(losses['acc_seg'], acc, atol=1e-4)


def test_text_is_required():
    head = build_head()
    with pytest.raises(ValueError, match='needs text'):
        head((torch.randn(1, DIM, 4, 4), ))
    with pytest.raises(ValueError, match='binary'):
        build_head(num_classes=3, out_channels=3)
