"""RefCOCODataset on the hand-written REFER fixture (see conftest.py)."""
import pickle

import numpy as np
import pytest
from mmengine.dataset import BaseDataset
from pycocotools.coco import COCO

from dit_sam_mm.datasets import RefCOCODataset

ALL_SPLITS = ['train', 'val', 'testA', 'testB']
# split -> (refs, sentences) in the fixture
FIXTURE_COUNTS = {'train': (3, 6), 'val': (1, 2), 'testA': (1, 1),
                  'testB': (1, 2)}


def build(root, **kwargs) -> RefCOCODataset:
    kwargs.setdefault('data_prefix', dict(img_path='images/'))
    return RefCOCODataset(data_root=str(root), **kwargs)


@pytest.mark.parametrize('split', ALL_SPLITS)
def test_counts_per_split_and_mode(refer_root, split):
    refs, sentences = FIXTURE_COUNTS[split]
    assert len(build(refer_root, split=split)) == sentences
    assert len(build(refer_root, split=split, sample_mode='ref')) == refs


def test_every_sentence_once_in_sentence_mode(refer_root):
    dataset = build(refer_root, split=['val', 'testA', 'testB'])
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert [(i['split'], i['ref_id'], i['sent_id'], i['sentence'])
            for i in infos] == [
                ('val', 3, 30, 'crowd of people'), ('val', 3, 31, 'the group'),
                ('testA', 4, 40, 'small box'),
                ('testB', 5, 50, 'the round thing'), ('testB', 5, 51, 'circle')
            ]
    assert [i['sample_idx'] for i in infos] == list(range(5))
    assert infos[0]['img_path'].endswith('images/fixture_000002.jpg')
    assert (infos[0]['height'], infos[0]['width']) == (24, 36)
    assert infos[0]['seg_fields'] == []


def test_ref_mode_draws_each_sentence_of_the_ref(refer_root):
    dataset = build(refer_root, split='train', sample_mode='ref')
    np.random.seed(0)
    drawn = {dataset.get_data_info(0)['sent_id'] for _ in range(60)}
    assert drawn == {10, 11, 12}
    info = dataset.get_data_info(0)
    assert 'sentences' not in info and info['ref_id'] == 1


def test_serialized_and_plain_lists_agree(refer_root):
    packed = build(refer_root, split=ALL_SPLITS)
    plain = build(refer_root, split=ALL_SPLITS, serialize_data=False)
    assert len(packed) == len(plain) == 11
    for i in range(len(packed)):
        assert packed.get_data_info(i) == plain.get_data_info(i)


def test_lazy_init_indices_and_subset(refer_root):
    lazy = build(refer_root, split='train', lazy_init=True)
    assert not lazy._fully_initialized
    assert lazy.num_refs == 3  # initialises on demand
    assert len(lazy) == 6
    first_two_refs = build(refer_root, split='train', indices=2)
    assert len(first_two_refs) == 4  # ref 1 (3 sentences) + ref 2 (1)
    subset = lazy.get_subset([2])
    assert len(subset) == 2 and len(lazy) == 6
    assert {subset.get_data_info(i)['ref_id'] for i in range(2)} == {6}


def test_metainfo_is_binary(refer_root):
    dataset = build(refer_root, split='val', test_mode=True)
    assert dataset.metainfo['classes'] == ('background', 'object')


def test_masks_equal_pycocotools(refer_root):
    from dit_sam_mm.datasets import LoadReferAnnotations
    coco = COCO(str(refer_root / 'instances.json'))
    dataset = build(refer_root, split=ALL_SPLITS,
                    pipeline=[LoadReferAnnotations()])
    kinds = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        ann = coco.anns[sample['ann_id']]
        kinds.add((type(ann['segmentation']).__name__, ann['iscrowd']))
        expected = coco.annToMask(ann)
        assert sample['gt_seg_map'].dtype == np.uint8
        assert sample['gt_seg_map'].flags['C_CONTIGUOUS']
        np.testing.assert_array_equal(sample['gt_seg_map'], expected)
        assert sample['gt_seg_map'].sum() > 0
        assert sample['seg_fields'] == ['gt_seg_map']
    # polygons, compressed RLE and crowd RLE all went through the loader
    assert kinds == {('list', 0), ('dict', 0), ('dict', 1)}


def test_unknown_split_names_split_and_choices(refer_root):
    with pytest.raises(ValueError, match=r"\['tset'\].*\['testA', 'testB', "
                       r"'train', 'val'\]"):
        build(refer_root, split=['val', 'tset'])


def test_missing_annotation_names_ref_and_ann(refer_variant):
    def drop_ann(instances):
        instances['annotations'] = [
            a for a in instances['annotations'] if a['id'] != 202]

    root = refer_variant(edit_instances=drop_ann)
    with pytest.raises(ValueError, match='ref_id=4 points to ann_id=202'):
        build(root, split='testA')


def test_empty_sentence_names_ref_and_sentence(refer_variant):
    def blank(refs):
        refs[2]['sentences'][1]['raw'] = '   '

    root = refer_variant(edit_refs=blank)
    with pytest.raises(ValueError, match='ref_id=3 sent_id=31 has an empty'):
        build(root, split='val')


def test_missing_image_names_the_file(refer_variant):
    root = refer_variant(skip_images=('fixture_000003.jpg', ))
    dataset = build(root, split='testB', test_mode=True,
                    pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(FileNotFoundError, match='fixture_000003.jpg'):
        dataset[0]


@pytest.mark.parametrize('content,message', [
    (b'{"images": [{"id": 1, "file_na',
     r'not valid JSON: .*\(line 1, column 23, character 22 of 30 bytes\)'),
    (b'\xff\xfe\x00garbage', 'not UTF-8 text'),
    (b'[]', 'holds a JSON list'),
    (b'{"images": []}', "no 'annotations' list"),
])
def test_a_damaged_instances_json_is_named(refer_variant, content, message):
    root = refer_variant()
    (root / 'instances.json').write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        build(root, split='train')
    assert str(root / 'instances.json') in str(error.value)


@pytest.mark.parametrize('content,error,message', [
    (None, FileNotFoundError, 'image file not found'),
    (b'', ValueError, r'empty \(0 bytes\)'),
    (b'GIF89a not really', ValueError, 'cannot decode image file'),
])
def test_an_unreadable_image_is_named_by_the_loading_transform(
        refer_variant, content, error, message):
    root = refer_variant()
    image = root / 'images' / 'fixture_000003.jpg'
    if content is None:
        image.unlink()
    else:
        image.write_bytes(content)
    dataset = build(root, split='testB', test_mode=True,
                    pipeline=[dict(type='LoadReferImageFromFile')])
    with pytest.raises(error, match=message) as raised:
        dataset[0]
    assert str(image) in str(raised.value)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'refs\(unc\)\.p'):
        build(tmp_path, split='train')


def test_dataset_stays_small(tmp_path):
    """A RefCOCO-shaped list costs ~1 kB per ref once serialised.

    3,000 refs / 8,400 sentences / 1,200 images with 64-coordinate polygons
    (RefCOCO train: 42,404 refs / 120,624 sentences); the polygons dominate.
    """
    rng = np.random.default_rng(0)
    images = [dict(id=i, file_name=f'COCO_train2014_{i:012d}.jpg',
                   width=640, height=480) for i in range(1200)]
    anns, refs, sent_id = [], [], 0
    for ref_id in range(3000):
        polygon = [round(float(v), 2) for v in rng.uniform(0, 480, 64)]
        anns.append(dict(id=ref_id, image_id=ref_id % 1200, category_id=1,
                         iscrowd=0, segmentation=[polygon]))
        sents = []
        for _ in range(3 if ref_id % 5 else 2):  # 2.8 sentences per ref
            sents.append(dict(sent_id=sent_id, raw='the man in a red shirt '
                              'on the left', sent='x', tokens=[]))
            sent_id += 1
        refs.append(dict(ref_id=ref_id, ann_id=ref_id,
                         image_id=ref_id % 1200, split='train',
                         sentences=sents, sent_ids=[]))
    import json
    (tmp_path / 'instances.json').write_text(
        json.dumps(dict(images=images, annotations=anns)))
    (tmp_path / 'refs(unc).p').write_bytes(pickle.dumps(refs, protocol=2))
    dataset = build(tmp_path, split='train')
    assert len(dataset) == sent_id == 8400
    assert dataset.data_list == []  # only the byte buffer is kept
    held = (dataset.data_bytes.nbytes + dataset.data_address.nbytes +
            dataset._sample_ref.nbytes + dataset._sample_sent.nbytes +
            dataset._sentence_counts.nbytes)
    polygon_bytes = 3000 * 64 * 9  # pickled floats
    per_ref = (held - polygon_bytes) / 3000
    assert per_ref < 500, per_ref  # everything but the polygons
    assert held / 3000 < 1100
    assert isinstance(dataset, BaseDataset)


def test_a_sentence_that_is_not_text_is_named_as_such(refer_variant):
    def raw_number(refs):
        refs[3]['sentences'][0]['raw'] = 5

    with pytest.raises(ValueError) as error:
        build(refer_variant(raw_number), split='testA')
    assert str(error.value).endswith(
        "ref_id=4 sent_id=40: 'raw' is 5 of type int, not the text of a sentence")


@pytest.mark.parametrize('indices, problem', [
    (0, 'selects no ref'), ([], 'selects no ref'), ([5], 'names a position past the last ref'),
    ('1', 'must be an int'), ([0.5], 'must be an int'),
])
def test_indices_that_select_no_ref_are_refused(refer_root, indices, problem):
    with pytest.raises(ValueError, match=problem) as error:
        build(refer_root, split='train', indices=indices)
    assert str(error.value).startswith(f'RefCOCODataset indices={indices!r} (3 refs in split(s) '
                                       "['train'] of ")
    assert len(build(refer_root, split='train', indices=1)) == 3  # ref 1's three sentences
