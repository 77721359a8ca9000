"""Writing SynthRef, a synthetic referring-segmentation set, in REFER layout.

Output (``out_dir``, by default ``data/synthref/``)::

    images/synthref_000001.jpg ...   JPEG, quality 90, 4:4:4
    instances.json                   COCO format; polygons, compressed RLE,
                                     and crowd (uncompressed RLE) dot clusters
    refs(unc).p                      refs with train / val / testA / testB
    vocab.txt                        BERT WordPiece vocabulary of the words

Read it with ``RefCOCODataset(data_root=out_dir, ann_file='instances.json',
split_file='refs(unc).p', data_prefix=dict(img_path='images/'))``. The same
seed and arguments give byte-identical files.

The generalized variant (``generalized=True``, by default in
``data/synthref_gres/``) writes ``grefs(unc).json`` (gRefCOCO format: lists
``ann_id`` and ``category_id``, ``[-1]`` and ``no_target`` for a sentence
that names nothing) instead of ``refs(unc).p``, and a vocab.txt that extends
SynthRef's; its images and ``instances.json`` are those of SynthRef.
"""
import json
import os
import os.path as osp
import pickle
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .expressions import SYNTHREF_WORDS, choose_sentences, expressions_for
from .generalized import (GENERALIZED_WORDS, MULTI_TARGET_SHARE,
                          NO_TARGET_SHARE, TargetMix)
from .scene import KINDS, SceneObject, render, sample_scene

CATEGORIES = [dict(id=i + 1, name=name)
              for i, name in enumerate(KINDS + ('dots', ))]
CATEGORY_IDS = {c['name']: c['id'] for c in CATEGORIES}
SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
PICKLE_PROTOCOL = 2
REFS_FILE = 'refs(unc).p'
GREFS_FILE = 'grefs(unc).json'


def split_of(index: int, num_images: int) -> str:
    """Split of image ``index``: val, testA, testB blocks, then train."""
    held = max(1, num_images // 9)
    for block, name in enumerate(('val', 'testA', 'testB')):
        if index < (block + 1) * held:
            return name
    return 'train'


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO crowd RLE: column-major run lengths starting with zeros."""
    flat = np.asfortranarray(mask).flatten(order='F').astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return dict(size=[int(mask.shape[0]), int(mask.shape[1])],
                counts=[int(c) for c in counts])


def _segmentation(obj: SceneObject, ann_index: int) -> Tuple[object, int]:
    """(segmentation, iscrowd): dots as crowd RLE, every third as RLE."""
    if not obj.is_shape:
        return _uncompressed_rle(obj.mask), 1
    if ann_index % 3 == 2:
        rle = mask_utils.encode(np.asfortranarray(obj.mask))
        return dict(size=[int(v) for v in rle['size']],
                    counts=rle['counts'].decode('ascii')), 0
    return obj.polygons, 0


def image_name(image_id: int) -> str:
    """File name of SynthRef image ``image_id`` (from 1) under ``images/``."""
    return f'synthref_{image_id:06d}.jpg'


def refs_file(generalized: bool) -> str:
    """Name of the refs file: ``grefs(unc).json`` or ``refs(unc).p``."""
    return GREFS_FILE if generalized else REFS_FILE


def existing_outputs(out_dir: str, num_images: int,
                     generalized: bool = False) -> List[str]:
    """The files :func:`make_synthref` would write that ``out_dir`` holds.

    Args:
        out_dir (str): Output folder.
        num_images (int): Images to write.
        generalized (bool): The gRefCOCO-format variant. Defaults to False.

    Returns:
        List[str]: Their paths relative to ``out_dir``: the annotation files
        first, then the images.
    """
    names = ['instances.json', refs_file(generalized), 'vocab.txt'] + [
        osp.join('images', image_name(i)) for i in range(1, num_images + 1)]
    return [name for name in names if osp.lexists(osp.join(out_dir, name))]


def _ref(ref_id: int, image_id: int, split: str, targets: List[dict],
         sents: List[dict], generalized: bool) -> dict:
    """A REFER ref of one target annotation, or a gref of any number."""
    if not generalized:
        ann_id = targets[0]['id']
        return dict(ref_id=ref_id, ann_id=ann_id, image_id=image_id,
                    split=split, category_id=targets[0]['category_id'],
                    sent_ids=[s['sent_id'] for s in sents], sentences=sents,
                    file_name=f'synthref_{image_id:06d}_{ann_id}.jpg')
    return dict(ref_id=ref_id, image_id=image_id, split=split,
                ann_id=[a['id'] for a in targets] or [-1],
                category_id=[a['category_id'] for a in targets] or [-1],
                no_target=not targets,
                sent_ids=[s['sent_id'] for s in sents], sentences=sents,
                file_name=image_name(image_id))


def make_synthref(out_dir: str,
                  num_images: int = 450,
                  seed: int = 0,
                  size: Tuple[int, int] = (64, 64),
                  overwrite: bool = False,
                  generalized: bool = False,
                  multi_target_share: float = MULTI_TARGET_SHARE,
                  no_target_share: float = NO_TARGET_SHARE) -> Dict[str, dict]:
    """Generate SynthRef into ``out_dir``.

    Args:
        out_dir (str): Output folder (created).
        num_images (int): Images in total; val, testA and testB get
            ``num_images // 9`` each, train the rest. Defaults to 450.
        seed (int): Random seed. Defaults to 0.
        size (tuple[int, int]): Image (width, height). Defaults to (64, 64).
        overwrite (bool): Replace the files of an earlier SynthRef in
            ``out_dir``; without it nothing is written when one of them
            exists. Other files are left alone. Defaults to False.
        generalized (bool): Write the gRefCOCO-format variant: the same
            images, annotations and single-target refs as SynthRef of that
            seed, plus multi-target and no-target refs (see
            :mod:`.generalized`), as ``grefs(unc).json`` with a vocab.txt
            that extends SynthRef's. Defaults to False.
        multi_target_share (float): With ``generalized``, the wanted share
            of multi-target sentences per split. Defaults to 0.25.
        no_target_share (float): With ``generalized``, the wanted share of
            no-target sentences per split. Defaults to 0.15.

    Returns:
        dict: Per split, the numbers of images, refs and sentences; with
        ``generalized`` also of multi-target and no-target sentences.

    Raises:
        FileExistsError: ``out_dir`` holds a file this would write, and
            ``overwrite`` is False (the files are named).
    """
    if num_images < 4:
        raise ValueError(f'num_images must be >= 4, got {num_images}')
    width, height = int(size[0]), int(size[1])
    if min(width, height) < 32:
        raise ValueError(f'images must be at least 32x32, got {size}')
    # Its own stream, so that images and single-target refs match SynthRef's.
    mix = TargetMix(np.random.default_rng([seed, 1]), multi_target_share,
                    no_target_share) if generalized else None
    existing = [] if overwrite else existing_outputs(out_dir, num_images,
                                                     generalized)
    if existing:
        found = [n for n in existing if osp.dirname(n) != 'images']
        images = len(existing) - len(found)
        if images:
            found.append(f'{images} image(s) in images/')
        raise FileExistsError(
            f'{out_dir} already holds SynthRef files: {", ".join(found)}; '
            'nothing was written. Choose another folder, or replace them '
            'with --overwrite (overwrite=True)')
    gap = 3.0 * min(width, height) / 64.0
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(out_dir, 'images'), exist_ok=True)
    images, annotations, refs = [], [], []
    next_sent_id = 1
    counters = ('images', 'refs', 'sentences') + (
        ('multi_target', 'no_target') if generalized else ())
    stats = {s: dict.fromkeys(counters, 0)
             for s in ('train', 'val', 'testA', 'testB')}
    for index in range(num_images):
        image_id, split = index + 1, split_of(index, num_images)
        objects = sample_scene(rng, width, height, with_dots=index % 5 == 2)
        pixels = render(objects, rng, width, height)
        file_name = image_name(image_id)
        Image.fromarray(pixels).save(
            osp.join(out_dir, 'images', file_name),
            format='JPEG', quality=90, subsampling=0, optimize=False)
        images.append(dict(id=image_id, file_name=file_name, width=width,
                           height=height))
        stats[split]['images'] += 1
        first_ann = len(annotations)
        entries = []  # (target annotations, sentences) per ref
        for obj in objects:
            ann_id = len(annotations) + 1
            segmentation, iscrowd = _segmentation(obj, ann_id)
            annotations.append(dict(
                id=ann_id, image_id=image_id,
                category_id=CATEGORY_IDS[obj.kind], iscrowd=iscrowd,
                segmentation=segmentation, area=obj.area,
                bbox=[float(v) for v in obj.bbox],
                synthref=dict(colour=obj.colour, size=obj.size)))
            sentences = choose_sentences(
                rng, expressions_for(obj, objects, gap))
            if sentences:
                entries.append(([annotations[-1]], sentences))
        if mix is not None:
            extra = mix.extra_refs(
                objects, split, sum(len(e[1]) for e in entries), gap)
            for targets, sentences in extra:
                entries.append(([annotations[first_ann + i] for i in targets],
                                sentences))
                kind = 'multi_target' if targets else 'no_target'
                stats[split][kind] += len(sentences)
        for targets, sentences in entries:
            sents = [dict(sent_id=next_sent_id + i, sent=text, raw=text,
                          tokens=text.split())
                     for i, text in enumerate(sentences)]
            next_sent_id += len(sents)
            refs.append(_ref(len(refs) + 1, image_id, split, targets, sents,
                             generalized))
            stats[split]['refs'] += 1
            stats[split]['sentences'] += len(sents)
    _write_files(out_dir, dict(images=images, annotations=annotations,
                               categories=CATEGORIES), refs, generalized)
    return stats


def _write_files(out_dir: str, instances: dict, refs: List[dict],
                 generalized: bool) -> None:
    """instances.json, the refs file and vocab.txt."""
    with open(osp.join(out_dir, 'instances.json'), 'w',
              encoding='utf-8') as f:
        json.dump(instances, f, sort_keys=True, separators=(',', ':'))
    refs_path = osp.join(out_dir, refs_file(generalized))
    if generalized:
        with open(refs_path, 'w', encoding='utf-8') as f:
            json.dump(refs, f, sort_keys=True, separators=(',', ':'))
    else:
        with open(refs_path, 'wb') as f:
            pickle.dump(refs, f, protocol=PICKLE_PROTOCOL)
    words = GENERALIZED_WORDS if generalized else SYNTHREF_WORDS
    with open(osp.join(out_dir, 'vocab.txt'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(SPECIAL_TOKENS + tuple(words)) + '\n')
