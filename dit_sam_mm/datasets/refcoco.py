"""RefCOCO / RefCOCO+ / RefCOCOg datasets in the REFER layout."""
import json
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.utils import is_abs

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from .refer_pickle import brief_repr, load_refs

SAMPLE_MODES = ('sentence', 'ref')


def read_json_file(path: str, what: str) -> object:
    """Read a JSON annotation file, naming the file in every error.

    Args:
        path (str): The file.
        what (str): What the file should be, for the messages (e.g.
            ``'an instances.json'``).

    Returns:
        object: The decoded JSON value.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not UTF-8 JSON (a truncated download: the
            position is named), or nests deeper than Python's recursion limit.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'REFER annotation file not found: {path!r}')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(
            f'{path!r} is not valid JSON: {err.msg} (line {err.lineno}, '
            f'column {err.colno}, character {err.pos:,} of '
            f'{osp.getsize(path):,} bytes); a truncated or damaged copy? '
            'Download or generate it again') from err
    except UnicodeDecodeError as err:
        raise ValueError(f'{path!r} is not UTF-8 text (byte {err.start:,}): '
                         f'not {what}') from err
    except RecursionError:
        raise ValueError(f'{path!r} nests its lists and objects too deep to '
                         f'read (thousands of levels): not {what}') from None


def read_instances_json(path: str) -> dict:
    """Read a REFER ``instances.json``, naming the file in every error.

    Args:
        path (str): The file.

    Returns:
        dict: The COCO-format content, with ``images`` and ``annotations``
        lists.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not UTF-8 JSON (a truncated download: the
            position is named), or lacks the ``images`` / ``annotations``
            lists.
    """
    instances = read_json_file(path, 'an instances.json')
    if not isinstance(instances, dict):
        raise ValueError(f'{path!r} holds a JSON {type(instances).__name__}, '
                         'not the COCO-format object of an instances.json')
    for key in ('images', 'annotations'):
        if not isinstance(instances.get(key), list):
            raise ValueError(f'{path!r} has no {key!r} list: not a '
                             'COCO-format instances.json')
    return instances


@DATASETS.register_module()
class RefCOCODataset(BaseSegDataset):
    """Referring segmentation data in the REFER layout (RefCOCO family).

    The REFER layout is an ``instances.json`` (COCO format: ``images``,
    ``annotations`` with polygon or RLE ``segmentation``) next to a pickled
    list of refs, ``refs(unc).p`` / ``refs(umd).p`` / ``refs(google).p``. A ref
    names one annotation (``ann_id``), one image and several sentences. This
    reads RefCOCO, RefCOCO+ and RefCOCOg (umd and google splits) and SynthRef.

    The data list holds one entry per ref with the annotation's segmentation
    (still encoded) and the image size; ``LoadReferAnnotations`` decodes the
    mask in the pipeline, so the dataset stays small and, with
    ``serialize_data=True``, is shared by dataloader workers.

    Each sample handed to the pipeline carries ``img_path``, ``sentence``,
    ``ref_id``, ``sent_id``, ``ann_id``, ``image_id``, ``category_id``,
    ``split``, ``segmentation``, ``height``, ``width`` and ``seg_fields``.

    Args:
        ann_file (str): ``instances.json``, relative to ``data_root``.
            Defaults to ``'instances.json'``.
        split_file (str): The refs pickle, relative to ``data_root``.
            Defaults to ``'refs(unc).p'``.
        split (str | Sequence[str]): Split(s) to read, e.g. ``'train'`` or
            ``['val', 'testA', 'testB']``; each sample remembers its split.
            Defaults to ``'train'``.
        sample_mode (str): ``'sentence'``: one sample per sentence of every
            ref (the evaluation protocol). ``'ref'``: one sample per ref with
            a sentence drawn at random each time the ref is read (training,
            as the authors' code does). Defaults to ``'sentence'``.
        sentence_key (str): Key of a REFER sentence dict holding the text:
            ``'raw'`` (as typed by the annotator) or ``'sent'`` (cleaned
            lower-case). Defaults to ``'raw'``.
        data_root (str, optional): Root of ``ann_file``, ``split_file`` and
            ``data_prefix``. Defaults to None.
        data_prefix (dict): ``img_path``: folder of the images, relative to
            ``data_root``. Defaults to ``dict(img_path='')``.
        metainfo (dict, optional): Overrides :attr:`METAINFO`.
            Defaults to None.
        indices (int | Sequence[int], optional): Keep only these refs (every
            sentence of them in ``'sentence'`` mode). Defaults to None.
        serialize_data (bool): Keep the data list as one numpy byte buffer.
            Defaults to True.
        pipeline (list): Data transforms. Defaults to ``[]``.
        test_mode (bool): Test phase (pipeline errors are raised, not
            retried with another sample). Defaults to False.
        lazy_init (bool): Defer reading the files. Defaults to False.
        max_refetch (int): Retries when the pipeline returns None.
            Defaults to 1000.
        backend_args (dict, optional): Unused file-backend arguments kept
            for the MMSeg interface. Defaults to None.
    """

    METAINFO = dict(classes=('background', 'object'),
                    palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self,
                 ann_file: str = 'instances.json',
                 split_file: str = 'refs(unc).p',
                 split: Union[str, Sequence[str]] = 'train',
                 sample_mode: str = 'sentence',
                 sentence_key: str = 'raw',
                 data_root: Optional[str] = None,
                 data_prefix: dict = dict(img_path=''),
                 metainfo: Optional[dict] = None,
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True,
                 pipeline: List[Union[dict, Callable]] = [],
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 backend_args: Optional[dict] = None) -> None:
        if sample_mode not in SAMPLE_MODES:
            raise ValueError(f'sample_mode must be one of {SAMPLE_MODES}, '
                             f'got {sample_mode!r}')
        self.split_file = split_file
        self.splits = [split] if isinstance(split, str) else list(split)
        if not self.splits:
            raise ValueError('split must name at least one split')
        self.sample_mode = sample_mode
        self.sentence_key = sentence_key
        # For every entry of the data list: how many sentences its ref has;
        # in 'sentence' mode sample i is sentence _sample_sent[i] of ref
        # _sample_ref[i].
        self._sentence_counts = np.zeros(0, dtype=np.int32)
        self._sample_ref = np.zeros(0, dtype=np.int32)
        self._sample_sent = np.zeros(0, dtype=np.int32)
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            indices=indices,
            serialize_data=serialize_data,
            pipeline=pipeline,
            test_mode=test_mode,
            lazy_init=lazy_init,
            max_refetch=max_refetch,
            backend_args=backend_args)

    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.split_file and not is_abs(self.split_file) and self.data_root:
            self.split_file = osp.join(self.data_root, self.split_file)

    def _read_instances(self, needed_ann_ids: set) -> tuple:
        """Read images and the annotations the selected refs point to."""
        instances = read_instances_json(self.ann_file)
        images = {img['id']: img for img in instances['images']}
        annotations = {
            ann['id']: ann
            for ann in instances['annotations'] if ann['id'] in needed_ann_ids
        }
        return images, annotations

    def _sentences_of(self, ref: dict) -> List[tuple]:
        """Return ``[(sent_id, text), ...]`` of a ref, refusing empty text."""
        sentences = []
        for position, sent in enumerate(ref['sentences']):
            sent_id = sent.get('sent_id', position)
            where = (f'{self.split_file!r}: ref_id={ref["ref_id"]} '
                     f'sent_id={sent_id}')
            if self.sentence_key not in sent:
                raise ValueError(
                    f'{where} has no {self.sentence_key!r} text (keys: '
                    f'{sorted(map(str, sent))}); set sentence_key')
            text = sent[self.sentence_key]
            if not isinstance(text, str):
                raise ValueError(
                    f'{where}: {self.sentence_key!r} is {brief_repr(text)} of '
                    f'type {type(text).__name__}, not the text of a sentence')
            if not text.strip():
                raise ValueError(f'{where} has an empty sentence {text!r}')
            sentences.append((sent_id, text))
        if not sentences:
            raise ValueError(f'{self.split_file!r}: ref_id={ref["ref_id"]} '
                             'has no sentences')
        return sentences

    def _load_refs(self) -> List[dict]:
        """Read the refs file (``refs(*).p``) through the safe unpickler."""
        return load_refs(self.split_file)

    def _target_ann_ids(self, ref: dict) -> List[int]:
        """The annotation ids a ref points to (exactly one in RefCOCO)."""
        return [ref['ann_id']]

    def _select_refs(self, refs: List[dict]) -> List[dict]:
        """The refs of :attr:`splits`, split by split, refusing unknown ones."""
        available = sorted({str(ref['split']) for ref in refs})
        unknown = [s for s in self.splits if s not in available]
        if unknown:
            raise ValueError(
                f'Unknown split(s) {unknown} for {self.split_file!r}; '
                f'available splits: {available}')
        by_split: Dict[str, List[dict]] = {s: [] for s in self.splits}
        for ref in refs:
            if ref['split'] in by_split:
                by_split[ref['split']].append(ref)
        return [ref for s in self.splits for ref in by_split[s]]

    def _annotation_of(self, ref: dict, ann_id: int,
                       annotations: Dict[int, dict]) -> dict:
        """Annotation ``ann_id`` of ``ref``, checked to be on its image."""
        ann = annotations.get(ann_id)
        if ann is None:
            raise ValueError(
                f'ref_id={ref["ref_id"]} points to ann_id={ann_id}, which is '
                f'not in {self.ann_file!r} (refs file {self.split_file!r})')
        if ann['image_id'] != ref['image_id']:
            raise ValueError(
                f'ref_id={ref["ref_id"]}: ann_id={ann_id} belongs '
                f'to image_id={ann["image_id"]}, not {ref["image_id"]} '
                f'(refs file {self.split_file!r})')
        return ann

    def _image_entry(self, ref: dict, images: Dict[int, dict]) -> dict:
        """The part of a data-list entry every REFER-style ref shares."""
        image = images.get(ref['image_id'])
        if image is None:
            raise ValueError(
                f'ref_id={ref["ref_id"]} points to image_id='
                f'{ref["image_id"]}, which is not in {self.ann_file!r}')
        return dict(
            img_path=osp.join(self.data_prefix.get('img_path', ''),
                              image['file_name']),
            ref_id=ref['ref_id'],
            image_id=ref['image_id'],
            split=ref['split'],
            height=image['height'],
            width=image['width'],
            sentences=self._sentences_of(ref))

    def _ref_entry(self, ref: dict, images: Dict[int, dict],
                   annotations: Dict[int, dict]) -> dict:
        """One data-list entry: the ref's image, annotation and sentences."""
        ann = self._annotation_of(ref, ref['ann_id'], annotations)
        return dict(
            self._image_entry(ref, images),
            ann_id=ref['ann_id'],
            category_id=ann.get('category_id', ref.get('category_id')),
            segmentation=ann['segmentation'])

    def load_data_list(self) -> List[dict]:
        """Read the refs of the selected splits, one entry per ref."""
        selected = self._select_refs(self._load_refs())
        images, annotations = self._read_instances(
            {i for ref in selected for i in self._target_ann_ids(ref)})
        return [self._ref_entry(ref, images, annotations) for ref in selected]

    def full_init(self) -> None:
        """Load the data list, then index its sentences."""
        if self._fully_initialized:
            return
        self.data_list = self.load_data_list()
        self.data_list = self.filter_data()
        if self._indices is not None:
            self.data_list = self._select_indices(self._indices)
        self._set_sentence_counts(
            [len(info['sentences']) for info in self.data_list])
        if self.serialize_data:
            self.data_bytes, self.data_address = self._serialize_data()
        self._fully_initialized = True

    def _select_indices(self, indices: Union[int, Sequence[int]]) -> List[dict]:
        """The refs ``indices`` keeps, refusing a selection of none."""
        total = len(self.data_list)
        where = (f'{type(self).__name__} indices={brief_repr(indices)} ({total} refs '
                 f'in split(s) {self.splits} of {self.split_file!r})')
        if type(indices) is not int and not (
                isinstance(indices, Sequence) and not isinstance(indices, str)
                and all(type(i) is int for i in indices)):
            raise ValueError(f'{where}: indices must be an int (keep the first N refs, the '
                             'last -N) or a list of ref positions')
        try:
            selected = self._get_unserialized_subset(indices)
        except IndexError:
            raise ValueError(f'{where} names a position past the last ref') from None
        if not selected:
            raise ValueError(f'{where} selects no ref: give a count other than 0 or a '
                             'non-empty list of positions')
        return selected

    def _set_sentence_counts(self, counts: Sequence[int]) -> None:
        self._sentence_counts = np.asarray(counts, dtype=np.int32)
        self._sample_ref = np.repeat(
            np.arange(len(counts), dtype=np.int32), self._sentence_counts)
        starts = np.cumsum(self._sentence_counts) - self._sentence_counts
        self._sample_sent = (np.arange(len(self._sample_ref), dtype=np.int32)
                             - np.repeat(starts, self._sentence_counts))

    def _recount_sentences(self) -> None:
        self._set_sentence_counts([
            len(BaseDataset.get_data_info(self, i)['sentences'])
            for i in range(self.num_refs)
        ])

    def get_subset_(self, indices: Union[Sequence[int], int]) -> None:
        """Keep only the refs at ``indices`` (positions in the ref list)."""
        super().get_subset_(indices)
        self._recount_sentences()

    def get_subset(self, indices: Union[Sequence[int], int]) -> BaseDataset:
        """Return a copy holding only the refs at ``indices``."""
        subset = super().get_subset(indices)
        subset._recount_sentences()
        return subset

    @property
    def num_refs(self) -> int:
        """Number of refs held (the entries of the data list)."""
        if not self._fully_initialized:
            self.full_init()
        return BaseDataset.__len__(self)

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        if self.sample_mode == 'ref':
            return self.num_refs
        return len(self._sample_ref)

    def get_data_info(self, idx: int) -> dict:
        """Return sample ``idx``: a ref with one chosen sentence."""
        length = len(self)
        if not -length <= idx < length:
            raise IndexError(f'sample index {idx} out of range for '
                             f'{length} samples')
        idx = idx % length
        if self.sample_mode == 'ref':
            ref_idx = idx
            info = BaseDataset.get_data_info(self, ref_idx)
            choice = np.random.randint(len(info['sentences']))
        else:
            ref_idx = int(self._sample_ref[idx])
            info = BaseDataset.get_data_info(self, ref_idx)
            choice = int(self._sample_sent[idx])
        sent_id, sentence = info.pop('sentences')[choice]
        info.update(
            sample_idx=idx,
            sent_id=sent_id,
            sentence=sentence,
            seg_fields=[],
            reduce_zero_label=False)
        return info
