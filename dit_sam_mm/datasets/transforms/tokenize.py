"""BERT WordPiece tokenization of the referring sentence."""
import os
import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS

#: The files of a tokenizer folder, one of which BertTokenizerFast needs.
TOKENIZER_FILES = ('vocab.txt', 'tokenizer.json')


def build_bert_tokenizer(tokenizer: Optional[str] = None,
                         vocab_file: Optional[str] = None,
                         do_lower_case: bool = True):
    """Build a fast BERT WordPiece tokenizer from local files only.

    Args:
        tokenizer (str, optional): Folder written by
            ``save_pretrained`` (``vocab.txt``, ``tokenizer.json``, ...), or
            a model name already in the local Hugging Face cache.
        vocab_file (str, optional): A WordPiece ``vocab.txt``, one token a
            line, holding ``[PAD] [UNK] [CLS] [SEP] [MASK]``.
        do_lower_case (bool): Lower-case (and strip accents) before
            splitting; only used with ``vocab_file``. Defaults to True.

    Returns:
        transformers.BertTokenizerFast

    Raises:
        ValueError: Neither or both of ``tokenizer`` and ``vocab_file``.
        FileNotFoundError: ``vocab_file`` does not exist, or the folder
            ``tokenizer`` holds none of :data:`TOKENIZER_FILES`.
        OSError: ``tokenizer`` is neither a folder nor a cached model.
    """
    from transformers import BertTokenizerFast
    if (tokenizer is None) == (vocab_file is None):
        raise ValueError('Give exactly one of tokenizer= (a local tokenizer '
                         'folder) and vocab_file= (a vocab.txt)')
    if vocab_file is not None:
        if not osp.isfile(vocab_file):
            raise FileNotFoundError(f'vocab_file not found: {vocab_file!r}')
        return BertTokenizerFast(
            vocab_file=vocab_file, do_lower_case=do_lower_case)
    if osp.isdir(tokenizer) and not any(
            osp.isfile(osp.join(tokenizer, name))
            for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f'tokenizer folder {tokenizer!r} holds neither '
            f'{" nor ".join(TOKENIZER_FILES)} (it holds '
            f'{sorted(os.listdir(tokenizer))[:8] or "nothing"}): save the '
            'tokenizer there with save_pretrained, or give vocab_file=')
    try:
        return BertTokenizerFast.from_pretrained(
            tokenizer, local_files_only=True)
    except OSError as err:
        raise OSError(
            f'Cannot load a BERT tokenizer from {tokenizer!r} without '
            'network access: give a folder holding vocab.txt (and '
            'tokenizer_config.json), or vocab_file=') from err


@TRANSFORMS.register_module()
class TokenizeText(BaseTransform):
    """Turn ``results['sentence']`` into fixed-length BERT token ids.

    The ids are ``[CLS]`` + at most ``max_length - 2`` WordPiece tokens +
    ``[SEP]``, padded with ``[PAD]`` to ``max_length`` (20 in DIT-SAM's
    recipe). Run it after ``ReferRandomFlip``.

    Required keys: ``sentence``.
    Added keys: ``text_ids`` (np.int64, (max_length,)), ``text_mask``
    (np.int64, (max_length,), 1 = real token incl. [CLS]/[SEP], 0 = padding),
    and how much of the sentence the model reads (``PackReferSegInputs``
    puts the counts in the metainfo; the inferencer reports them):
    ``num_tokens`` (int, the sentence's word pieces without [CLS]/[SEP]),
    ``num_unknown_tokens`` (int, those not in the vocabulary, read as
    [UNK]) and ``num_dropped_tokens`` (int, the pieces past
    ``max_length - 2`` cut off by truncation; 0 = the whole sentence is read).

    Args:
        tokenizer (str, optional): Local tokenizer folder (e.g. a saved
            ``bert-base-uncased``). Defaults to None.
        vocab_file (str, optional): WordPiece vocabulary file; used instead
            of ``tokenizer``. Defaults to None.
        max_length (int): Length of ``text_ids`` including [CLS] and [SEP].
            Defaults to 20.
        do_lower_case (bool): Lower-case text (``vocab_file`` only).
            Defaults to True.
    """

    def __init__(self,
                 tokenizer: Optional[str] = None,
                 vocab_file: Optional[str] = None,
                 max_length: int = 20,
                 do_lower_case: bool = True) -> None:
        if max_length < 3:
            raise ValueError(f'max_length must be >= 3 ([CLS] word [SEP]), '
                             f'got {max_length}')
        self.tokenizer_path = tokenizer
        self.vocab_file = vocab_file
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        self.tokenizer = build_bert_tokenizer(tokenizer, vocab_file,
                                              do_lower_case)
        # The word pieces come from the tokenizer's Rust backend, which the
        # Python wrapper's __call__ runs too (after about 40 us of argument
        # handling a sentence); without the truncation or padding a
        # tokenizer.json may set, as __call__ switches them off.
        self._encoder = self.tokenizer.backend_tokenizer
        self._encoder.no_truncation()
        self._encoder.no_padding()
        self._cls_id = self.tokenizer.cls_token_id
        self._sep_id = self.tokenizer.sep_token_id
        self._pad_id = self.tokenizer.pad_token_id
        self._unk_id = self.tokenizer.unk_token_id

    def transform(self, results: dict) -> dict:
        """Add the token ids, attention mask and token counts to ``results``.

        Args:
            results (dict): Sample holding ``sentence``.

        Returns:
            dict: ``results`` with the token ids and attention mask.
        """
        sentence = results.get('sentence')
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(
                f'Empty sentence {sentence!r} for ref_id='
                f'{results.get("ref_id")} sent_id={results.get("sent_id")} '
                f'(image {results.get("img_path")!r})')
        # Tokenised once: the word pieces, then [CLS] pieces [SEP] cut and padded to max_length
        # (what the tokenizer's truncation='longest_first' does to one sentence).
        pieces = self._encoder.encode(sentence, add_special_tokens=False).ids
        budget = self.max_length - 2  # [CLS] and [SEP]
        ids = [self._cls_id] + pieces[:budget] + [self._sep_id]
        padding = self.max_length - len(ids)
        results['text_ids'] = np.asarray(
            ids + [self._pad_id] * padding, dtype=np.int64)
        results['text_mask'] = np.asarray(
            [1] * len(ids) + [0] * padding, dtype=np.int64)
        results['num_tokens'] = len(pieces)
        results['num_unknown_tokens'] = pieces.count(self._unk_id)
        results['num_dropped_tokens'] = max(len(pieces) - budget, 0)
        return results

    def __repr__(self) -> str:
        source = (f'vocab_file={self.vocab_file!r}' if self.vocab_file else
                  f'tokenizer={self.tokenizer_path!r}')
        return (f'{self.__class__.__name__}({source}, '
                f'max_length={self.max_length})')
