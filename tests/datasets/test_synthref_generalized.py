"""SynthRef in the gRefCOCO format: multi-target and no-target sentences, read back by a reader
of the test's own (the singular rules are test_synthref's)."""
import filecmp
import json
import pickle
import re
from collections import Counter

import pytest
from pycocotools.coco import COCO
from test_synthref import COLOUR, KIND, _Scene, interpret
from tool_loader import load_tool

from dit_sam_mm.datasets.synthref import make_synthref
from dit_sam_mm.utils.cli import run_main

PLURAL = rf'(shapes|{KIND}s|{COLOUR} shapes|{COLOUR} {KIND}s)'
COUNTS = dict(two=2, three=3, four=4, five=5)
SPLITS = ('train', 'val', 'testA', 'testB')


@pytest.fixture(scope='module')
def gres(tmp_path_factory):
    """Generalized SynthRef of 90 images (60 train, 10 per test split), and plain SynthRef."""
    root = tmp_path_factory.mktemp('gres')
    stats = make_synthref(str(root / 'gres'), num_images=90, generalized=True)
    make_synthref(str(root / 'plain'), num_images=90)
    return root / 'gres', stats, root / 'plain'


def _plural(scene, noun):
    """'shapes' / 'circles' / 'red shapes' / 'red circles' -> the shapes it names."""
    members = scene.shapes
    for word in noun.split():
        if word != 'shapes':
            key, value = ('kind', word[:-1]) if word.endswith('s') else ('colour', word)
            members = [o for o in members if o[key] == value]
    return members


def _size_class(group, word):
    """Sorted by area, the members above (big) or below (small) the one step of >= 1.5x."""
    ordered = sorted(group, key=lambda o: o['area'])
    steps = [i for i in range(1, len(ordered))
             if ordered[i]['area'] >= 1.5 * ordered[i - 1]['area']]
    if len(steps) != 1:
        return []
    return ordered[steps[0]:] if word == 'big' else ordered[:steps[0]]


def read_generalized(sentence, scene):
    """Objects a (possibly plural) sentence refers to; None when no rule parses it."""
    m = re.fullmatch(rf'(all the|the) {PLURAL}', sentence)
    if m:
        return _plural(scene, m[2])
    m = re.fullmatch(rf'both {PLURAL}', sentence)
    if m:
        group = _plural(scene, m[1])
        return group if len(group) == 2 else []
    m = re.fullmatch(rf'the (two|three|four|five) {PLURAL}', sentence)
    if m:
        group = _plural(scene, m[2])
        return group if len(group) == COUNTS[m[1]] else []
    m = re.fullmatch(rf'the two {PLURAL} (on|at) the (left|right|top|bottom)', sentence)
    if m:
        side = m[m.lastindex]
        key, sign = dict(left=('x', 1), right=('x', -1), top=('y', 1), bottom=('y', -1))[side]
        group = sorted(_plural(scene, m[1]), key=lambda o: sign * o[key])
        return group[:2] if len(group) >= 3 else []
    m = re.fullmatch(rf'the (big|small) {KIND}s', sentence)
    if m:
        return _size_class(_plural(scene, f'{m[2]}s'), m[1])
    m = re.fullmatch(rf'the (shapes|{KIND}s) (.*)', sentence)
    if m:  # "the circles below the red square": every circle the singular rule accepts
        return interpret(f'the {m[1][:-1]} {m[3]}', scene)
    return interpret(sentence, scene)


def _load(root):
    instances = json.loads((root / 'instances.json').read_text())
    grefs = json.loads((root / 'grefs(unc).json').read_text())
    return instances, grefs


def test_written_files_parse_as_grefcoco(gres):
    root, stats, plain = gres
    instances, grefs = _load(root)
    coco = COCO(str(root / 'instances.json'))
    assert len(grefs) == sum(s['refs'] for s in stats.values())
    sent_ids = [s['sent_id'] for g in grefs for s in g['sentences']]
    assert len(set(sent_ids)) == len(sent_ids)
    vocab = (root / 'vocab.txt').read_text().split('\n')
    plain_vocab = (plain / 'vocab.txt').read_text().split('\n')
    assert vocab[:len(plain_vocab) - 1] == plain_vocab[:-1]  # SynthRef's token ids kept
    assert set(vocab) - set(plain_vocab) == {'all', 'both', 'three', 'four', 'five'}
    for g in grefs:
        assert set(g) == {'ref_id', 'image_id', 'split', 'ann_id', 'category_id', 'sent_ids',
                          'sentences', 'no_target', 'file_name'}
        assert g['split'] in SPLITS
        assert g['file_name'] == coco.imgs[g['image_id']]['file_name']
        assert g['sent_ids'] == [s['sent_id'] for s in g['sentences']]
        assert 1 <= len(g['sentences']) <= 3
        for sent in g['sentences']:
            assert sent['raw'] == sent['sent'] and sent['tokens'] == sent['sent'].split()
            assert set(sent['tokens']) <= set(vocab)
        if g['no_target']:
            assert g['ann_id'] == [-1] and g['category_id'] == [-1]
            continue
        assert -1 not in g['ann_id'] and len(set(g['ann_id'])) == len(g['ann_id'])
        anns = [coco.anns[i] for i in g['ann_id']]
        assert all(a['image_id'] == g['image_id'] for a in anns)
        assert g['category_id'] == [a['category_id'] for a in anns]
    assert instances == json.loads((plain / 'instances.json').read_text())


def test_every_sentence_names_exactly_its_targets(gres):
    """Multi-target refs: several ids, exactly the objects the sentence names; no-target refs:
    no object (the dots included) satisfies the sentence."""
    root, _, _ = gres
    instances, grefs = _load(root)
    names = {c['id']: c['name'] for c in instances['categories']}
    by_image = {}
    for ann in instances['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    templates = Counter()
    for g in grefs:
        scene = _Scene(by_image[g['image_id']], names)
        wanted = [] if g['no_target'] else sorted(g['ann_id'])
        kind = 'none' if g['no_target'] else 'multi' if len(wanted) > 1 else 'single'
        for sent in g['sentences']:
            matches = read_generalized(sent['sent'], scene)
            assert matches is not None, f'no rule reads {sent["sent"]!r}'
            assert sorted(o['id'] for o in matches) == wanted, (g['ref_id'], sent['sent'])
            text = re.sub(rf'{COLOUR}|{KIND}|two|three|four|five', '_', sent['sent'])
            templates[kind, text] += 1
    for pattern in ('all the _ shapes', 'both _s', 'the _ _s', 'the _ _ _s', 'the _ _s on the left',
                    'the _ shapes at the top', 'the big _s', 'the small _s'):
        assert templates['multi', pattern] > 0, pattern
    relation = r'the (_|shape)s (above|below|to the .*) the _ _'
    assert any(kind == 'multi' and re.fullmatch(relation, t) for kind, t in templates)
    for pattern in ('the _ _', 'the _ shape', 'the dots', 'the _ above the _ _',
                    'the shape below the _ _'):
        assert templates['none', pattern] > 0, pattern


def test_shares_of_each_split_are_near_the_chosen_ones(gres, tmp_path):
    _, stats, _ = gres
    for split in SPLITS:
        counts = stats[split]
        assert counts['multi_target'] / counts['sentences'] == pytest.approx(0.25, abs=0.03)
        assert counts['no_target'] / counts['sentences'] == pytest.approx(0.15, abs=0.03)
    other = make_synthref(str(tmp_path), num_images=36, seed=5, generalized=True,
                          multi_target_share=0.4, no_target_share=0.0)
    train = other['train']
    assert train['no_target'] == 0
    assert train['multi_target'] / train['sentences'] == pytest.approx(0.4, abs=0.03)


def test_bad_shares_are_refused_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match='no_target_share must be in'):
        make_synthref(str(tmp_path), num_images=4, generalized=True, no_target_share=-0.1)
    with pytest.raises(ValueError, match=r'multi_target_share \+ no_target_share must be below 1'):
        make_synthref(str(tmp_path), num_images=4, generalized=True, multi_target_share=0.6,
                      no_target_share=0.4)
    assert list(tmp_path.iterdir()) == []


def test_same_seed_gives_identical_bytes(tmp_path):
    names = ['instances.json', 'grefs(unc).json', 'vocab.txt'] + [
        f'images/synthref_{i:06d}.jpg' for i in range(1, 19)]
    for name in ('a', 'b'):
        make_synthref(str(tmp_path / name), num_images=18, seed=3, generalized=True)
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', names,
                                               shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)
    make_synthref(str(tmp_path / 'c'), num_images=18, seed=4, generalized=True)
    assert not filecmp.cmp(tmp_path / 'a' / 'grefs(unc).json', tmp_path / 'c' / 'grefs(unc).json',
                           shallow=False)


def test_single_target_refs_are_synthref_refs(gres):
    """Same seed: the generalized set holds SynthRef's images and every SynthRef ref."""
    root, _, plain = gres
    _, grefs = _load(root)
    for image in (root / 'images').iterdir():
        assert image.read_bytes() == (plain / 'images' / image.name).read_bytes()
    refs = pickle.loads((plain / 'refs(unc).p').read_bytes())
    single = [g for g in grefs if len(g['ann_id']) == 1 and not g['no_target']]
    assert [(g['image_id'], g['split'], g['ann_id'], g['category_id'],
             [s['sent'] for s in g['sentences']]) for g in single] == [
        (r['image_id'], r['split'], [r['ann_id']], [r['category_id']],
         [s['sent'] for s in r['sentences']]) for r in refs]


def test_the_tool_writes_and_refuses_to_overwrite(tmp_path, capsys):
    tool = load_tool('tools/dataset_converters/make_synthref.py')
    assert tool.parse_args(['--generalized']).out_dir == 'data/synthref_gres'
    assert tool.parse_args([]).out_dir == 'data/synthref'
    out = tmp_path / 'gres'
    argv = [str(out), '--num-images', '9', '--size', '32', '--generalized']
    assert tool.main(argv) == 0
    assert 'multi-target' in capsys.readouterr().out
    written = (out / 'grefs(unc).json').read_bytes()
    (out / 'grefs(unc).json').write_bytes(b'edited by hand')
    assert run_main(lambda: tool.main(argv + ['--seed', '1']), 'make_synthref.py') == 1
    err = capsys.readouterr().err
    assert err.startswith(f'make_synthref.py: error: {out} already holds SynthRef files: '
                          'instances.json, grefs(unc).json, vocab.txt, 9 image(s) in images/; '
                          'nothing was written')
    assert (out / 'grefs(unc).json').read_bytes() == b'edited by hand'
    assert tool.main(argv + ['--overwrite']) == 0
    assert (out / 'grefs(unc).json').read_bytes() == written
    assert run_main(lambda: tool.main(argv[:-1]), 'make_synthref.py') == 1  # plain into it
    assert 'instances.json, vocab.txt, 9 image(s)' in capsys.readouterr().err
    assert not (out / 'refs(unc).p').exists()
