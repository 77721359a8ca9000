"""Packing of a referring-segmentation sample for the model."""
from typing import Sequence

import numpy as np
import torch

from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

#: PackSegInputs' default meta keys plus the referring-expression ones
#: (the token counts are those of ``TokenizeText``; ``no_target`` is that of
#: gRefCOCO samples, packed only when the sample has it).
REFER_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                   'pad_shape', 'img_padding_size', 'scale_factor', 'flip',
                   'flip_direction', 'sentence', 'ref_id', 'sent_id', 'split',
                   'num_tokens', 'num_unknown_tokens', 'num_dropped_tokens',
                   'no_target')


@TRANSFORMS.register_module()
class PackReferSegInputs(PackSegInputs):
    """``PackSegInputs`` that also packs the tokenized sentence.

    Produces ``inputs`` (uint8 CHW tensor) and a ``SegDataSample`` with
    ``gt_sem_seg`` (when ``gt_seg_map`` exists; all zeros for a no-target
    gRefCOCO sample), the data fields
    ``text_ids`` and ``text_mask`` (LongTensor (L,), set with ``set_data``
    so the data preprocessor moves them to the device) and the metainfo
    named in ``meta_keys``.

    Required keys: ``img``, ``text_ids``, ``text_mask``.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults
            to :data:`REFER_META_KEYS` (PackSegInputs' keys + ``sentence``,
            ``ref_id``, ``sent_id``, ``split``, ``TokenizeText``'s token
            counts and gRefCOCO's ``no_target``). A key the sample lacks is
            left out of the metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = REFER_META_KEYS) -> None:
        super().__init__(meta_keys=tuple(meta_keys))

    def transform(self, results: dict) -> dict:
        """Pack image, mask, token ids and metainfo.

        Args:
            results (dict): Output of the pipeline so far.

        Returns:
            dict: ``inputs`` and ``data_samples``.
        """
        missing = [k for k in ('text_ids', 'text_mask') if k not in results]
        if missing:
            raise KeyError(
                f'PackReferSegInputs needs {missing} for ref_id='
                f'{results.get("ref_id")}: put TokenizeText in the pipeline')
        packed = super().transform(results)
        packed['data_samples'].set_data(
            dict(
                text_ids=torch.from_numpy(
                    np.asarray(results['text_ids'], dtype=np.int64)),
                text_mask=torch.from_numpy(
                    np.asarray(results['text_mask'], dtype=np.int64))))
        return packed
