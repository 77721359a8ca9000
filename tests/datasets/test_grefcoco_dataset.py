"""GRefCOCODataset on the hand-written gRefCOCO fixture (see conftest.py)."""
import json
import pickle

import numpy as np
import pytest
from mmseg.registry import DATASETS
from pycocotools.coco import COCO

from dit_sam_mm.datasets import (GRefCOCODataset, LoadReferAnnotations,
                                 RefCOCODataset, UnsafePickleError,
                                 gref_targets, load_grefs)

ALL_SPLITS = ['train', 'val', 'testA', 'testB']
# split -> (grefs, sentences) in the fixture
FIXTURE_COUNTS = {'train': (3, 4), 'val': (1, 2), 'testA': (1, 1),
                  'testB': (2, 3)}


def build(root, **kwargs) -> GRefCOCODataset:
    kwargs.setdefault('data_prefix', dict(img_path='images/'))
    return GRefCOCODataset(data_root=str(root), **kwargs)


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


@pytest.mark.parametrize('split', ALL_SPLITS)
def test_counts_per_split_and_mode(gref_root, split):
    refs, sentences = FIXTURE_COUNTS[split]
    assert len(build(gref_root, split=split)) == sentences
    assert len(build(gref_root, split=split, sample_mode='ref')) == refs


def test_registered_and_a_refcoco_dataset(gref_root):
    dataset = DATASETS.build(dict(
        type='GRefCOCODataset', data_root=str(gref_root), split='val',
        data_prefix=dict(img_path='images/')))
    assert isinstance(dataset, GRefCOCODataset)
    assert isinstance(dataset, RefCOCODataset)
    assert dataset.split_file.endswith('grefs(unc).json')
    assert dataset.include_crowd is False


def test_samples_carry_targets_and_no_target(gref_root):
    samples = infos(build(gref_root, split=['train', 'testA', 'testB']))
    got = [(s['ref_id'], s['sent_id'], s['ann_ids'], s['no_target'],
            s['category_id'], len(s['segmentations'])) for s in samples]
    assert got == [
        (1, 10, [101, 102], False, [1, 2], 2),
        (1, 11, [101, 102], False, [1, 2], 2),
        (2, 20, [], True, [], 0),
        (6, 60, [], False, [], 0),  # its only target is a crowd
        (4, 40, [202], False, [3], 1),  # bare-int ann_id and category_id
        (5, 50, [], True, [], 0),
        (5, 51, [], True, [], 0),
        (7, 70, [301, 302], False, [2, 3], 2),
    ]
    first = samples[0]
    assert 'ann_id' not in first and 'segmentation' not in first
    assert first['img_path'].endswith('images/fixture_000001.jpg')
    assert (first['height'], first['width'], first['split']) == (30, 40,
                                                                 'train')
    assert first['sentence'] == 'both things on the left'


def test_crowd_targets_follow_the_switch(gref_root):
    default = infos(build(gref_root, split=['val', 'train'],
                          sample_mode='ref'))
    crowd = infos(build(gref_root, split=['val', 'train'], sample_mode='ref',
                        include_crowd=True))
    assert {s['ref_id']: s['ann_ids'] for s in default} == {
        3: [202], 1: [101, 102], 2: [], 6: []}
    assert {s['ref_id']: s['ann_ids'] for s in crowd} == {
        3: [201, 202], 1: [101, 102], 2: [], 6: [201]}
    assert all(not s['no_target'] for s in crowd if s['ref_id'] in (3, 6))


@pytest.mark.parametrize('include_crowd', [False, True])
def test_masks_are_the_union_of_the_targets(gref_root, include_crowd):
    """The union equals pycocotools' annToMask of each kept target, OR-ed."""
    coco = COCO(str(gref_root / 'instances.json'))
    load = LoadReferAnnotations()
    for sample in infos(build(gref_root, split=ALL_SPLITS,
                              include_crowd=include_crowd)):
        mask = load(dict(sample))['gt_seg_map']
        expected = np.zeros((sample['height'], sample['width']), np.uint8)
        for ann_id in sample['ann_ids']:
            expected |= coco.annToMask(coco.anns[ann_id])
        assert mask.dtype == np.uint8 and mask.shape == expected.shape
        np.testing.assert_array_equal(mask, expected)
        assert mask.any() == bool(sample['ann_ids'])
    # the crowd switch changes the mask of ref 3 (crowd 201 + box 202)
    ref3 = next(s for s in infos(build(gref_root, split='val',
                                       include_crowd=include_crowd)))
    crowd_pixels = coco.annToMask(coco.anns[201])
    assert (load(ref3)['gt_seg_map'] & crowd_pixels).any() == include_crowd


def test_pickle_reads_as_json(gref_root, gref_variant):
    root = gref_variant(refs_name='grefs(unc).p')
    from_pickle = infos(build(root, split=ALL_SPLITS,
                              split_file='grefs(unc).p'))
    from_json = infos(build(gref_root, split=ALL_SPLITS))
    for sample in from_pickle + from_json:
        sample['img_path'] = sample['img_path'].rsplit('/', 2)[-2:]
    assert from_pickle == from_json


def test_unsafe_pickle_is_refused(gref_variant):
    root = gref_variant(refs_name='grefs(unc).p')

    class Hostile:
        def __reduce__(self):
            return (print, ('ran',))

    (root / 'grefs(unc).p').write_bytes(pickle.dumps([Hostile()]))
    with pytest.raises(UnsafePickleError, match=r"grefs\(unc\)\.p.*print"):
        build(root, split_file='grefs(unc).p')


def test_missing_annotation_names_ref_and_files(gref_variant):
    def drop_302(instances):
        instances['annotations'] = [a for a in instances['annotations']
                                    if a['id'] != 302]

    root = gref_variant(edit_instances=drop_302)
    with pytest.raises(ValueError) as error:
        build(root, split='testB')
    message = str(error.value)
    assert 'ref_id=7 points to ann_id=302' in message
    assert 'instances.json' in message and 'grefs(unc).json' in message
    build(root, split='train')  # other splits do not need it


def test_minus_one_mixed_with_real_ids_names_ref_and_file(gref_variant):
    def mix(refs):
        refs[6]['ann_id'] = [301, -1]

    root = gref_variant(edit_refs=mix)
    with pytest.raises(ValueError, match=r"grefs\(unc\)\.json.*ref_id=7 has "
                       r"ann_id=\[301, -1\], which mixes -1"):
        build(root, split='train')


def test_unknown_split_names_the_file_and_the_splits(gref_root):
    with pytest.raises(ValueError, match=r"\['tset'\] for .*grefs\(unc\)"
                       r"\.json'; available splits: \['testA', 'testB', "
                       r"'train', 'val'\]"):
        build(gref_root, split=['val', 'tset'])


@pytest.mark.parametrize('ann_id, no_target, message', [
    ([], None, r'ann_id=\[\]; expected an annotation id or a non-empty'),
    (['101'], None, r"ann_id=\['101'\]; expected"),
    ([-1], False, r'no_target=False disagrees with ann_id=\[-1\]'),
    ([101], True, r'no_target=True disagrees with ann_id=\[101\]'),
])
def test_malformed_ann_id_is_refused(ann_id, no_target, message):
    ref = dict(ref_id=12, ann_id=ann_id)
    if no_target is not None:
        ref['no_target'] = no_target
    with pytest.raises(ValueError, match=r"'g.json': ref_id=12(: | has )"
                       + message):
        gref_targets(ref, 'g.json')


@pytest.mark.parametrize('ann_id, expected', [
    (5, ([5], False)), ([5, 7, 5], ([5, 7], False)), (-1, ([], True)),
    ([-1], ([], True))])
def test_ann_id_normalisation(ann_id, expected):
    assert gref_targets(dict(ref_id=1, ann_id=ann_id), 'g.json') == expected


def test_not_a_gref_file(tmp_path):
    path = tmp_path / 'grefs(unc).json'
    path.write_text('{"refs": []}')
    with pytest.raises(ValueError, match='must hold a list of refs'):
        load_grefs(str(path))
    path.write_text('[{"ref_id": 3, "ann_id": [1]}]')
    with pytest.raises(ValueError, match=r"ref #0 \(ref_id=3\) lacks the "
                       r"key\(s\) \['image_id', 'split', 'sentences'\]"):
        load_grefs(str(path))
    path.write_text('[{"ref_id": 3, "ann_id"')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_grefs(str(path))


@pytest.mark.parametrize('field, value, message', [
    ('sentences', {'sent_id': 1, 'raw': 'x'}, "'sentences' is {.*} of type dict, expected list"),
    ('split', ['val'], r"'split' is \['val'\] of type list, expected str"),
])
def test_grefs_fields_of_the_wrong_type_are_named(tmp_path, field, value, message):
    path = tmp_path / 'grefs(unc).json'
    gref = dict(ref_id=3, ann_id=[1], image_id=1, split='val',
                sentences=[dict(sent_id=1, raw='the cat')])
    path.write_text(json.dumps([dict(gref, **{field: value})]))
    with pytest.raises(ValueError, match=message) as error:
        load_grefs(str(path))
    assert str(error.value).startswith(f"'{path}': ref #0 (ref_id=3): ")


def test_a_200k_deep_grefs_json_is_named(tmp_path):
    path = tmp_path / 'grefs(unc).json'
    path.write_text('[' * 200_000 + ']' * 200_000)
    with pytest.raises(ValueError, match='nests its lists and objects too deep to read') as error:
        load_grefs(str(path))
    assert str(error.value).startswith(f"'{path}'")


def test_serialized_subset_and_ref_mode(gref_root):
    dataset = build(gref_root, split='testB', sample_mode='ref',
                    serialize_data=True)
    sample = dataset.get_data_info(0)
    assert sample['ref_id'] == 5 and sample['no_target'] is True
    assert sample['sentence'] in ('a red car', 'the blue dog')
    subset = build(gref_root, split='testB', indices=[1])
    assert [(s['ref_id'], s['ann_ids']) for s in infos(subset)] == [
        (7, [301, 302])]
