"""BertNeck: building, layer choice, freezing, pretrained loading and its errors."""
import pytest
import torch
from mmseg.registry import MODELS
from transformers import BertConfig, BertModel

from dit_sam_mm.models.necks import BertNeck

TINY_BERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=32)


def tokens(batch: int = 2, length: int = 6):
    ids = torch.randint(1, 100, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 4:] = 0
    ids[1, 4:] = 0
    return ids, mask


def test_build_from_config_via_registry():
    torch.manual_seed(0)
    neck = MODELS.build(dict(type='BertNeck', bert_cfg=TINY_BERT))
    assert isinstance(neck, BertNeck)
    assert neck.out_channels == 32 and neck.out_layer == 2
    assert neck.bert.pooler is None
    ids, mask = tokens()
    feats, pad_mask = neck(ids, mask)
    assert feats.shape == (2, 6, 32)
    assert pad_mask.dtype == torch.bool and pad_mask.tolist() == mask.bool().tolist()


@pytest.mark.parametrize('out_layer', [0, 1, 2, -1])
def test_out_layer_returns_that_layer_and_keeps_no_unused_params(out_layer):
    torch.manual_seed(0)
    reference = BertModel(BertConfig(**TINY_BERT), add_pooling_layer=False).eval()
    neck = BertNeck(bert_cfg=TINY_BERT, out_layer=out_layer)
    neck.bert.load_state_dict(reference.state_dict(), strict=False)
    neck.eval()
    ids, mask = tokens()
    with torch.no_grad():
        expected = reference(
            input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        feats, _ = neck(ids, mask)
    # hidden_states[0] is the embedding output, hidden_states[k] encoder layer k (1-based)
    index = 2 if out_layer == -1 else out_layer
    assert torch.allclose(feats, expected[index], atol=1e-6)
    assert len(neck.bert.encoder.layer) == index

    neck.train()
    feats, _ = neck(ids, mask)
    feats.sum().backward()
    no_grad = [n for n, p in neck.named_parameters() if p.grad is None]
    assert no_grad == []


def test_invalid_out_layer():
    with pytest.raises(ValueError, match='out_layer'):
        BertNeck(bert_cfg=TINY_BERT, out_layer=3)


def test_frozen_neck_has_no_trainable_params_and_stays_in_eval():
    neck = BertNeck(bert_cfg=TINY_BERT, frozen=True)
    assert all(not p.requires_grad for p in neck.parameters())
    neck.train()
    assert not neck.bert.training
    ids, mask = tokens()
    feats_a, _ = neck(ids, mask)
    feats_b, _ = neck(ids, mask)
    assert torch.equal(feats_a, feats_b)  # no dropout
    assert not feats_a.requires_grad


def test_pretrained_directory_loads_and_init_weights_keeps_it(tmp_path):
    torch.manual_seed(0)
    saved = BertModel(BertConfig(**TINY_BERT))
    saved.save_pretrained(tmp_path)
    neck = BertNeck(pretrained=str(tmp_path), out_layer=1)
    neck.init_weights()
    assert len(neck.bert.encoder.layer) == 1
    for name, value in neck.bert.state_dict().items():
        assert torch.equal(value, saved.state_dict()[name]), name


@pytest.mark.parametrize('path', ['/nonexistent/bert-base-uncased', './data/bert', '~/no/bert'])
def test_missing_local_path_names_it_and_says_how_to_get_it(path):
    with pytest.raises(FileNotFoundError) as info:
        BertNeck(pretrained=path)
    message = str(info.value)
    assert path in message
    assert 'huggingface-cli download bert-base-uncased' in message


def test_needs_exactly_one_source():
    with pytest.raises(ValueError, match='exactly one'):
        BertNeck()
    with pytest.raises(ValueError, match='exactly one'):
        BertNeck(pretrained='bert-base-uncased', bert_cfg=TINY_BERT)
