"""What the inferencer returns for one (image, sentence) pair."""
from typing import List, NamedTuple, Optional

import numpy as np


class TokenCounts(NamedTuple):
    """How much of the sentence the model read, as counted by ``TokenizeText``.

    Attributes:
        num_tokens (int): Word pieces of the sentence (without [CLS] and [SEP]).
        num_unknown (int): Pieces not in the model's vocabulary, read as [UNK].
        num_dropped (int): Pieces past the tokenizer's ``max_length - 2`` that the model never
            saw (0 when the whole sentence was read).
    """
    num_tokens: int
    num_unknown: int
    num_dropped: int

    @property
    def num_kept(self) -> int:
        """Pieces the model read."""
        return self.num_tokens - self.num_dropped

    @property
    def truncated(self) -> bool:
        """Whether the end of the sentence was cut off."""
        return self.num_dropped > 0

    def warnings(self) -> List[str]:
        """What a user should be told: most pieces unknown, or the sentence cut off.

        Returns:
            List[str]: One line per problem; empty when the model read the sentence.
        """
        lines = []
        if self.num_tokens and self.num_unknown == self.num_tokens:
            lines.append(f'none of the {self.num_tokens} word pieces of the sentence is in the '
                         "model's vocabulary (all read as [UNK]): the mask does not follow the "
                         'sentence; use words like those the model was trained on')
        elif 2 * self.num_unknown > self.num_tokens:
            lines.append(f'{self.num_unknown} of the {self.num_tokens} word pieces of the '
                         "sentence are not in the model's vocabulary (read as [UNK]): the mask "
                         'may not follow the sentence; use words like those the model was '
                         'trained on')
        if self.truncated:
            lines.append(f'the sentence has {self.num_tokens} word pieces but the model reads only '
                         f'the first {self.num_kept}: the last {self.num_dropped} were dropped; '
                         'shorten it')
        return lines


class ReferSegResult(NamedTuple):
    """The prediction for one (image, sentence) pair, at the image's original size.

    Attributes:
        mask (np.ndarray): (H, W) bool, the referred object (probability > the head's
            ``threshold``); empty when the model predicts that the sentence names nothing in the
            image (``no_target``).
        score (float): Confidence: the mean probability over the mask's pixels (0 for an empty
            mask).
        probs (np.ndarray, optional): (H, W) float32 probabilities in [0, 1] (sigmoid of the
            logits), when asked for with ``return_probs``.
        visualization (np.ndarray, optional): RGB picture (mask overlay and sentence), when
            asked for with ``draw`` or ``out_dir``.
        tokens (TokenCounts, optional): How many word pieces of the sentence were unknown to the
            model's vocabulary or cut off by truncation (:meth:`TokenCounts.warnings` says when
            the mask cannot follow the sentence). None when the config's tokenizer is not
            ``TokenizeText``.
        no_target_prob (float, optional): The probability that the sentence names nothing in
            the image, from a model whose head has the no-target branch
            (``SAMDecoderHead(no_target=True)``); None for a model without it.
        no_target (bool): The no-target probability is above the head's
            ``no_target_threshold``: the model answers "no matching object" and ``mask`` is
            empty (``probs`` keeps the mask branch's probabilities). Always False for a model
            without the branch.
    """
    mask: np.ndarray
    score: float
    probs: Optional[np.ndarray] = None
    visualization: Optional[np.ndarray] = None
    tokens: Optional[TokenCounts] = None
    no_target_prob: Optional[float] = None
    no_target: bool = False

    @property
    def area(self) -> int:
        """Pixels in the mask."""
        return int(np.count_nonzero(self.mask))

    def summary(self) -> List[str]:
        """The result in words, one line per fact, as the demos report it.

        Returns:
            List[str]: The no-target answer (for a model with that branch), the mask area, the
            score and (with ``tokens``) how many word pieces the model read. What a user should
            be warned about is in ``tokens.warnings()``.
        """
        lines = []
        if self.no_target:
            lines.append(f'no matching object (no-target probability {self.no_target_prob:.3f})')
        elif self.no_target_prob is not None:
            lines.append(f'no-target probability: {self.no_target_prob:.3f}')
        height, width = self.mask.shape
        lines.append(f'mask area: {self.area} px ({100.0 * self.area / (height * width):.1f}% of '
                     f'the {width}x{height} image)')
        lines.append(f'score: {self.score:.3f} (mean probability inside the mask)')
        if self.tokens is not None:
            lines.append(f'word pieces: {self.tokens.num_tokens}, {self.tokens.num_unknown} '
                         f'unknown (read as [UNK]), {self.tokens.num_kept} read, '
                         f"{self.tokens.num_dropped} dropped past the tokenizer's length")
        return lines


def token_counts(meta: dict) -> Optional[TokenCounts]:
    """The token counts ``TokenizeText`` put in a sample's metainfo (None without them)."""
    keys = ('num_tokens', 'num_unknown_tokens', 'num_dropped_tokens')
    if not all(key in meta for key in keys):
        return None
    return TokenCounts(*(int(meta[key]) for key in keys))
