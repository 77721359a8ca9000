"""DITSAM with and without the head's no-target branch: today's model unchanged without it; with
it, the no-target loss, empty masks above the threshold, ``no_target_prob``, checked loading and
the compiled / exported tensor path."""
import copy
import io
import math

import numpy as np
import onnxruntime
import pytest
import torch
from host_sync_guard import forbid_host_sync
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from test_dit_sam import make_batch, model_cfg

from dit_sam_mm.checkpoint.loading import CheckpointKeyMismatchError

NO_TARGET_KEYS = sorted(f'decode_head.no_target_head.layers.{i}.{kind}' for i in range(3)
                        for kind in ('weight', 'bias'))


def head_cfg(**kwargs) -> dict:
    cfg = copy.deepcopy(model_cfg()['decode_head'])
    cfg.update(kwargs)
    return cfg


def build(seed: int = 0, test_cfg: dict = None, **head_options):
    torch.manual_seed(seed)
    options = dict(test_cfg=test_cfg) if test_cfg else {}
    model = MODELS.build(model_cfg(decode_head=head_cfg(**head_options), **options))
    model.init_weights()
    return model


def no_target_batch(flags=(True, None), **kwargs) -> dict:
    """``make_batch`` with ``no_target`` in the metainfo (None: left out) and, for a no-target
    sample, an all-zero mask, as the gRefCOCO pipeline packs them."""
    batch = make_batch(**kwargs)
    for sample, flag in zip(batch['data_samples'], flags):
        if flag is not None:
            sample.set_metainfo(dict(no_target=flag))
        if flag and 'gt_sem_seg' in sample:
            sample.gt_sem_seg.data.zero_()
    return batch


def set_no_target_prob(model, prob: float) -> None:
    """Make the branch answer ``prob`` for every sample (last layer: zero weights, bias)."""
    with torch.no_grad():
        last = model.decode_head.no_target_head.layers[-1]
        last.weight.zero_()
        last.bias.fill_(math.log(prob / (1 - prob)))


def test_no_target_false_is_todays_model():
    plain, explicit = build(), build(no_target=False)
    assert list(explicit.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in explicit.state_dict().items())
    batch = no_target_batch(img_hw=(48, 64), ori_hw=(96, 128))
    data = plain.data_preprocessor(copy.deepcopy(batch), training=True)
    losses, expected = explicit(**data, mode='loss'), plain(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    assert all(torch.equal(losses[k], expected[k]) for k in expected)
    plain.eval()
    explicit.eval()
    with torch.no_grad():
        results = explicit.test_step(copy.deepcopy(batch))
        expected = plain.test_step(copy.deepcopy(batch))
        data = plain.data_preprocessor(copy.deepcopy(batch), training=False)
        tensor = explicit(**data, mode='tensor')
        assert isinstance(tensor, torch.Tensor) and torch.equal(tensor, plain(**data,
                                                                               mode='tensor'))
    for result, reference in zip(results, expected):
        assert 'no_target_prob' not in result.metainfo
        assert torch.equal(result.pred_sem_seg.data, reference.pred_sem_seg.data)
        assert torch.equal(result.seg_logits.data, reference.seg_logits.data)


@pytest.mark.parametrize('threshold_before_resize', [False, True])
def test_masks_are_emptied_above_the_threshold_only(threshold_before_resize):
    test_cfg = dict(mode='whole', threshold_before_resize=threshold_before_resize)
    plain = build(test_cfg=test_cfg).eval()
    batch = no_target_batch(img_hw=(48, 64), ori_hw=(96, 128), with_gt=False)
    with torch.no_grad():
        expected = plain.test_step(copy.deepcopy(batch))
    assert all(r.pred_sem_seg.data.sum() > 0 for r in expected)  # something to empty
    for threshold, emptied in ((0.5, True), (0.9, False)):
        model = build(test_cfg=test_cfg, no_target=True, no_target_threshold=threshold).eval()
        missing = model.load_state_dict(plain.state_dict(), strict=False).missing_keys
        assert sorted(missing) == NO_TARGET_KEYS
        set_no_target_prob(model, 0.7)
        with torch.no_grad():
            results = model.test_step(copy.deepcopy(batch))
        for result, reference in zip(results, expected):
            assert isinstance(result.no_target_prob, float)
            assert result.no_target_prob == pytest.approx(0.7, abs=1e-6)
            # the mask branch is the plain model's; only the answer changes
            assert torch.equal(result.seg_logits.data, reference.seg_logits.data)
            pred = result.pred_sem_seg.data
            assert pred.shape == reference.pred_sem_seg.data.shape
            if emptied:
                assert pred.sum() == 0 and pred.dtype == reference.pred_sem_seg.data.dtype
            else:
                assert torch.equal(pred, reference.pred_sem_seg.data)


def test_probabilities_are_per_sample_and_match_the_tensor_path():
    model = build(no_target=True).eval()
    batch = no_target_batch(with_gt=False)
    with torch.no_grad():
        results = model.test_step(copy.deepcopy(batch))
        data = model.data_preprocessor(copy.deepcopy(batch), training=False)
        mask_logits, no_target_logits = model(**data, mode='tensor')
    assert mask_logits.shape == (2, 1, 16, 16) and no_target_logits.shape == (2, )
    probs = [r.no_target_prob for r in results]
    np.testing.assert_allclose(probs, no_target_logits.sigmoid().numpy(), atol=1e-6)
    # one sample above the threshold, one below
    samples = model.mark_no_target(torch.tensor([2.0, -2.0]), copy.deepcopy(results))
    assert samples[0].pred_sem_seg.data.sum() == 0
    assert torch.equal(samples[1].pred_sem_seg.data, results[1].pred_sem_seg.data)
    assert [s.no_target_prob for s in samples] == pytest.approx([0.8808, 0.1192], abs=1e-4)


@pytest.mark.parametrize('detach', [True, False])
def test_loss_includes_the_no_target_term_and_trains_the_branch(detach):
    model = build(no_target=True, detach_no_target=detach, loss_no_target=dict(
        type='MaskBCELoss', loss_weight=0.5, loss_name='loss_no_target'))
    batch = no_target_batch(flags=(True, None))  # the second sample: missing = False
    data = model.data_preprocessor(copy.deepcopy(batch), training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'decode.loss_no_target',
                           'decode.acc_no_target'}
    _, logits = model(**data, mode='tensor')
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits,
                                                                    torch.tensor([1.0, 0.0]))
    assert torch.allclose(losses['decode.loss_no_target'], 0.5 * expected, atol=1e-6)
    (losses['decode.loss_ce'] + losses['decode.loss_no_target']).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []

    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    values = [float(model.train_step(copy.deepcopy(batch), optim_wrapper)['decode.loss_no_target'])
              for _ in range(6)]
    if detach:  # only the MLP learns it, on tokens the mask loss moves under it
        assert values[-1] < values[0], values
    else:
        assert values == sorted(values, reverse=True) and values[-1] < 0.9 * values[0], values


def test_no_target_loss_does_not_make_the_host_wait(monkeypatch):
    """The training step stays free of host-device synchronisation (see test_efficiency)."""
    model = build(no_target=True)
    batch = no_target_batch(flags=(True, False))
    sync_debug = torch.cuda.is_available()
    if sync_debug:
        model.cuda()
    data = model.data_preprocessor(batch, training=True)
    if sync_debug:
        torch.cuda.set_sync_debug_mode('error')
    try:
        with forbid_host_sync(monkeypatch):
            losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()
    finally:
        if sync_debug:
            torch.cuda.set_sync_debug_mode('default')
    assert 'decode.loss_no_target' in losses
    assert model.decode_head.no_target_head.layers[0].weight.grad is not None


def test_checkpoint_keys_are_checked(tmp_path):
    plain, with_branch = build(), build(no_target=True)
    plain_file, branch_file = tmp_path / 'plain.pth', tmp_path / 'no_target.pth'
    torch.save(dict(state_dict=plain.state_dict()), plain_file)
    torch.save(dict(state_dict=with_branch.state_dict()), branch_file)
    head = head_cfg(no_target=True)
    model = MODELS.build(model_cfg(decode_head=head, pretrained=str(plain_file)))
    with pytest.raises(CheckpointKeyMismatchError, match=r'decode_head\.no_target_head\.layers'):
        model.init_weights()
    model = MODELS.build(model_cfg(decode_head=head, pretrained=str(plain_file),
                                   allowed_missing_keys=['decode_head.no_target_head.*']))
    model.init_weights()
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in plain.state_dict().items())
    model = MODELS.build(model_cfg(pretrained=str(branch_file)))
    with pytest.raises(CheckpointKeyMismatchError, match=r'decode_head\.no_target_head\.layers'):
        model.init_weights()


def test_tensor_path_compiles_as_one_graph_and_exports_to_onnx():
    model = build(no_target=True).eval()
    data = model.data_preprocessor(no_target_batch(with_gt=False), training=False)
    images = data['inputs']
    text_ids, text_mask = model.extract_text(data['data_samples'])
    with torch.no_grad():
        reference = model.mask_logits(images, text_ids, text_mask)
        whole = torch.compile(model.mask_logits, backend='eager', fullgraph=True)
        for ours, expected in zip(whole(images, text_ids, text_mask), reference):
            torch.testing.assert_close(ours, expected)
        model.accelerate_inference('bfloat16', compile_mode=None)
        fast = model.inference_accelerator(images, text_ids, text_mask)
        assert [t.dtype for t in fast] == [torch.float32, torch.float32]
        results = model.predict(images, copy.deepcopy(data['data_samples']))
    probs = reference[1].sigmoid()
    np.testing.assert_allclose([r.no_target_prob for r in results], probs, atol=0.05)

    class TensorPath(torch.nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images, text_ids, text_mask):
            return self.model.mask_logits(images, text_ids, text_mask)

    buffer = io.BytesIO()
    torch.onnx.export(TensorPath(), (images, text_ids, text_mask), buffer, dynamo=False,
                      input_names=['image', 'text_ids', 'text_mask'],
                      output_names=['logits', 'no_target_logits'], opset_version=17)
    session = onnxruntime.InferenceSession(buffer.getvalue())
    outputs = session.run(None, dict(image=images.numpy(), text_ids=text_ids.numpy(),
                                     text_mask=text_mask.numpy()))
    for ours, expected in zip(outputs, reference):
        np.testing.assert_allclose(ours, expected.numpy(), atol=1e-4)
