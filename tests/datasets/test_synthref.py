"""SynthRef: determinism, one referent per sentence, and the REFER path."""
import filecmp
import json
import pickle
import re
from collections import Counter

import numpy as np
import pytest
from mmcv import imread
from pycocotools.coco import COCO
from tool_loader import REPO_ROOT, load_tool

from dit_sam_mm.datasets import RefCOCODataset, load_refs
from dit_sam_mm.datasets.synthref import COLOURS, make_synthref, render, sample_scene
from dit_sam_mm.utils.cli import run_main

KIND = r'(circle|square|triangle)'
COLOUR = r'(red|green|blue|yellow)'
RELATION = r'(to the left of|to the right of|above|below)'


@pytest.fixture(scope='module')
def synthref(tmp_path_factory):
    """SynthRef with the default arguments (450 64x64 images)."""
    root = tmp_path_factory.mktemp('synthref')
    stats = make_synthref(str(root))
    return root, stats


def test_committed_synthref_is_what_the_generator_writes(synthref):
    """data/synthref was written with the default arguments: its annotations stay byte-identical."""
    root, _ = synthref
    for name in ('instances.json', 'refs(unc).p', 'vocab.txt'):
        assert (root / name).read_bytes() == (REPO_ROOT / 'data' / 'synthref' / name).read_bytes()


def test_same_seed_gives_identical_bytes(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    make_synthref(str(first), num_images=18, seed=3)
    make_synthref(str(second), num_images=18, seed=3)
    names = ['instances.json', 'refs(unc).p', 'vocab.txt'] + [
        f'images/synthref_{i:06d}.jpg' for i in range(1, 19)]
    match, mismatch, errors = filecmp.cmpfiles(first, second, names,
                                               shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)
    make_synthref(str(tmp_path / 'c'), num_images=18, seed=4)
    assert not filecmp.cmp(first / 'refs(unc).p', tmp_path / 'c' /
                           'refs(unc).p', shallow=False)


def test_the_tool_refuses_to_overwrite_an_earlier_synthref(tmp_path, capsys):
    tool = load_tool('tools/dataset_converters/make_synthref.py')
    out = tmp_path / 'synthref'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')  # files it does not write do not matter
    argv = [str(out), '--num-images', '4', '--size', '32']
    assert tool.main(argv) == 0
    capsys.readouterr()
    first = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()}
    (out / 'refs(unc).p').write_bytes(b'edited by hand')

    assert run_main(lambda: tool.main(argv + ['--seed', '1']), 'make_synthref.py') == 1
    err = capsys.readouterr().err
    assert err.startswith(f'make_synthref.py: error: {out} already holds SynthRef files: '
                          'instances.json, refs(unc).p, vocab.txt, 4 image(s) in images/; '
                          'nothing was written')
    assert '--overwrite' in err
    assert (out / 'refs(unc).p').read_bytes() == b'edited by hand'
    for path, content in first.items():
        if path.name != 'refs(unc).p':
            assert path.read_bytes() == content, path

    assert tool.main(argv + ['--overwrite']) == 0
    assert (out / 'refs(unc).p').read_bytes() == first[out / 'refs(unc).p']
    assert (out / 'notes.txt').read_text() == 'mine'


def test_one_earlier_file_is_enough_to_refuse(tmp_path):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'synthref_000004.jpg').write_bytes(b'old')
    with pytest.raises(FileExistsError, match=r'1 image\(s\) in images/'):
        make_synthref(str(tmp_path), num_images=4, size=(32, 32))
    assert [p.name for p in tmp_path.rglob('*')] == ['images', 'synthref_000004.jpg']


class _Scene:
    """Objects of one image as read back from instances.json."""

    def __init__(self, anns, names):
        self.objects = [
            dict(id=a['id'], kind=names[a['category_id']],
                 colour=a['synthref']['colour'], area=a['area'],
                 x=a['bbox'][0] + a['bbox'][2] / 2,
                 y=a['bbox'][1] + a['bbox'][3] / 2) for a in anns
        ]
        self.shapes = [o for o in self.objects if o['kind'] != 'dots']

    def group(self, noun):
        """'circle' / 'red shape' / 'shape' -> matching shapes."""
        words = noun.split()
        if words == ['shape']:
            return self.shapes
        if len(words) == 2:
            return [o for o in self.shapes if o['colour'] == words[0]]
        return [o for o in self.shapes if o['kind'] == words[0]]


def _extreme(group, word):
    key, sign = dict(leftmost=('x', 1), left=('x', 1), rightmost=('x', -1),
                     right=('x', -1), highest=('y', 1), top=('y', 1),
                     lowest=('y', -1), bottom=('y', -1))[word]
    best = min(sign * o[key] for o in group)
    return [o for o in group if sign * o[key] == best]


def _sized(group, word):
    """Objects at least 1.5x bigger (or smaller) than every other one."""
    def beats(a, b):
        return (a['area'] >= 1.5 * b['area'] if word in ('big', 'bigger')
                else b['area'] >= 1.5 * a['area'])
    return [o for o in group if all(beats(o, p) for p in group if p is not o)]


def interpret(sentence, scene):
    """Objects a sentence refers to, read by a rule of its own.

    Returns None when no rule parses the sentence.
    """
    m = re.fullmatch(r'the (dots|cluster of dots|group of dots)', sentence)
    if m:
        return [o for o in scene.objects if o['kind'] == 'dots']
    m = re.fullmatch(rf'the {KIND}', sentence)
    if m:
        return scene.group(m[1])
    m = re.fullmatch(rf'the {COLOUR} shape', sentence)
    if m:
        return scene.group(f'{m[1]} shape')
    m = re.fullmatch(rf'the {COLOUR} {KIND}', sentence)
    if m:
        return [o for o in scene.group(m[2]) if o['colour'] == m[1]]
    m = re.fullmatch(rf'the (big|small) {KIND}', sentence)
    if m:
        return _sized(scene.group(m[2]), m[1])
    m = re.fullmatch(rf'the (big|small) {COLOUR} {KIND}', sentence)
    if m:
        group = [o for o in scene.group(m[3]) if o['colour'] == m[2]]
        return _sized(group, m[1])
    m = re.fullmatch(rf'the (bigger|smaller) of the two '
                     rf'(circles|squares|triangles|{COLOUR} shapes)', sentence)
    if m:
        noun = m[2][:-1]
        group = scene.group(noun)
        return _sized(group, m[1]) if len(group) == 2 else []
    m = re.fullmatch(rf'the ({KIND}|{COLOUR} shape) (on|at) the '
                     r'(left|right|top|bottom)', sentence)
    if m:
        group = scene.group(m[1])
        return _extreme(group, m[5]) if len(group) == 2 else []
    m = re.fullmatch(rf'the (leftmost|rightmost|highest|lowest) '
                     rf'({KIND}|shape)', sentence)
    if m:
        group = scene.group(m[2])
        return _extreme(group, m[1]) if len(group) >= 2 else []
    m = re.fullmatch(rf'the (shape|{KIND}) {RELATION} the {COLOUR} {KIND}',
                     sentence)
    if m:
        anchors = [o for o in scene.group(m[5]) if o['colour'] == m[4]]
        if len(anchors) != 1:
            return []
        a = anchors[0]
        axis, sign = {'to the left of': ('x', -1), 'to the right of': ('x', 1),
                      'above': ('y', -1), 'below': ('y', 1)}[m[3]]
        other = 'y' if axis == 'x' else 'x'
        return [o for o in scene.group(m[1]) if o is not a
                and sign * (o[axis] - a[axis]) > abs(o[other] - a[other])]
    return None


def test_every_sentence_refers_to_exactly_its_object(synthref):
    root, stats = synthref
    instances = json.loads((root / 'instances.json').read_text())
    names = {c['id']: c['name'] for c in instances['categories']}
    by_image = {}
    for ann in instances['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    refs = load_refs(str(root / 'refs(unc).p'))
    families = Counter()
    for ref in refs:
        scene = _Scene(by_image[ref['image_id']], names)
        texts = [s['sent'] for s in ref['sentences']]
        assert 1 <= len(texts) <= 3 and len(set(texts)) == len(texts)
        for text in texts:
            matches = interpret(text, scene)
            assert matches is not None, f'no rule reads {text!r}'
            assert [o['id'] for o in matches] == [ref['ann_id']], (
                ref['ref_id'], text)
            families[text.split()[1] if text.split()[1] in (
                'leftmost', 'rightmost', 'highest', 'lowest', 'bigger',
                'smaller') else re.sub(rf'{COLOUR}|{KIND}', '', text)] += 1
    sentences = sum(families.values())
    assert sentences == sum(s['sentences'] for s in stats.values())
    positional = sum(n for f, n in families.items()
                     if re.search(r'most|highest|lowest|bigger|smaller|left|'
                                  r'right|top|bottom|above|below', f))
    assert positional > 0.5 * sentences  # colour lookup is not enough
    for words in ('to the left of', 'above', 'below', 'bigger', 'smaller',
                  'on the left', 'at the top'):
        assert any(words in f for f in families), words


def test_pictures_show_exactly_the_annotated_pixels():
    """Every pixel that differs from the background belongs to an object's mask, and every mask
    pixel is painted (no rim that the annotation leaves out)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        objects = sample_scene(rng, 64, 64, with_dots=True)
        picture = render(objects, rng, 64, 64).astype(int)
        union = np.any([obj.mask.astype(bool) for obj in objects], axis=0)
        background = np.median(picture[~union], axis=0)
        # background noise has sigma 6; every object colour is > 80 away in some channel
        painted = np.abs(picture - background).max(axis=-1) > 40
        np.testing.assert_array_equal(painted, union)


def test_layout_splits_masks_and_colours(synthref):
    root, stats = synthref
    assert {s: v['images'] for s, v in stats.items()} == dict(
        train=300, val=50, testA=50, testB=50)
    coco = COCO(str(root / 'instances.json'))
    anns = list(coco.anns.values())
    kinds = Counter((type(a['segmentation']).__name__, a['iscrowd'],
                     type(a['segmentation'].get('counts')).__name__
                     if isinstance(a['segmentation'], dict) else '')
                    for a in anns)
    assert kinds[('list', 0, '')] > 0  # polygons
    assert kinds[('dict', 0, 'str')] > 0  # compressed RLE
    assert kinds[('dict', 1, 'list')] > 0  # crowd, uncompressed RLE
    refs = load_refs(str(root / 'refs(unc).p'))
    split_of_image = {}
    for ref in refs:
        assert split_of_image.setdefault(ref['image_id'],
                                         ref['split']) == ref['split']
    for ann in anns[:200]:
        mask = coco.annToMask(ann).astype(bool)
        assert mask.sum() == ann['area'] > 0
        if ann['iscrowd']:
            continue
        image = coco.imgs[ann['image_id']]
        rgb = imread(str(root / 'images' / image['file_name']),
                     channel_order='rgb')
        mean = rgb[mask].mean(axis=0)
        nearest = min(COLOURS, key=lambda c: np.abs(
            mean - np.array(COLOURS[c])).sum())
        assert nearest == ann['synthref']['colour']
    vocab = (root / 'vocab.txt').read_text().split('\n')
    assert vocab[:5] == ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    words = {w for r in refs for s in r['sentences'] for w in s['tokens']}
    assert words <= set(vocab) and 'right' in vocab and 'rightmost' in vocab


def test_reads_through_refcoco_dataset_and_pipelines(synthref):
    root, stats = synthref
    vocab = str(root / 'vocab.txt')
    common = dict(data_root=str(root), ann_file='instances.json',
                  split_file='refs(unc).p',
                  data_prefix=dict(img_path='images/'))
    train = RefCOCODataset(
        split='train', sample_mode='ref', **common, pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadReferAnnotations'),
            dict(type='RandomResize', scale=(512, 512),
                 ratio_range=(0.625, 1.0), keep_ratio=True),
            dict(type='ReferRandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            dict(type='TokenizeText', vocab_file=vocab),
            dict(type='PackReferSegInputs'),
        ])
    assert len(train) == stats['train']['refs']
    np.random.seed(0)
    for i in range(0, len(train), 97):
        sample = train[i]['data_samples']
        assert sample.text_ids.tolist().count(1) == 0  # no [UNK]
        assert sample.gt_sem_seg.data.sum() > 0
    test = RefCOCODataset(
        split=['val', 'testA', 'testB'], test_mode=True, **common, pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(512, 512), keep_ratio=True),
            dict(type='LoadReferAnnotations'),
            dict(type='TokenizeText', vocab_file=vocab),
            dict(type='PackReferSegInputs'),
        ])
    assert len(test) == sum(stats[s]['sentences']
                            for s in ('val', 'testA', 'testB'))
    out = test[0]
    assert out['inputs'].shape == (3, 512, 512)
    assert out['data_samples'].gt_sem_seg.data.shape == (1, 64, 64)
    refs = pickle.loads((root / 'refs(unc).p').read_bytes())
    assert out['data_samples'].sentence == refs[0]['sentences'][0]['raw']
