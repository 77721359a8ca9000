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


#: The parameters of the no-target branch (a 3-layer MLP).
NO_TARGET_KEYS = sorted(f'no_target_head.layers.{i}.{kind}' for i in range(3)
                        for kind in ('weight', 'bias'))


def load_sam_into_head(head, prompt_encoder, mask_decoder):
    state = sam_state_dict_for_head(prompt_encoder, mask_decoder)
    result = head.load_state_dict(state, strict=False)
    # Only the text projection (and the no-target branch) is new; nothing of SAM's is left over.
    assert result.unexpected_keys == []
    new = ['text_proj.bias', 'text_proj.weight'] + (NO_TARGET_KEYS if head.no_target else [])
    assert sorted(result.missing_keys) == sorted(new)


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


@pytest.mark.parametrize('grid, options', [((4, 4), {}), ((3, 5), {}),
                                           ((3, 5), dict(no_target=False)),
                                           ((3, 5), dict(no_target=True))])
def test_parity_with_segment_anything(grid, options):
    """The mask equals SAM's single mask, with or without the no-target branch."""
    torch.manual_seed(0)
    prompt_encoder, mask_decoder = build_sam(grid)
    head = build_head(**options).eval()
    load_sam_into_head(head, prompt_encoder, mask_decoder)

    batch, num_tokens = 2, 5
    image_embedding = torch.randn(batch, DIM, *grid)
    text_feats = torch.randn(batch, num_tokens, TEXT_DIM)
    text_mask = torch.ones(batch, num_tokens, dtype=torch.bool)
    with torch.no_grad():
        ours = head((image_embedding, ), text_feats, text_mask)
        if head.no_target:
            ours, no_target_logits = ours
            assert no_target_logits.shape == (batch, )
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


def head_inputs(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = (torch.randn(batch, DIM, 4, 4, generator=gen), )
    text = torch.randn(batch, 3, TEXT_DIM, generator=gen)
    mask = torch.ones(batch, 3, dtype=torch.bool)
    mask[-1, 2] = False
    return TextPromptedInputs(feats, text, mask)


def no_target_samples(flags, size=16):
    """Samples with a random 0/1 mask (all zeros when no target) and ``no_target`` flags; a
    flag of None leaves ``no_target`` out of the metainfo."""
    gen = torch.Generator().manual_seed(1)
    masks = [(torch.rand(size, size, generator=gen) > 0.5).long() * (flag is not True)
             for flag in flags]
    samples = make_samples(masks)
    for sample, flag in zip(samples, flags):
        if flag is not None:
            sample.set_metainfo(dict(no_target=flag))
    return samples


def test_without_no_target_the_head_is_the_plain_one():
    """Same parameters, outputs and losses as a head built without the argument."""
    torch.manual_seed(0)
    plain = build_head()
    torch.manual_seed(0)
    explicit = build_head(no_target=False, no_target_threshold=0.9,
                          loss_no_target=dict(type='MaskBCELoss', loss_name='loss_other'))
    assert list(explicit.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in explicit.state_dict().items())
    assert not hasattr(explicit, 'no_target_head') and not hasattr(explicit, 'loss_no_target')
    inputs, samples = head_inputs(), no_target_samples([True, False, None])
    with torch.no_grad():
        out = explicit(inputs)
        assert isinstance(out, torch.Tensor) and torch.equal(out, plain(inputs))
        losses = explicit.loss(inputs, samples, train_cfg={})
        assert set(losses) == {'loss_ce', 'acc_seg'}
        expected = plain.loss(inputs, samples, train_cfg={})
        assert all(torch.equal(losses[k], expected[k]) for k in expected)
        metas = [dict(img_shape=(16, 16), pad_shape=(16, 16))] * 3
        predicted = explicit.predict(inputs, metas, test_cfg={})
        assert torch.equal(predicted, plain.predict(inputs, metas, test_cfg={}))


def test_no_target_branch_adds_only_its_parameters_and_keeps_the_mask():
    plain = build_head().eval()
    head = build_head(no_target=True).eval()
    assert sorted(set(head.state_dict()) - set(plain.state_dict())) == NO_TARGET_KEYS
    assert set(plain.state_dict()) <= set(head.state_dict())
    # A plain head's weights load with exactly the branch's keys missing.
    result = head.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(result.missing_keys) == NO_TARGET_KEYS and result.unexpected_keys == []
    inputs = head_inputs()
    with torch.no_grad():
        mask_logits, no_target_logits = head(inputs)
        assert torch.equal(mask_logits, plain(inputs))
        assert no_target_logits.shape == (3, ) and no_target_logits.dtype == torch.float32
        metas = [dict(img_shape=(32, 32), pad_shape=(32, 32))] * 3
        resized, passed = head.predict(inputs, metas, test_cfg={})
    assert resized.shape == (3, 1, 32, 32) and torch.equal(passed, no_target_logits)


def test_no_target_loss_and_accuracy_match_their_definitions():
    head = build_head(no_target=True, no_target_threshold=0.6,
                      loss_no_target=dict(type='MaskBCELoss', loss_weight=0.5,
                                          loss_name='loss_no_target'))
    mask_logits = torch.randn(4, 1, 8, 8)
    no_target_logits = torch.tensor([2.0, -1.0, 0.3, 0.5])  # probabilities .88 .27 .57 .62
    samples = no_target_samples([True, False, True, None], size=8)  # None = False
    losses = head.loss_by_feat((mask_logits, no_target_logits), samples)
    assert set(losses) == {'loss_ce', 'acc_seg', 'loss_no_target', 'acc_no_target'}
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    bce = torch.nn.functional.binary_cross_entropy(no_target_logits.sigmoid(), labels)
    assert torch.allclose(losses['loss_no_target'], 0.5 * bce, atol=1e-6)
    # predicted no target (> 0.6): yes, no, no, yes -> right, right, wrong, wrong
    assert losses['acc_no_target'].item() == pytest.approx(50.0)
    # the mask losses are those of the plain head; a no-target sample's mask target is empty
    plain = build_head().loss_by_feat(mask_logits, samples)
    assert all(torch.equal(losses[k], plain[k]) for k in plain)
    # mmseg's sigmoid cross-entropy gives the same value
    ce = build_head(no_target=True, loss_no_target=dict(
        type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.5, loss_name='loss_no_target'))
    value = ce.loss_by_feat((mask_logits, no_target_logits), samples)['loss_no_target']
    assert torch.allclose(value, losses['loss_no_target'], atol=1e-6)


SHARED_WITH_THE_MASK = ('text_proj.weight', 'mask_decoder.iou_token.weight',
                        'mask_decoder.transformer.layers.0.self_attn.q_proj.weight')


def no_target_gradients(head: SAMDecoderHead) -> dict:
    """Gradients of the no-target loss alone, by parameter name (None: not reached)."""
    losses = head.loss(head_inputs(), no_target_samples([True, False, False]), train_cfg={})
    losses['loss_no_target'].backward()
    return {n: p.grad for n, p in head.named_parameters()}


@pytest.mark.parametrize('detach', [True, False])
def test_gradients_of_the_no_target_loss(detach):
    """Detached (the default), the no-target loss trains only its MLP; jointly, it also trains
    what reads the sentence and the image. Either way the summed loss reaches every parameter."""
    torch.manual_seed(0)
    head = build_head(no_target=True) if detach else build_head(
        no_target=True, detach_no_target=False)
    grads = no_target_gradients(head)
    assert all(grads[key] is not None and grads[key].abs().sum() > 0 for key in NO_TARGET_KEYS)
    reached = [n for n, g in grads.items() if g is not None and g.abs().sum() > 0]
    if detach:
        assert sorted(reached) == NO_TARGET_KEYS
    else:
        assert all(name in reached for name in SHARED_WITH_THE_MASK)
    head.zero_grad(set_to_none=True)
    losses = head.loss(head_inputs(), no_target_samples([True, False, False]), train_cfg={})
    (losses['loss_ce'] + losses['loss_no_target']).backward()
    assert [n for n, p in head.named_parameters() if p.grad is None] == []


def test_detached_branch_leaves_the_mask_training_as_without_it():
    """Built on a fork of the random stream and detached, the branch changes nothing else: the
    same initial weights, the same later random draws, and after an Adam step on the summed
    losses the same mask weights as the plain head's after a step on its mask loss."""
    heads = []
    for options in (dict(), dict(no_target=True)):
        torch.manual_seed(0)
        heads.append((build_head(**options), torch.rand(4)))
    (plain, plain_draw), (head, head_draw) = heads
    assert torch.equal(plain_draw, head_draw)
    shared = {k: v.clone() for k, v in plain.state_dict().items()}
    assert all(torch.equal(head.state_dict()[k], v) for k, v in shared.items())
    for model in (plain, head):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = model.loss(head_inputs(), no_target_samples([True, False, None]), train_cfg={})
        sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
        optimizer.step()
    assert all(torch.equal(head.state_dict()[k], v) for k, v in plain.state_dict().items())
    assert not torch.equal(plain.state_dict()['text_proj.weight'], shared['text_proj.weight'])


def test_no_target_settings_are_checked():
    with pytest.raises(ValueError, match=r"loss_name='loss_ce'.*differ from the mask losses"):
        build_head(no_target=True, loss_no_target=dict(type='MaskBCELoss'))
    with pytest.raises(ValueError, match=r"loss_name='nt'.*start with 'loss_'"):
        build_head(no_target=True, loss_no_target=dict(type='MaskBCELoss', loss_name='nt'))
    with pytest.raises(ValueError, match=r'no_target_threshold .* got 1.5'):
        build_head(no_target=True, no_target_threshold=1.5)
    head = build_head(no_target=True)
    with pytest.raises(ValueError, match=r'no_target=True\) got no no-target logits'):
        head.loss_by_feat(torch.randn(1, 1, 8, 8), no_target_samples([False], size=8))
    with pytest.raises(ValueError, match=r'no_target=False\) got no-target logits'):
        build_head().loss_by_feat((torch.randn(1, 1, 8, 8), torch.zeros(1)),
                                  no_target_samples([False], size=8))
