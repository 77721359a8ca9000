"""Your own referring-segmentation data: the custom JSON Lines format as an MMSeg dataset."""
from typing import Dict, List, Sequence, Union

from mmseg.registry import DATASETS
from .custom_format import read_custom_file
from .grefcoco import GRefCOCODataset
from .refcoco import RefCOCODataset


@DATASETS.register_module()
class CustomReferDataset(GRefCOCODataset):
    """Referring segmentation data in the custom JSON Lines format (one file per split).

    The format (one record per line: image, sentences, target as polygons, COCO RLE, a mask
    image or no target) is described in ``docs/en/custom_data.md`` and
    :mod:`dit_sam_mm.datasets.custom_format`. The dataset reads ``ann_file`` with ``{split}``
    replaced by each split name, so ``split=['val', 'test']`` reads ``val.jsonl`` and
    ``test.jsonl`` and every sample remembers its split.

    Its data list is built by the same code as :class:`RefCOCODataset` and
    :class:`GRefCOCODataset`, so the samples carry the same fields and run through the same
    pipelines and metrics:

    - ``generalized=False``: each record has exactly one object; samples are RefCOCO samples
      (``ann_id``, ``segmentation``, ``category_id``), scored with ``ReferSegMetric``.
    - ``generalized=True``: records may have several objects or ``"no_target": true``; samples
      are gRefCOCO samples (``ann_ids``, ``segmentations``, ``category_id`` list, ``no_target``),
      scored with ``GRESMetric``.

    ``image_id`` is the image's path in the file; ``ref_id`` and ``sent_id`` are the record's and
    sentence's ids; annotation ids count from 1 in file order. Mask images are read (their size
    checked first) and kept as compressed RLE when the data list is built.

    Args:
        ann_file (str): The split files, relative to ``data_root``; ``{split}`` is replaced by
            the split name. Defaults to ``'{split}.jsonl'``.
        split (str | Sequence[str]): Split(s) to read. Defaults to ``'train'``.
        generalized (bool): Allow several objects or none per record (gRefCOCO samples).
            Defaults to False.
        **kwargs: The other arguments of :class:`RefCOCODataset` (``sample_mode``,
            ``data_root``, ``data_prefix`` (``img_path``: the image root, which ``image`` and
            ``mask`` paths are relative to), ``pipeline``, ``test_mode``, ``indices``, ...).
    """

    def __init__(self,
                 ann_file: str = '{split}.jsonl',
                 split: Union[str, Sequence[str]] = 'train',
                 *,
                 generalized: bool = False,
                 **kwargs) -> None:
        if 'sentence_key' in kwargs or 'split_file' in kwargs:
            raise ValueError('CustomReferDataset takes neither sentence_key nor split_file: '
                             'the sentences and splits are those of the ann_file records')
        self.generalized = generalized
        super().__init__(ann_file=ann_file, split_file='', split=split, include_crowd=True,
                         **kwargs)

    def split_path(self, split: str) -> str:
        """The file of one split.

        Args:
            split (str): The split name.

        Returns:
            str: ``ann_file`` with ``{split}`` replaced.
        """
        return self.ann_file.replace('{split}', split)

    def _ref_entry(self, ref: dict, images: Dict[str, dict],
                   annotations: Dict[int, dict]) -> dict:
        if self.generalized:
            return super()._ref_entry(ref, images, annotations)
        if len(ref['ann_id']) != 1:
            what = 'no target' if ref['no_target'] else f'{len(ref["ann_id"])} objects'
            raise ValueError(
                f'{self.split_file}, line {ref["line"]}: the record has {what}; a dataset of '
                'several or no objects per sentence needs generalized=True (and GRESMetric)')
        return RefCOCODataset._ref_entry(self, dict(ref, ann_id=ref['ann_id'][0]), images,
                                         annotations)

    def load_data_list(self) -> List[dict]:
        """Read every split's file, one data-list entry per record."""
        data_list = []
        image_root = self.data_prefix.get('img_path', '')
        for split in self.splits:
            self.split_file = self.split_path(split)  # named by the inherited messages
            parsed = read_custom_file(self.split_file, split, mask_root=image_root)
            data_list += [self._ref_entry(ref, parsed.images, parsed.annotations)
                          for ref in parsed.refs]
        return data_list
