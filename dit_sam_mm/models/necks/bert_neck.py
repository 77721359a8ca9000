"""BERT text encoder used as the "neck" of DIT-SAM: token ids -> per-token text features."""
import os
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor
from transformers import BertConfig, BertModel

from ...utils.paths import looks_like_local_path

_DOWNLOAD_HINT = ('Get the weights on a machine with internet access, e.g. '
                  '`huggingface-cli download bert-base-uncased --local-dir {path}`, and copy the '
                  'directory here (it holds config.json, the weights and vocab.txt).')


@MODELS.register_module()
class BertNeck(BaseModule):
    """BERT text encoder returning per-token features and the padding mask.

    Built on ``transformers.BertModel`` (Devlin et al., 2018). DIT-SAM feeds the features to the
    image encoder (E-DIT / L-DIT text injection) and to the mask decoder (sparse prompts).

    Layer numbering (``out_layer``): BERT's encoder layers are numbered 1..N (N =
    ``num_hidden_layers``, 12 for BERT-base); ``out_layer=k`` returns the output of encoder layer
    k, ``out_layer=0`` the embedding-layer output, and ``out_layer=-1`` (default) the last layer,
    as in the paper. The authors' released code uses ``out_layer=1``, the output of the first
    encoder layer. The layers above ``out_layer`` and BERT's pooler are removed from the model, so
    every parameter is used in the forward pass (DDP needs no ``find_unused_parameters``) and
    checkpoints do not carry them.

    The BERT weights come from ``pretrained`` when the neck is built; ``init_weights`` leaves
    them as they are (a segmentor's ``init_weights`` therefore does not re-initialise BERT).

    Args:
        pretrained (str, optional): A local directory saved by ``save_pretrained`` /
            ``huggingface-cli download``, or a hub name such as ``'bert-base-uncased'``; loaded
            with ``BertModel.from_pretrained``. A missing local directory raises
            ``FileNotFoundError`` naming it. Defaults to None.
        bert_cfg (dict, optional): Keyword arguments of ``transformers.BertConfig``; builds a
            randomly initialised BERT (tests, or training from scratch). Exactly one of
            ``pretrained`` and ``bert_cfg`` must be given. Defaults to None.
        out_layer (int): Which output to return (see above): -1 = last layer, 0 = embeddings,
            k in 1..N = encoder layer k. Defaults to -1.
        frozen (bool): Freeze BERT: no parameter requires grad and the model stays in eval
            mode (no dropout) even when the segmentor trains. Defaults to False.
    """

    def __init__(self,
                 pretrained: Optional[str] = None,
                 bert_cfg: Optional[dict] = None,
                 out_layer: int = -1,
                 frozen: bool = False) -> None:
        super().__init__(init_cfg=None)
        if (pretrained is None) == (bert_cfg is None):
            raise ValueError('BertNeck needs exactly one of `pretrained` (a local BERT directory '
                             'or hub name) and `bert_cfg` (a BertConfig dict), got '
                             f'pretrained={pretrained!r}, bert_cfg={bert_cfg!r}')
        if pretrained is not None:
            self.bert = self._load_pretrained(pretrained)
        else:
            self.bert = BertModel(BertConfig(**bert_cfg), add_pooling_layer=False)
        self.bert.pooler = None  # never used: per-token features only

        num_layers = len(self.bert.encoder.layer)
        if out_layer == -1:
            out_layer = num_layers
        if not 0 <= out_layer <= num_layers:
            raise ValueError(f'out_layer must be -1 (last), 0 (embeddings) or 1..{num_layers} '
                             f'(encoder layer), got {out_layer}')
        # Keep only the layers whose output is used (layer k is encoder.layer[k - 1]).
        self.bert.encoder.layer = self.bert.encoder.layer[:out_layer]
        self.bert.config.num_hidden_layers = out_layer
        self.out_layer = out_layer

        self.frozen = frozen
        if frozen:
            self.bert.requires_grad_(False)
            self.bert.eval()

    @staticmethod
    def _load_pretrained(name: str) -> BertModel:
        """Load BERT from a local directory or the hub, with errors that say what to do."""
        local = os.path.expanduser(name)
        if os.path.exists(local):
            return BertModel.from_pretrained(local, add_pooling_layer=False)
        if looks_like_local_path(name):
            raise FileNotFoundError(
                f'BertNeck: the pretrained BERT directory {name!r} does not exist '
                f'(resolved to {os.path.abspath(local)!r}). ' + _DOWNLOAD_HINT.format(path=name))
        try:
            return BertModel.from_pretrained(name, add_pooling_layer=False)
        except OSError as err:
            raise OSError(
                f'BertNeck: could not load BERT {name!r}: it is no local directory '
                f'({os.path.abspath(local)!r} does not exist) and the Hugging Face hub did not '
                'provide it (no internet access?). ' + _DOWNLOAD_HINT.format(path=name)) from err

    @property
    def out_channels(self) -> int:
        """Channels of the returned text features (BERT's hidden size)."""
        return self.bert.config.hidden_size

    def init_weights(self) -> None:
        """Keep BERT's weights: they were loaded (or initialised by transformers) in __init__."""
        self._is_init = True

    def train(self, mode: bool = True) -> 'BertNeck':
        """Set the training mode; a frozen BERT stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.bert.eval()
        return self

    def forward(self, text_ids: Tensor, text_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode token ids.

        Args:
            text_ids (Tensor): (B, L) token ids (LongTensor).
            text_mask (Tensor): (B, L), 1/True for real tokens, 0/False for padding.

        Returns:
            Tuple[Tensor, Tensor]: features (B, L, hidden_size) of ``out_layer`` and the mask
            (B, L) bool, True = real token.
        """
        pad_mask = text_mask.bool()
        # A (B, L, L) mask rather than (B, L): for a 2-D mask transformers' SDPA path tests
        # ``torch.all(mask == 1)`` on the host (a device synchronisation in every step) to drop
        # an all-ones mask. The 3-D mask is expanded to the same additive mask without it.
        attention_mask = pad_mask[:, None, :].expand(-1, pad_mask.shape[1], -1).long()
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            outputs = self.bert(input_ids=text_ids, attention_mask=attention_mask)
        return outputs.last_hidden_state, pad_mask
