"""DITSAM segmentor: loss / predict / tensor modes, training, gradients and checked loading."""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from dit_sam_mm.models.segmentors import DITSAM
from dit_sam_mm.checkpoint.loading import CheckpointKeyMismatchError

init_default_scope('mmseg')  # the data preprocessor is built by its mmseg type name

DIM = 32  # SAM neck / decoder width
TEXT = 32  # BERT width
LENGTH = 6  # padded text length
TINY_BERT = dict(
    hidden_size=TEXT,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=32,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0)


def model_cfg(text_mode: str = 'layerwise', **kwargs) -> dict:
    cfg = dict(
        type='DITSAM',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=False,
            size=(64, 64),
            pad_val=0,
            seg_pad_val=255,
            test_cfg=dict(size=(64, 64))),
        backbone=dict(
            type='DITSAMViT',
            arch=dict(
                embed_dims=32,
                num_layers=2,
                num_heads=2,
                feedforward_channels=64,
                global_attn_indexes=[1]),
            img_size=64,
            window_size=2,
            out_channels=DIM,
            text_mode=text_mode,
            text_dims=TEXT,
            injection=dict(type='LinearTextInjection', drop_rate=0.0, zero_init=True)),
        neck=dict(type='BertNeck', bert_cfg=TINY_BERT, out_layer=1),
        decode_head=dict(
            type='SAMDecoderHead', in_channels=DIM, text_dim=TEXT, num_heads=2, mlp_dim=64),
        test_cfg=dict(mode='whole'))
    cfg.update(kwargs)
    return cfg


def build_model(text_mode: str = 'layerwise', **kwargs) -> DITSAM:
    model = MODELS.build(model_cfg(text_mode, **kwargs))
    model.init_weights()
    return model


def make_batch(img_hw=(64, 64), ori_hw=(64, 64), with_gt=True, seed=0) -> dict:
    """Two packed samples as the data pipeline would produce them."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    lengths = [LENGTH, 3]
    for length in lengths:
        inputs.append(torch.randint(0, 256, (3, *img_hw), generator=gen, dtype=torch.uint8))
        sample = SegDataSample(
            metainfo=dict(
                img_shape=img_hw,
                ori_shape=ori_hw,
                pad_shape=img_hw,
                flip=False,
                sentence='the left dog',
                ref_id=0,
                sent_id=length,
                split='train'))
        ids = torch.zeros(LENGTH, dtype=torch.long)
        ids[:length] = torch.randint(1, 100, (length, ), generator=gen)
        mask = torch.zeros(LENGTH, dtype=torch.long)
        mask[:length] = 1
        sample.set_data(dict(text_ids=ids, text_mask=mask))
        if with_gt:
            gt = torch.zeros(1, *img_hw, dtype=torch.uint8)
            gt[:, img_hw[0] // 4:img_hw[0] // 2, img_hw[1] // 3:] = 1
            sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('text_mode', ['none', 'e2e', 'layerwise'])
def test_loss_and_every_trainable_parameter_gets_a_gradient(text_mode):
    torch.manual_seed(0)
    model = build_model(text_mode)
    data = model.data_preprocessor(make_batch(img_hw=(64, 48)), training=True)
    assert data['inputs'].shape == (2, 3, 64, 64)
    losses = model(**data, mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    assert any(n.startswith('neck.') for n in trainable)
    assert any(n.startswith('backbone.text_injections.') for n in trainable) == (
        text_mode != 'none')


def test_predict_returns_binary_masks_at_the_original_size():
    torch.manual_seed(0)
    model = build_model().eval()
    # an image resized to 48 x 64 (long side 64) from 96 x 128, padded to 64 x 64
    batch = make_batch(img_hw=(48, 64), ori_hw=(96, 128), with_gt=False)
    with torch.no_grad():
        results = model.test_step(copy.deepcopy(batch))
        data = model.data_preprocessor(batch, training=False)
        low_res = model(**data, mode='tensor')
    assert data['inputs'].shape == (2, 3, 64, 64)  # padded bottom to 64 x 64
    # expected: logits at the padded input size, padding rows cropped, resized to ori_shape
    expected = resize(low_res, size=(64, 64), mode='bilinear')[:, :, :48, :]
    expected = resize(expected, size=(96, 128), mode='bilinear').sigmoid()
    assert len(results) == 2
    for result, expected_probs in zip(results, expected):
        pred = result.pred_sem_seg.data
        probs = result.seg_logits.data
        assert pred.shape == (1, 96, 128)
        assert torch.allclose(probs, expected_probs, atol=1e-5)
        assert set(pred.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(pred, (probs > 0.35).to(pred))


def released_post_processing(logits: torch.Tensor, img_hw, ori_hw, threshold=0.35) -> np.ndarray:
    """The authors' test code, written from its description: sigmoid > threshold at the input
    size, crop the resized image, cv2.resize the float 0/1 mask to the original size, > 0."""
    binary = (logits.sigmoid() > threshold).float().numpy()[0, :img_hw[0], :img_hw[1]]
    return cv2.resize(binary, (ori_hw[1], ori_hw[0])) > 0


def test_threshold_before_resize_is_the_released_post_processing():
    torch.manual_seed(0)
    model = build_model(test_cfg=dict(mode='whole', threshold_before_resize=True)).eval()
    # an image resized to 48 x 64 from 60 x 80 (x1.25 back up), padded bottom to 64 x 64
    batch = make_batch(img_hw=(48, 64), ori_hw=(60, 80), with_gt=False)
    samples = [copy.deepcopy(s) for s in batch['data_samples']]
    for sample in samples:
        sample.set_metainfo(dict(padding_size=[0, 0, 0, 16]))
    logits = torch.randn(2, 1, 64, 64)
    results = model.threshold_then_resize(logits, samples)
    for result, sample_logits in zip(results, logits):
        expected = released_post_processing(sample_logits, (48, 64), (60, 80))
        assert 0 < expected.sum() < expected.size
        np.testing.assert_array_equal(result.pred_sem_seg.data[0].numpy().astype(bool), expected)
    # the pixels kept beyond MMSeg's resize-then-threshold: the release's masks are larger
    mmseg_way = model.postprocess_result(logits.clone(), copy.deepcopy(samples))
    assert all(r.pred_sem_seg.data.sum() > m.pred_sem_seg.data.sum()
               for r, m in zip(results, mmseg_way))
    # predict() goes this way when the test_cfg asks for it
    with torch.no_grad():
        predicted = model.test_step(copy.deepcopy(batch))
        data = model.data_preprocessor(copy.deepcopy(batch), training=False)
        logits = model.encode_decode(data['inputs'], data['data_samples'])
    for result, sample_logits in zip(predicted, logits):
        np.testing.assert_array_equal(result.pred_sem_seg.data[0].numpy().astype(bool),
                                      released_post_processing(sample_logits, (48, 64), (60, 80)))
    with pytest.raises(ValueError, match='unknown keys'):
        build_model(test_cfg=dict(mode='whole', threshold_before_resise=True))


def test_tensor_mode_returns_low_res_logits():
    model = build_model().eval()
    data = model.data_preprocessor(make_batch(), training=False)
    with torch.no_grad():
        logits = model(**data, mode='tensor')
    assert logits.shape == (2, 1, 16, 16)  # 4x the 4 x 4 embedding grid


def test_train_step_decreases_the_loss():
    torch.manual_seed(0)
    model = build_model('layerwise')
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    batch = make_batch()
    values = []
    for _ in range(6):
        log_vars = model.train_step(copy.deepcopy(batch), optim_wrapper)
        values.append(log_vars['loss'].item())
    assert values[-1] < 0.95 * values[0], values


def test_text_is_required():
    model = build_model().eval()
    batch = make_batch()
    del batch['data_samples'][1].text_ids
    data = model.data_preprocessor(batch, training=False)
    with pytest.raises(KeyError, match='text_ids'):
        model(**data, mode='predict')
    with pytest.raises(ValueError, match='text_ids'):
        model.predict(data['inputs'], None)
    with pytest.raises(ValueError, match='whole'):
        build_model(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32)))
    with pytest.raises(ValueError, match='decode_head expects 48-d'):
        build_model(decode_head=dict(type='SAMDecoderHead', in_channels=DIM, text_dim=48,
                                     num_heads=2, mlp_dim=64))
    backbone = model_cfg()['backbone']
    with pytest.raises(ValueError, match='backbone expects 48-d'):
        build_model(backbone={**backbone, 'text_dims': 48})


def test_checked_loading(tmp_path):
    torch.manual_seed(0)
    source = build_model()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    state = {k: v for k, v in source.state_dict().items()
             if not k.startswith(('neck.', 'backbone.text_injections.', 'decode_head.text_proj.'))}
    converted = tmp_path / 'converted.pth'
    torch.save(dict(state_dict=state, meta=dict(source='test')), converted)

    torch.manual_seed(1)
    allowed = ['neck.*', 'backbone.text_injections.*', 'decode_head.text_proj.*']
    model = MODELS.build(model_cfg(pretrained=str(converted), allowed_missing_keys=allowed))
    neck_before = {k: v.clone() for k, v in model.neck.state_dict().items()}
    head_proj_before = model.decode_head.text_proj.weight.clone()
    model.init_weights()
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # BERT stays as BertNeck built it, zero-initialised injections stay zero
    for key, value in model.neck.state_dict().items():
        assert torch.equal(value, neck_before[key]), key
    for param in model.backbone.text_injections.parameters():
        assert torch.count_nonzero(param) == 0
    assert torch.equal(model.decode_head.text_proj.weight, head_proj_before)

    # Not allowing the missing BERT keys fails, naming them.
    strict = MODELS.build(model_cfg(pretrained=str(converted), allowed_missing_keys=allowed[1:]))
    with pytest.raises(CheckpointKeyMismatchError, match=r'neck\.bert\.embeddings'):
        strict.init_weights()

    # An unexpected key fails, naming it, and leaves the model untouched.
    bogus = tmp_path / 'bogus.pth'
    torch.save({**state, 'decode_head.mask_decoder.iou_prediction_head.layers.0.weight':
                torch.zeros(1)}, bogus)
    model = MODELS.build(model_cfg(pretrained=str(bogus), allowed_missing_keys=allowed))
    with pytest.raises(CheckpointKeyMismatchError,
                       match=r'decode_head\.mask_decoder\.iou_prediction_head\.layers\.0\.weight'):
        model.init_weights()
    # ... unless it is explicitly allowed.
    model = MODELS.build(model_cfg(
        pretrained=str(bogus),
        allowed_missing_keys=allowed,
        allowed_unexpected_keys=['decode_head.mask_decoder.iou_prediction_head.*']))
    model.init_weights()

    missing = tmp_path / 'missing.pth'
    model = MODELS.build(model_cfg(pretrained=str(missing)))
    with pytest.raises(FileNotFoundError, match='sam2mmseg'):
        model.init_weights()


def test_official_sam_layout_loads_with_exactly_the_documented_differences(tmp_path):
    """segment_anything state dict -> convert_sam_checkpoint -> DITSAM(pretrained=...)."""
    from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder,
                                           TwoWayTransformer)

    from dit_sam_mm.models.backbones import convert_sam_checkpoint
    from dit_sam_mm.models.decode_heads import is_dropped_sam_decoder_key

    torch.manual_seed(0)
    sam_parts = dict(
        image_encoder=ImageEncoderViT(
            img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
            out_chans=DIM, qkv_bias=True, use_rel_pos=True, window_size=2,
            global_attn_indexes=(1, )),
        prompt_encoder=PromptEncoder(
            embed_dim=DIM, image_embedding_size=(4, 4), input_image_size=(64, 64),
            mask_in_chans=8),
        mask_decoder=MaskDecoder(
            transformer_dim=DIM,
            transformer=TwoWayTransformer(depth=2, embedding_dim=DIM, num_heads=2, mlp_dim=64),
            iou_head_hidden_dim=DIM))
    official = {f'{part}.{key}': value for part, module in sam_parts.items()
                for key, value in module.state_dict().items()}
    converted = tmp_path / 'sam_tiny_mmseg.pth'
    state_dict = convert_sam_checkpoint(official)
    # the converter leaves out exactly the decoder parts the head does not build
    dropped = {k for k in official if is_dropped_sam_decoder_key(k)}
    assert dropped and not any(k.endswith(tuple(dropped)) for k in state_dict)
    torch.save(dict(state_dict=state_dict), converted)

    # only the text parts are new; nothing of the converted checkpoint is unexpected
    model = MODELS.build(model_cfg(
        pretrained=str(converted),
        allowed_missing_keys=['neck.*', 'backbone.text_injections.*', 'decode_head.text_proj.*']))
    model.init_weights()
    loaded = model.state_dict()
    # every decoder / prompt-encoder tensor of the head comes from the official one
    head_keys = [k for k in loaded if k.startswith('decode_head.') and 'text_proj' not in k]
    assert len(head_keys) > 20
    for key in head_keys:
        assert torch.equal(loaded[key], official[key[len('decode_head.'):]]), key
