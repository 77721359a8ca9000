"""Tiny hand-written REFER and gRefCOCO datasets, a WordPiece vocabulary.

The REFER fixture folder has the REFER layout::

    ROOT/images/fixture_00000{1,2,3}.jpg
    ROOT/instances.json   # polygon, compressed RLE and crowd (list) RLE masks
    ROOT/refs(unc).p      # 6 refs over train / val / testA / testB

The gRefCOCO fixture folder has the same images and instances.json and
``grefs(unc).json`` (7 grefs: multi-target, no-target, a bare-int ann_id,
a crowd target and a crowd-only ref).
"""
import copy
import json
import pickle
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image
from pycocotools import mask as mask_utils

import dit_sam_mm  # noqa: F401  (registers the components)

# (file name, width, height)
IMAGES = {1: ('fixture_000001.jpg', 40, 30), 2: ('fixture_000002.jpg', 36, 24),
          3: ('fixture_000003.jpg', 32, 32)}


def _crowd_counts(mask: np.ndarray) -> list:
    """Uncompressed COCO RLE counts (column-major, starting with zeros)."""
    flat = mask.flatten(order='F')
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return counts


def _instances() -> dict:
    rle_mask = np.zeros((30, 40), dtype=np.uint8)
    rle_mask[5:20, 25:38] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    crowd_mask = np.zeros((24, 36), dtype=np.uint8)
    crowd_mask[2:8, 3:9] = 1
    crowd_mask[12:20, 20:33] = 1
    return dict(
        images=[dict(id=i, file_name=f, width=w, height=h)
                for i, (f, w, h) in IMAGES.items()],
        annotations=[
            dict(id=101, image_id=1, category_id=1, iscrowd=0,
                 segmentation=[[2.0, 3.5, 18.2, 4.0, 15.0, 25.7, 3.0, 22.0],
                               [20.0, 20.0, 24.0, 20.0, 22.0, 28.0]]),
            dict(id=102, image_id=1, category_id=2, iscrowd=0,
                 segmentation=dict(size=[30, 40],
                                   counts=rle['counts'].decode('ascii'))),
            dict(id=201, image_id=2, category_id=1, iscrowd=1,
                 segmentation=dict(size=[24, 36],
                                   counts=_crowd_counts(crowd_mask))),
            dict(id=202, image_id=2, category_id=3, iscrowd=0,
                 segmentation=[[30.0, 1.0, 35.0, 1.0, 35.0, 9.0, 30.0, 9.0]]),
            dict(id=301, image_id=3, category_id=2, iscrowd=0,
                 segmentation=[[16.0, 4.0, 28.0, 16.0, 16.0, 28.0, 4.0,
                                16.0]]),
            dict(id=302, image_id=3, category_id=3, iscrowd=0,
                 segmentation=[[1.0, 25.0, 12.0, 25.0, 12.0, 31.0, 1.0,
                                31.0]]),
            dict(id=999, image_id=3, category_id=3, iscrowd=0,  # no ref
                 segmentation=[[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]]),
        ],
        categories=[dict(id=1, name='person'), dict(id=2, name='cup'),
                    dict(id=3, name='box')])


def _ref(ref_id, ann_id, image_id, split, sentences):
    sents = [dict(sent_id=sid, raw=raw, sent=raw.lower(),
                  tokens=raw.lower().split()) for sid, raw in sentences]
    return dict(ref_id=ref_id, ann_id=ann_id, image_id=image_id, split=split,
                category_id=1, sent_ids=[s['sent_id'] for s in sents],
                sentences=sents, file_name=f'fixture_{image_id:06d}_{ann_id}.jpg')


def _refs() -> list:
    return [
        _ref(1, 101, 1, 'train', [(10, 'the man on the left'),
                                  (11, 'Left person'), (12, 'leftmost guy')]),
        _ref(2, 102, 1, 'train', [(20, 'right cup')]),
        _ref(3, 201, 2, 'val', [(30, 'crowd of people'), (31, 'the group')]),
        _ref(4, 202, 2, 'testA', [(40, 'small box')]),
        _ref(5, 301, 3, 'testB', [(50, 'the round thing'), (51, 'circle')]),
        _ref(6, 302, 3, 'train', [(60, 'bottom shape'),
                                  (61, 'lowest thing on the right side')]),
    ]


def write_refer_folder(root: Path, refs: Optional[list] = None,
                       instances: Optional[dict] = None,
                       skip_images: tuple = ()) -> Path:
    """Write the fixture (or a variant of it) into ``root``."""
    _write_images_and_instances(root, instances, skip_images)
    with open(root / 'refs(unc).p', 'wb') as f:
        pickle.dump(_refs() if refs is None else refs, f, protocol=2)
    return root


def _write_images_and_instances(root: Path, instances: Optional[dict],
                                skip_images: tuple) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / 'images').mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for image_id, (name, width, height) in IMAGES.items():
        if name in skip_images:
            continue
        pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / 'images' / name, quality=95)
    with open(root / 'instances.json', 'w') as f:
        json.dump(_instances() if instances is None else instances, f)


def _gref(ref_id, ann_id, image_id, split, sentences, category_id,
          no_target=None):
    ref = _ref(ref_id, ann_id, image_id, split, sentences)
    ref.update(category_id=category_id, file_name=IMAGES[image_id][0])
    if no_target is not None:
        ref['no_target'] = no_target
    return ref


def grefs() -> list:
    """The gRefCOCO fixture's grefs (ann 201 is a crowd annotation)."""
    return [
        _gref(1, [101, 102], 1, 'train', [(10, 'both things on the left'),
                                          (11, 'all objects')], [1, 2], False),
        _gref(2, [-1], 1, 'train', [(20, 'the dog in the hat')], [-1], True),
        _gref(3, [201, 202], 2, 'val', [(30, 'the people and the box'),
                                        (31, 'everything')], [1, 3], False),
        _gref(4, 202, 2, 'testA', [(40, 'small box')], 3),
        _gref(5, [-1], 3, 'testB', [(50, 'a red car'), (51, 'the blue dog')],
              [-1], True),
        _gref(6, [201], 2, 'train', [(60, 'the crowd')], [1], False),
        _gref(7, [301, 302], 3, 'testB', [(70, 'the two shapes')], [2, 3]),
    ]


def write_grefcoco_folder(root: Path, refs: Optional[list] = None,
                          instances: Optional[dict] = None,
                          refs_name: str = 'grefs(unc).json',
                          skip_images: tuple = ()) -> Path:
    """Write the gRefCOCO fixture (or a variant) into ``root``.

    ``refs_name`` ending in ``.p`` writes a pickle, any other name JSON.
    """
    _write_images_and_instances(root, instances, skip_images)
    refs = grefs() if refs is None else refs
    if refs_name.endswith('.p'):
        (root / refs_name).write_bytes(pickle.dumps(refs, protocol=2))
    else:
        (root / refs_name).write_text(json.dumps(refs))
    return root


VOCAB_WORDS = ['the', 'man', 'on', 'left', 'right', 'person', 'most', 'guy',
               'cup', 'crowd', 'of', 'people', 'group', 'small', 'box',
               'round', 'thing', 'circle', 'bottom', 'shape', 'low', '##est',
               'side', 'a', 'red', 'big', '##ger', 'blue', '##most']


@pytest.fixture(scope='session', autouse=True)
def mmseg_scope():
    """Registry look-ups in MMSeg's scope, as a runner with mmseg does."""
    init_default_scope('mmseg')


@pytest.fixture(scope='session')
def refer_root(tmp_path_factory) -> Path:
    """The shared, read-only REFER fixture folder."""
    return write_refer_folder(tmp_path_factory.mktemp('refer'))


@pytest.fixture
def refer_variant(tmp_path) -> Callable[..., Path]:
    """Factory of edited copies: ``refer_variant(edit_refs=..., ...)``."""

    def make(edit_refs: Optional[Callable] = None,
             edit_instances: Optional[Callable] = None,
             skip_images: tuple = ()) -> Path:
        refs, instances = copy.deepcopy(_refs()), copy.deepcopy(_instances())
        if edit_refs is not None:
            edit_refs(refs)
        if edit_instances is not None:
            edit_instances(instances)
        return write_refer_folder(tmp_path / 'variant', refs, instances,
                                  skip_images)

    return make


@pytest.fixture(scope='session', name='write_refer_folder')
def write_refer_folder_fixture() -> Callable[..., Path]:
    """The fixture writer itself, to build REFER folders anywhere."""
    return write_refer_folder


@pytest.fixture(scope='session')
def vocab_file(tmp_path_factory) -> str:
    """A small BERT WordPiece vocabulary (special tokens first)."""
    path = tmp_path_factory.mktemp('vocab') / 'vocab.txt'
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    path.write_text('\n'.join(specials + VOCAB_WORDS) + '\n')
    return str(path)


@pytest.fixture(scope='session')
def gref_root(tmp_path_factory) -> Path:
    """The shared, read-only gRefCOCO fixture folder."""
    return write_grefcoco_folder(tmp_path_factory.mktemp('grefcoco'))


@pytest.fixture
def gref_variant(tmp_path) -> Callable[..., Path]:
    """Factory of edited gRefCOCO copies: ``gref_variant(edit_refs=...)``."""

    def make(edit_refs: Optional[Callable] = None,
             edit_instances: Optional[Callable] = None,
             refs_name: str = 'grefs(unc).json') -> Path:
        refs, instances = grefs(), copy.deepcopy(_instances())
        if edit_refs is not None:
            edit_refs(refs)
        if edit_instances is not None:
            edit_instances(instances)
        return write_grefcoco_folder(tmp_path / 'gref_variant', refs,
                                     instances, refs_name)

    return make


@pytest.fixture(scope='session', name='write_grefcoco_folder')
def write_grefcoco_folder_fixture() -> Callable[..., Path]:
    """The gRefCOCO fixture writer itself."""
    return write_grefcoco_folder


@pytest.fixture
def fixture_grefs() -> list:
    """A fresh copy of the gRefCOCO fixture's grefs, to edit."""
    return grefs()
