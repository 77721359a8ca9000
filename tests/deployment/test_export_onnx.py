"""tools/deployment/export_onnx.py: the exported tiny model matches PyTorch in onnxruntime."""
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample
from refer_model_fixture import REPO_ROOT, write_tiny_model
from tool_loader import load_tool

from dit_sam_mm.apis import MaskLogitsModel, export_onnx, init_refer_model
from dit_sam_mm.apis.onnx_export import example_inputs, preprocessing_spec

RELEASED = {'model.backbone.mask_text_padding': False,
            'model.decode_head.mask_text_padding': False}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny model with every zero-initialised parameter randomised, as training leaves them:
    the text injections (done by ``write_tiny_model``) and SAM's relative position tables, whose
    zeros hid a wrong export of the relative bias (0.01 here, 1.4 on a trained model)."""
    tiny = write_tiny_model(tmp_path_factory.mktemp('tiny_onnx'))
    checkpoint = torch.load(tiny.checkpoint, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    for name, value in checkpoint['state_dict'].items():
        if 'rel_pos' in name:
            value.copy_(torch.randn(value.shape, generator=generator) * 0.5)
    torch.save(checkpoint, tiny.checkpoint)
    return tiny


def run_onnx(path, inputs):
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(['logits'], dict(image=inputs[0].numpy(), text_ids=inputs[1].numpy(),
                                        text_mask=inputs[2].numpy()))[0]


def test_command_line_export_with_metadata(tiny, tmp_path, capsys):
    tool = load_tool('tools/deployment/export_onnx.py')
    out = tmp_path / 'onnx' / 'tiny.onnx'
    assert tool.main([str(tiny.config), str(tiny.checkpoint), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    difference = float(printed.rsplit('max abs difference', 1)[1].split()[0])
    assert difference <= 1e-4 and '(tolerance 1e-03)' in printed
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta == dict(input_size='64x64', resize_backend='cv2', bgr_to_rgb='True',
                        mean='[123.675, 116.28, 103.53]', std='[58.395, 57.12, 57.375]',
                        pad_value='0.0', pad_position='bottom-right', text_length='20',
                        threshold='0.35', align_corners='False')


def test_command_line_fails_when_onnxruntime_disagrees(tiny, tmp_path, monkeypatch, capsys):
    tool = load_tool('tools/deployment/export_onnx.py')
    monkeypatch.setattr(tool, 'max_abs_difference', lambda model, path: 0.5)
    out = tmp_path / 'tiny.onnx'
    monkeypatch.setattr('sys.argv', ['export_onnx.py', str(tiny.config), str(tiny.checkpoint),
                                     '--out', str(out)])
    assert tool.run_main(tool.main, 'export_onnx.py') == 1
    assert 'difference 5.00e-01 exceeds --tolerance 1e-03' in capsys.readouterr().err


def test_preprocessing_spec_of_the_official_config_says_pil_and_centred():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/dit/ldit_vitb_refcoco_official.py'))
    head = SimpleNamespace(decode_head=SimpleNamespace(threshold=0.35, align_corners=True))
    spec = preprocessing_spec(cfg, head)
    assert spec['resize_backend'] == 'pillow' and spec['pad_position'] == 'centre'
    assert spec['input_size'] == '512x512' and spec['align_corners'] == 'True'


@pytest.mark.parametrize('options', [None, RELEASED], ids=['masked_padding', 'released'])
def test_exported_logits_match_pytorch_for_any_batch_size(tiny, tmp_path, options):
    model, cfg = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu', options)
    out = tmp_path / 'tiny.onnx'
    export_onnx(model, cfg, str(out))
    wrapper = MaskLogitsModel(model).eval()
    for batch in (1, 3):
        inputs = example_inputs(batch, (64, 64), 20, model.neck.bert.config.vocab_size, seed=5)
        with torch.no_grad():
            expected = wrapper(*inputs).numpy()
        got = run_onnx(out, inputs)
        assert got.shape == (batch, 1, 64, 64)
        assert np.abs(got - expected).max() <= 1e-4


def test_wrapper_equals_the_segmentor_logits(tiny):
    """What is exported is what DITSAM.predict post-processes."""
    model, _ = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu')
    image, text_ids, text_mask = example_inputs(2, (64, 64), 20, 30, seed=3)
    samples = []
    for ids, mask in zip(text_ids, text_mask):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                             ori_shape=(64, 64)))
        sample.set_data(dict(text_ids=ids, text_mask=mask))
        samples.append(sample)
    with torch.no_grad():
        expected = model.encode_decode(image, samples)
        got = MaskLogitsModel(model).eval()(image, text_ids, text_mask)
    torch.testing.assert_close(got, expected)


def test_exported_relative_position_bias_is_kept(tiny, tmp_path):
    """With non-zero relative-position tables (every SAM checkpoint has them; the tiny checkpoint's
    are SAM's zero initialisation) the exported logits still match PyTorch."""
    model, cfg = init_refer_model(str(tiny.config), str(tiny.checkpoint), 'cpu')
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.backbone.named_parameters():
            if 'rel_pos' in name:
                param.copy_(torch.randn(param.shape, generator=gen))
    out = tmp_path / 'tiny_rel_pos.onnx'
    export_onnx(model, cfg, str(out))
    inputs = example_inputs(2, (64, 64), 20, model.neck.bert.config.vocab_size, seed=5)
    with torch.no_grad():
        expected = MaskLogitsModel(model).eval()(*inputs).numpy()
    assert np.abs(run_onnx(out, inputs) - expected).max() <= 1e-4


def test_a_no_target_head_exports_its_logits_too(tiny, tmp_path):
    options = {'model.decode_head.no_target': True}
    model, cfg = init_refer_model(str(tiny.config), None, 'cpu', options)
    with torch.no_grad():
        for param in model.decode_head.no_target_head.parameters():
            param.normal_(std=0.5)
    out = tmp_path / 'no_target.onnx'
    spec = export_onnx(model, cfg, str(out))
    assert spec['no_target_threshold'] == '0.5'
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == ['logits', 'no_target_logits']
    inputs = example_inputs(3, (64, 64), 20, model.neck.bert.config.vocab_size, seed=2)
    logits, no_target = session.run(None, dict(image=inputs[0].numpy(),
                                               text_ids=inputs[1].numpy(),
                                               text_mask=inputs[2].numpy()))
    with torch.no_grad():
        expected_logits, expected_no_target = MaskLogitsModel(model).eval()(*inputs)
    assert no_target.shape == (3, )
    np.testing.assert_allclose(logits, expected_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(no_target, expected_no_target.numpy(), atol=1e-4)
