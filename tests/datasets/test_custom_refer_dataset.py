"""CustomReferDataset: the same samples as RefCOCODataset / GRefCOCODataset from the same data,
mask images, the metrics, and one-line errors naming file, line and field."""
import json

import numpy as np
import pytest
from mmcv.transforms import Compose
from mmseg.registry import DATASETS
from PIL import Image
from pycocotools import mask as mask_utils

from custom_fixture import SPLITS, custom_records, write_custom_folder, write_lines
from dit_sam_mm.datasets import (CustomFormatError, CustomReferDataset, GRefCOCODataset,
                                 LoadReferAnnotations, RefCOCODataset)
from dit_sam_mm.datasets.custom_writer import make_record
from dit_sam_mm.evaluation.metrics import GRESMetric, ReferSegMetric

ALL = list(SPLITS)
# Fields that name things differently: the custom format's image id is its path, and its
# annotation ids count from 1 in file order.
RENAMED = {'image_id', 'ann_id', 'ann_ids'}


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def custom(root, images, **kwargs):
    return DATASETS.build(dict(type='CustomReferDataset', data_root=str(root),
                               data_prefix=dict(img_path=str(images)), **kwargs))


@pytest.mark.parametrize('generalized', [False, True])
def test_samples_equal_the_refer_datasets(refer_root, gref_root, tmp_path, generalized):
    fixture = gref_root if generalized else refer_root
    root = write_custom_folder(tmp_path, custom_records(fixture, generalized))
    if generalized:  # the custom format has no crowd flag: every object is a target
        expected = GRefCOCODataset(data_root=str(fixture), split=ALL, include_crowd=True,
                                   data_prefix=dict(img_path='images/'))
    else:
        expected = RefCOCODataset(data_root=str(fixture), split=ALL,
                                  data_prefix=dict(img_path='images/'))
    got = custom(root, fixture / 'images', split=ALL, generalized=generalized)
    assert isinstance(got, CustomReferDataset) and len(got) == len(expected)
    load = LoadReferAnnotations()
    for mine, theirs in zip(infos(got), infos(expected)):
        assert set(mine) == set(theirs)
        assert {k: v for k, v in mine.items() if k not in RENAMED} == \
            {k: v for k, v in theirs.items() if k not in RENAMED}
        assert mine['image_id'] == theirs['img_path'].rsplit('/', 1)[1]
        np.testing.assert_array_equal(load(dict(mine))['gt_seg_map'],
                                      load(dict(theirs))['gt_seg_map'])


def test_ref_mode_subsets_and_splits(refer_root, tmp_path):
    root = write_custom_folder(tmp_path, custom_records(refer_root))
    dataset = custom(root, refer_root / 'images', split=['val', 'train'], sample_mode='ref')
    assert [i['ref_id'] for i in infos(dataset)] == [3, 1, 2, 6]
    assert [i['split'] for i in infos(dataset)] == ['val', 'train', 'train', 'train']
    dataset.sample_mode = 'sentence'
    assert len(dataset) == 2 + 3 + 1 + 2
    subset = dataset.get_subset([1])
    assert [(i['ref_id'], i['sent_id']) for i in infos(subset)] == [(1, 10), (1, 11), (1, 12)]


def test_mask_images_become_their_masks(refer_root, tmp_path):
    mask = np.zeros((30, 40), np.uint8)
    mask[3:9, 5:30] = 7
    Image.fromarray(mask).save(refer_root / 'images' / 'fixture_mask.png')
    palette = Image.fromarray((mask > 0).astype(np.uint8), mode='P')
    palette.putpalette([0, 0, 0, 200, 30, 30])
    palette.save(tmp_path / 'palette.png')
    records = [make_record(1, 'fixture_000001.jpg', 40, 30, ['the bar'],
                           [{'mask': 'fixture_mask.png'}])]
    root = write_custom_folder(tmp_path / 'data', {'train': records})
    sample = custom(root, refer_root / 'images').get_data_info(0)
    np.testing.assert_array_equal(LoadReferAnnotations()(sample)['gt_seg_map'], mask > 0)
    assert sample['segmentation'] == dict(
        size=[30, 40], counts=mask_utils.encode(np.asfortranarray(
            (mask > 0).astype(np.uint8)))['counts'].decode())


def _pipeline(vocab_file):
    return Compose([dict(type='LoadReferImageFromFile'), dict(type='LoadReferAnnotations'),
                    dict(type='TokenizeText', vocab_file=vocab_file),
                    dict(type='PackReferSegInputs')])


@pytest.mark.parametrize('generalized', [False, True])
def test_metrics_score_the_samples(refer_root, gref_root, tmp_path, vocab_file, generalized):
    """The pipeline packs what the metric reads: the ground truth as prediction scores 100."""
    fixture = gref_root if generalized else refer_root
    root = write_custom_folder(tmp_path, custom_records(fixture, generalized))
    dataset = custom(root, fixture / 'images', split=ALL, generalized=generalized,
                     test_mode=True, pipeline=_pipeline(vocab_file))
    metric = GRESMetric() if generalized else ReferSegMetric()
    outputs = []
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        sample.pred_sem_seg = sample.gt_sem_seg
        outputs.append(sample.to_dict())
    metric.process({}, outputs)
    results = metric.compute_metrics(metric.results)
    key = 'cIoU' if generalized else 'oIoU'
    assert results[key] == 100.0 and results[f'testB/{key}'] == 100.0
    if generalized:
        assert results['N-acc'] == 100.0
        assert sum(bool(o['no_target']) for o in outputs) == 3


def test_several_objects_need_generalized(gref_root, tmp_path):
    root = write_custom_folder(tmp_path, custom_records(gref_root, generalized=True))
    with pytest.raises(ValueError, match=r'train\.jsonl, line 1: the record has 2 objects.*'
                       r'generalized=True'):
        custom(root, gref_root / 'images', split='train')
    with pytest.raises(ValueError, match=r'testB\.jsonl, line 1: the record has no target'):
        custom(root, gref_root / 'images', split='testB')


GOOD = dict(id=1, image='a.jpg', width=4, height=3, sentences=['the thing'],
            objects=[{'polygons': [[0, 0, 3, 0, 3, 2]]}])


def _with(**changes):
    record = json.loads(json.dumps(GOOD))
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


ZEROS_RLE = {'size': [3, 4], 'counts': [12]}
BAD_RECORDS = [
    ('{"id": 1, "image": ', r'line 2: not valid JSON: Expecting value \(column 20\)'),
    ('{"id": NaN}', r'line 2: NaN is not a number JSON allows'),
    ('[' * 100000 + ']' * 100000, r'line 2: JSON nested too deeply'),
    ('[1, 2]', r'line 2: a record must be a JSON object, got list'),
    (_with(sentence=['x']), r"line 2: unknown field\(s\) \['sentence'\]"),
    (_with(image=None), r'line 2: image: missing'),
    (_with(image='/etc/passwd'), r"line 2: image: '/etc/passwd' is absolute"),
    (_with(image='../../secret.jpg'), r'line 2: image: .* leaves the image root'),
    (_with(width=0), r'line 2: width: must be a positive integer, got 0'),
    (_with(id=True), r'line 2: id: must be an integer or a string, got True'),
    (_with(id=1), r'line 2: id: 1 repeats the id of line 1'),
    (_with(sentences=[]), r'line 2: sentences: must be a non-empty list'),
    (_with(sentences=['ok', '  ']), r"line 2: sentences\[1\]: empty sentence '  '"),
    (_with(sentences=[{'text': 'a', 'id': 3}, {'text': 'b', 'id': 3}]),
     r'line 2: sentences\[1\]\.id: 3 repeats an id of this record'),
    (_with(objects=[]), r'line 2: objects: missing or empty; .*"no_target": true'),
    (_with(no_target=True), r'line 2: objects: a record with "no_target": true has no objects'),
    (_with(objects=[{'polygons': [[0, 0, 3, 0]]}]),
     r'line 2: objects\[0\]\.polygons: \[0\] has 4 numbers; .*at least 3 points'),
    (_with(objects=[{'polygons': [[0, 0, 3, 0, 3, 'x']]}]),
     r'line 2: objects\[0\]\.polygons: \[0\] must be a list of finite numbers'),
    (_with(objects=[{'polygons': [[0, 0, 3, 0, 3, 1]], 'rle': ZEROS_RLE}]),
     r"line 2: objects\[0\]: needs exactly one of \['polygons', 'rle', 'mask'\]"),
    (_with(objects=[{'rle': {'size': [4, 4], 'counts': [16]}}]),
     r'line 2: objects\[0\]\.rle: size \[4, 4\] differs from the image size \[3, 4\]'),
    (_with(objects=[{'rle': {'size': [3, 4], 'counts': [1000]}}]),
     r'line 2: objects\[0\]\.rle: counts add up to 1,000 pixels, not .* 12'),
    (_with(objects=[{'rle': {'size': [3, 4], 'counts': 'PPPPPPPPP1'}}]),
     r'line 2: objects\[0\]\.rle: counts add up to'),
    (_with(objects=[{'rle': {'size': [3, 4], 'counts': [13, -1]}}]),
     r'line 2: objects\[0\]\.rle: counts hold a negative run length'),
    (_with(objects=[{'mask': 'missing.png'}]),
     r'line 2: objects\[0\]\.mask: mask file not found: .*missing\.png'),
    (_with(objects=[{'mask': 'big.png'}]),
     r'line 2: objects\[0\]\.mask: mask .*big\.png is 5x5 pixels, but its image is 4x3'),
    (_with(objects=[{'polygons': [[0, 0, 3, 0, 3, 2]], 'category_id': 'cat'}]),
     r"line 2: objects\[0\]\.category_id: must be an integer, got 'cat'"),
    (_with(width=5, id=2), r"line 2: width, height: 5x3, but line 1 gives 'a.jpg' as 4x3"),
]


@pytest.mark.parametrize('line,message', BAD_RECORDS, ids=[m for _, m in BAD_RECORDS])
def test_bad_records_name_file_line_and_field(tmp_path, line, message):
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / 'big.png')
    write_lines(tmp_path / 'train.jsonl', [GOOD, line])
    with pytest.raises(CustomFormatError, match=r'train\.jsonl, ' + message):
        CustomReferDataset(data_root=str(tmp_path), data_prefix=dict(img_path=str(tmp_path)))


def test_blank_lines_are_skipped_and_a_missing_split_named(tmp_path):
    (tmp_path / 'val.jsonl').write_text('\n' + json.dumps(GOOD) + '\n\n')
    assert len(CustomReferDataset(data_root=str(tmp_path), split='val')) == 1
    with pytest.raises(FileNotFoundError, match=r'annotation file not found: .*test\.jsonl'):
        CustomReferDataset(data_root=str(tmp_path), split=['val', 'test'])


def test_rle_counts_decode_as_pycocotools(tmp_path):
    from dit_sam_mm.datasets.mask_codec import check_rle, compressed_counts
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (3, 4), (37, 53), (120, 90)]:
        mask = (rng.random(shape) < rng.random()).astype(np.uint8)
        mask[: shape[0] // 2] = 1  # long runs: several 5-bit groups per count
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs = compressed_counts(rle['counts'].decode())
        flat = mask.flatten(order='F')
        expected = np.diff(np.flatnonzero(np.diff(np.concatenate([[2], flat, [2]])))).tolist()
        if flat[0] == 1:
            expected = [0] + expected
        assert runs.tolist() == expected
        check_rle(dict(size=list(shape), counts=rle['counts'].decode()), *shape)


def test_preflight_names_each_missing_split_file(tmp_path):
    from mmengine.config import Config

    from dit_sam_mm.utils.preflight import find_missing_files
    (tmp_path / 'train.jsonl').write_text(json.dumps(GOOD) + '\n')
    dataset = dict(type='CustomReferDataset', data_root=str(tmp_path), ann_file='{split}.jsonl')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(dataset, split='train')),
                      val_dataloader=dict(dataset=dict(dataset, split=['val', 'train']))))
    missing = list(find_missing_files(cfg))
    assert [m.path for m in missing] == [str(tmp_path / 'val.jsonl')]
    assert 'docs/en/custom_data.md' in missing[0].howto
