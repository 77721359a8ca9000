"""A checkpoint of another model is refused before it is scored; broken weights are refused.

An L-DIT and an E-DIT checkpoint have the same keys and shapes, so only the model settings that
MMEngine records (``meta['cfg']``, read without running it) tell them apart.
"""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from refer_model_fixture import REPO_ROOT, write_tiny_model

from dit_sam_mm.apis import init_refer_model
from dit_sam_mm.checkpoint import (CheckpointKeyMismatchError, CheckpointMismatchError,
                                   NonFiniteWeightsError, load_checkpoint_file)
from dit_sam_mm.checkpoint.model_settings import model_cfg_from_checkpoint_meta, setting_mismatches


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny L-DIT with a checkpoint that records its config, as MMEngine writes it."""
    tiny = write_tiny_model(tmp_path_factory.mktemp('tiny'))
    checkpoint = load_checkpoint_file(tiny.checkpoint)
    checkpoint['meta'] = dict(cfg=Config.fromfile(str(tiny.config)).pretty_text, epoch=1)
    torch.save(checkpoint, tiny.checkpoint)
    return tiny


def test_recorded_settings_are_read_from_the_config_text(tiny):
    meta = load_checkpoint_file(tiny.checkpoint)['meta']
    model = model_cfg_from_checkpoint_meta(meta)
    assert model['backbone']['text_mode'] == 'layerwise'
    assert setting_mismatches(meta, Config.fromfile(str(tiny.config)).model) == []


def test_config_text_in_a_checkpoint_is_never_run(tmp_path):
    sentinel = tmp_path / 'ran'
    meta = dict(cfg=f"import os\nos.system('touch {sentinel}')\n"
                f"model = dict(type=__import__('os').system('touch {sentinel}'))\n")
    assert not isinstance(model_cfg_from_checkpoint_meta(meta)['type'], str)  # unknown
    assert setting_mismatches(meta, dict(type='DITSAM')) == []
    assert not sentinel.exists()


def test_an_ldit_checkpoint_is_refused_by_the_edit_config(tiny):
    with pytest.raises(CheckpointMismatchError,
                       match="model.backbone.text_mode: checkpoint 'layerwise', config 'e2e'"):
        init_refer_model(str(tiny.config), str(tiny.checkpoint), device='cpu',
                         cfg_options={'model.backbone.text_mode': 'e2e'})


def test_a_default_sam_config_refuses_the_ldit_checkpoint_unless_partial(tiny):
    options = {'model.backbone.text_mode': 'none'}
    with pytest.raises(CheckpointMismatchError, match='text_mode'):
        init_refer_model(str(tiny.config), str(tiny.checkpoint), device='cpu',
                         cfg_options=options)
    # Without recorded settings the keys alone refuse it: the text injections are unexpected.
    plain = tiny.checkpoint.with_name('plain.pth')
    torch.save(dict(state_dict=load_checkpoint_file(tiny.checkpoint)['state_dict']), plain)
    with pytest.raises(CheckpointKeyMismatchError, match=r'backbone\.text_injections\.0'):
        init_refer_model(str(tiny.config), str(plain), device='cpu', cfg_options=options)
    model, _ = init_refer_model(str(tiny.config), str(plain), device='cpu', cfg_options=options,
                                allow_partial=True)
    assert model.backbone.text_mode == 'none'


def test_test_tool_refuses_another_model_before_scoring(tiny, tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', str(tiny.config), str(tiny.checkpoint), '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', 'model.backbone.text_mode=e2e'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "model.backbone.text_mode: checkpoint 'layerwise', config 'e2e'" in proc.stderr
    assert 'Epoch(test)' not in proc.stdout + proc.stderr  # no sample was evaluated


def test_test_tool_tests_its_checkpoint_not_the_configs_load_from(tiny, tmp_path):
    """A fine-tuning config's load_from names its starting weights: test.py must not load them
    over the checkpoint it was given (here they do not even exist)."""
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', str(tiny.config), str(tiny.checkpoint), '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', f'load_from={tmp_path / "start.pth"}',
         "test_dataloader.dataset.split=['val']"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'oIoU' in proc.stdout + proc.stderr


def test_non_finite_weights_are_refused(tiny, tmp_path):
    checkpoint = load_checkpoint_file(tiny.checkpoint)
    for value in checkpoint['state_dict'].values():
        if value.is_floating_point():
            value.fill_(float('nan'))
    broken = tmp_path / 'nan.pth'
    torch.save(checkpoint, broken)
    with pytest.raises(NonFiniteWeightsError, match='NaN or infinite values in backbone'):
        init_refer_model(str(tiny.config), str(broken), device='cpu')


def test_a_tensor_of_another_shape_is_refused(tiny, tmp_path):
    """Same keys, one shape differs (e.g. another vocabulary): MMEngine would only log it."""
    checkpoint = load_checkpoint_file(tiny.checkpoint)
    embeddings = checkpoint['state_dict']['neck.bert.embeddings.word_embeddings.weight']
    checkpoint['state_dict']['neck.bert.embeddings.word_embeddings.weight'] = torch.cat(
        [embeddings, embeddings[:5]])
    other = tmp_path / 'other_vocabulary.pth'
    torch.save(checkpoint, other)
    with pytest.raises(CheckpointMismatchError,
                       match=r'does not fit the model: .*word_embeddings\.weight'):
        init_refer_model(str(tiny.config), str(other), device='cpu')
