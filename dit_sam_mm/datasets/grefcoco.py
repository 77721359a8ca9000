"""gRefCOCO (generalized referring segmentation): many targets or none."""
from typing import Dict, List, Tuple

from mmseg.registry import DATASETS
from .refcoco import RefCOCODataset, read_json_file
from .refer_pickle import brief_repr, check_refs, load_plain_pickle

#: The ``ann_id`` of a gref that names nothing in its image.
NO_TARGET_ID = -1


def gref_targets(ref: dict, source: str) -> Tuple[List[int], bool]:
    """The target annotation ids of a gref, and whether it has none.

    ``ann_id`` is a list of annotation ids or a bare int; ``[-1]`` (or
    ``-1``) marks a no-target gref. An optional ``no_target`` flag must
    agree with it.

    Args:
        ref (dict): A gref with ``ref_id`` and ``ann_id``.
        source (str): The refs file, for error messages.

    Returns:
        tuple[list[int], bool]: The distinct target ids in file order
        (empty for no target) and the no-target flag.

    Raises:
        ValueError: ``ann_id`` is empty, not made of ints, mixes -1 with
            real ids, or disagrees with ``no_target``.
    """
    where = f'{source!r}: ref_id={ref.get("ref_id")}'
    value = ref['ann_id']
    ids = value if isinstance(value, list) else [value]
    if not ids or not all(type(i) is int for i in ids):
        raise ValueError(f'{where} has ann_id={brief_repr(value)}; expected an '
                         'annotation id or a non-empty list of them')
    no_target = NO_TARGET_ID in ids
    if no_target and len(ids) > 1:
        raise ValueError(
            f'{where} has ann_id={brief_repr(value)}, which mixes {NO_TARGET_ID} (no '
            'target) with annotation ids; a no-target gref has ann_id '
            f'[{NO_TARGET_ID}]')
    flag = ref.get('no_target')
    if flag is not None and bool(flag) != no_target:
        raise ValueError(f'{where}: no_target={brief_repr(flag)} disagrees '
                         f'with ann_id={brief_repr(value)}')
    return ([] if no_target else list(dict.fromkeys(ids))), no_target


def read_grefs_file(path: str) -> List[dict]:
    """Read a gRefCOCO refs file as it is (``ann_id`` not normalised).

    A name ending in ``.p`` / ``.pkl`` is read by :func:`load_plain_pickle`
    (it builds plain data only, never runs code); any other as JSON.

    Args:
        path (str): ``grefs(unc).json`` or ``grefs(unc).p``.

    Returns:
        list[dict]: The grefs, each with at least :data:`REQUIRED_REF_KEYS`.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a list of grefs or a gref lacks a key.
    """
    refs = (load_plain_pickle(path) if path.endswith(('.p', '.pkl'))
            else read_json_file(path, 'a gRefCOCO refs file'))
    return check_refs(refs, path, multi_target=True)


def load_grefs(path: str) -> List[dict]:
    """Read gRefCOCO refs with ``ann_id`` normalised.

    Args:
        path (str): ``grefs(unc).json`` or ``grefs(unc).p`` (see
            :func:`read_grefs_file`).

    Returns:
        list[dict]: Copies of the grefs whose ``ann_id`` is the list of
        target ids (empty for no target) and ``no_target`` a bool.

    Raises:
        ValueError: As :func:`read_grefs_file`, or a gref's ``ann_id`` is
            malformed (see :func:`gref_targets`).
    """
    grefs = []
    for ref in read_grefs_file(path):
        ann_ids, no_target = gref_targets(ref, path)
        grefs.append(dict(ref, ann_id=ann_ids, no_target=no_target))
    return grefs


@DATASETS.register_module()
class GRefCOCODataset(RefCOCODataset):
    """gRefCOCO: sentences naming several objects, one, or none.

    The layout is RefCOCO's with ``grefs(unc).json`` (or a ``grefs(unc).p``
    pickle, read safely) next to ``instances.json``. A gref's ``ann_id`` is
    a list of annotation ids (a bare int is accepted) and ``[-1]`` when the
    sentence names nothing in the image. The ground truth is the union of
    the targets' masks, decoded by ``LoadReferAnnotations``; all zeros for
    no target. Sampling (``sample_mode``), splits and sentences are as in
    :class:`RefCOCODataset`.

    Each sample carries what a RefCOCO sample does, except that ``ann_id``
    and ``segmentation`` are replaced by ``ann_ids`` (target annotation
    ids; empty for no target), ``segmentations`` (their COCO
    segmentations, same order) and ``category_id`` is the list of their
    categories; ``no_target`` (bool) is added. A target gref whose targets
    are all crowd annotations keeps ``no_target=False`` with empty
    ``ann_ids`` unless ``include_crowd=True`` (as the GRES reference code,
    which drops crowd annotations from the union).

    Args:
        ann_file (str): ``instances.json``, relative to ``data_root``.
            Defaults to ``'instances.json'``.
        split_file (str): The grefs file, relative to ``data_root``; a name
            ending in ``.p`` / ``.pkl`` is read as a pickle, any other as
            JSON. Defaults to ``'grefs(unc).json'``.
        include_crowd (bool): Keep crowd (``iscrowd=1``) annotations among
            the targets. Defaults to False (the GRES reference protocol).
        **kwargs: The other arguments of :class:`RefCOCODataset`
            (``split``, ``sample_mode``, ``sentence_key``, ``data_root``,
            ``data_prefix``, ``pipeline``, ``test_mode``, ...), with the
            same defaults.
    """

    def __init__(self,
                 ann_file: str = 'instances.json',
                 split_file: str = 'grefs(unc).json',
                 *,
                 include_crowd: bool = False,
                 **kwargs) -> None:
        self.include_crowd = include_crowd
        super().__init__(ann_file=ann_file, split_file=split_file, **kwargs)

    def _load_refs(self) -> List[dict]:
        return load_grefs(self.split_file)

    def _target_ann_ids(self, ref: dict) -> List[int]:
        return ref['ann_id']

    def _ref_entry(self, ref: dict, images: Dict[int, dict],
                   annotations: Dict[int, dict]) -> dict:
        targets = [
            ann for ann in (self._annotation_of(ref, ann_id, annotations)
                            for ann_id in ref['ann_id'])
            if self.include_crowd or not ann.get('iscrowd', 0)
        ]
        return dict(
            self._image_entry(ref, images),
            ann_ids=[ann['id'] for ann in targets],
            category_id=[ann.get('category_id') for ann in targets],
            segmentations=[ann['segmentation'] for ann in targets],
            no_target=ref['no_target'])
