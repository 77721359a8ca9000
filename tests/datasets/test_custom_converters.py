"""tools/dataset_converters/custom_refer.py from-folder / from-coco / from-labelme: the records
read back as the sources' masks and sentences; every refusal is one line and writes nothing."""
import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from tool_loader import load_tool

from dit_sam_mm.datasets import (CustomReferDataset, LoadReferAnnotations,
                                 decode_coco_segmentation)
from dit_sam_mm.utils.cli import run_main

TOOL = load_tool('tools/dataset_converters/custom_refer.py')


def run(argv, capsys):
    """Exit status and stderr of the tool."""
    status = run_main(lambda: TOOL.main([str(a) for a in argv]), 'custom_refer.py')
    return status, capsys.readouterr().err


def masks_of(root, split='train', image_root=None):
    dataset = CustomReferDataset(data_root=str(root), split=split, generalized=True,
                                 data_prefix=dict(img_path=str(image_root or root)))
    load = LoadReferAnnotations(check_image_size=False)
    return {(i['ref_id'], i['sentence']): load(dict(i))['gt_seg_map']
            for i in (dataset.get_data_info(k) for k in range(len(dataset)))}


def assert_refused(status, err, message, folder, before):
    assert status == 1
    assert err.count('\n') == 1 and err.startswith('custom_refer.py: error: ')
    assert message in err, err
    assert sorted(os.listdir(folder)) == before  # nothing written, no temporary file left


# ---------------------------------------------------------------- from-folder
def _mask(shape, box):
    mask = np.zeros(shape, np.uint8)
    mask[box[0]:box[1], box[2]:box[3]] = 255
    return mask


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / 'mine'
    (root / 'images').mkdir(parents=True)
    (root / 'masks').mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (('a.jpg', (20, 30)), ('b.png', (16, 16))):
        Image.fromarray(rng.integers(0, 255, shape + (3,), np.uint8)).save(root / 'images' / name)
    Image.fromarray(_mask((20, 30), (2, 8, 3, 12))).save(root / 'masks' / 'a_left.png')
    Image.fromarray(_mask((20, 30), (10, 18, 20, 28))).save(root / 'masks' / 'a_right.png')
    Image.fromarray(_mask((16, 16), (0, 4, 0, 4))).save(root / 'masks' / 'b_corner.png')
    (root / 'sentences.txt').write_text(
        '# image\tmasks\tsentence\n'
        'a.jpg\ta_left.png\tthe left box\n'
        'a.jpg\ta_left.png\tleftmost thing\n'
        'a.jpg\ta_left.png+a_right.png\tboth boxes\n'
        'a.jpg\t-\tthe dog\n'
        '\n'
        'b.png\tb_corner.png\tthe corner\n')
    return root


def test_folder_records_read_back_as_the_masks(folder, capsys):
    status, _ = run(['from-folder', folder], capsys)
    assert status == 0
    lines = (folder / 'train.jsonl').read_text().splitlines()
    assert [json.loads(line)['sentences'] for line in lines] == [
        ['the left box', 'leftmost thing'], ['both boxes'], ['the dog'], ['the corner']]
    masks = masks_of(folder)
    left = np.asarray(Image.open(folder / 'masks' / 'a_left.png')) > 0
    right = np.asarray(Image.open(folder / 'masks' / 'a_right.png')) > 0
    np.testing.assert_array_equal(masks[('a.jpg|a_left.png', 'leftmost thing')], left)
    np.testing.assert_array_equal(masks[('a.jpg|a_left.png+a_right.png', 'both boxes')],
                                  left | right)
    assert not masks[('a.jpg|-', 'the dog')].any()


def test_folder_holdout_is_by_image(folder, capsys):
    status, _ = run(['from-folder', folder, '--holdout-fraction', '0.5', '--out-dir',
                     folder / 'out'], capsys)
    assert status == 0
    images = {split: {json.loads(line)['image'] for line in
                      (folder / 'out' / f'{split}.jsonl').read_text().splitlines()}
              for split in ('train', 'val')}
    assert images['train'] and images['val'] and not images['train'] & images['val']


FOLDER_REFUSALS = [
    (lambda r: (r / 'sentences.txt').unlink(), 'sentences.txt not found'),
    (lambda r: (r / 'sentences.txt').write_text('a.jpg\tthe box\n'),
     'sentences.txt, line 1: expected IMAGE<TAB>MASKS<TAB>SENTENCE (3 fields), got 2'),
    (lambda r: (r / 'sentences.txt').write_text('a.jpg\ta_left.png\t \n'),
     'sentences.txt, line 1: empty sentence'),
    (lambda r: (r / 'sentences.txt').write_bytes(b'a.jpg\ta_left.png\t\xff\n'),
     'sentences.txt, line 1: not UTF-8 text'),
    (lambda r: (r / 'sentences.txt').write_text('../a.jpg\ta_left.png\tx\n'),
     "sentences.txt, line 1: '../a.jpg' leaves the image root"),
    (lambda r: (r / 'images' / 'b.png').unlink(), 'sentences.txt, line 7: image file not found'),
    (lambda r: (r / 'masks' / 'a_right.png').unlink(),
     'sentences.txt, line 4: mask file not found'),
    (lambda r: Image.fromarray(np.zeros((5, 5), np.uint8)).save(r / 'masks' / 'a_left.png'),
     'sentences.txt, line 2: mask ' + os.sep),
    (lambda r: (r / 'images' / 'b.png').write_bytes(b'not an image'),
     'sentences.txt, line 7: cannot decode image file'),
    (lambda r: (r / 'sentences.txt').write_text('# nothing\n'), 'holds no sentence'),
    (lambda r: (r / 'train.jsonl').write_text('old\n'), 'train.jsonl exists; give --overwrite'),
]


@pytest.mark.parametrize('edit,message', FOLDER_REFUSALS, ids=[m for _, m in FOLDER_REFUSALS])
def test_folder_refusals_write_nothing(folder, capsys, edit, message):
    edit(folder)
    before = sorted(os.listdir(folder))
    assert_refused(*run(['from-folder', folder], capsys), message, folder, before)


# ---------------------------------------------------------------- from-coco
def _write_table(path, rows):
    if path.suffix == '.json':
        path.write_text(json.dumps(rows))
        return path
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for row in rows for k in row}))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize('suffix', ['.csv', '.json'])
def test_coco_records_read_back_as_the_annotations(refer_root, tmp_path, capsys, suffix):
    multi = '101 102' if suffix == '.csv' else [101, 102]
    table = _write_table(tmp_path / f'sentences{suffix}', [
        dict(ann_ids='101', sentence='the person'),
        dict(ann_ids='101', sentence='left person'),
        dict(ann_ids=multi, sentence='both things', split='val'),
        dict(ann_ids='201', sentence='the crowd', id='crowd-1'),
        dict(ann_ids='', image_id='3', sentence='a red car', split='val'),
    ])
    out = tmp_path / 'out'
    status, _ = run(['from-coco', refer_root / 'instances.json', table, '--out-dir', out],
                    capsys)
    assert status == 0
    coco = COCO(str(refer_root / 'instances.json'))
    train = masks_of(out, 'train', refer_root / 'images')
    np.testing.assert_array_equal(train[('ann:101', 'left person')], coco.annToMask(coco.anns[101]))
    np.testing.assert_array_equal(train[('crowd-1', 'the crowd')], coco.annToMask(coco.anns[201]))
    val = masks_of(out, 'val', refer_root / 'images')
    np.testing.assert_array_equal(val[('ann:101,102', 'both things')],
                                  coco.annToMask(coco.anns[101]) | coco.annToMask(coco.anns[102]))
    assert not val[('image:3:none', 'a red car')].any()


COCO_REFUSALS = [
    ([dict(ann_ids='555', sentence='x')], 'sentences.csv, line 2: ann_ids: [555] not in'),
    ([dict(ann_ids='', sentence='x')], 'line 2: a sentence without annotations needs an image_id'),
    ([dict(ann_ids='101 301', sentence='x')], 'line 2: the annotations and image_id name the '
     'images [1, 3]'),
    ([dict(ann_ids='101', sentence='x'), dict(ann_ids='102', sentence='')],
     'sentences.csv, line 3: sentence: empty or missing'),
    ([dict(ann_ids='1o1', sentence='x')], "line 2: ann_ids: expected integer ids, got '1o1'"),
    ([dict(ann_ids='', image_id='9', sentence='x')], 'line 2: image_id 9 is not in'),
    ([dict(ann='101', sentence='x')], "line 1: the header lacks the column(s) ['ann_ids']"),
]


@pytest.mark.parametrize('rows,message', COCO_REFUSALS, ids=[m for _, m in COCO_REFUSALS])
def test_coco_refusals_write_nothing(refer_root, tmp_path, capsys, rows, message):
    table = _write_table(tmp_path / 'sentences.csv', rows)
    (tmp_path / 'out').mkdir()
    assert_refused(*run(['from-coco', refer_root / 'instances.json', table, '--out-dir',
                         tmp_path / 'out'], capsys), message, tmp_path / 'out', [])


def test_coco_refuses_a_damaged_instances_file(refer_root, tmp_path, capsys):
    broken = tmp_path / 'instances.json'
    broken.write_text((refer_root / 'instances.json').read_text()[:200])
    table = _write_table(tmp_path / 'sentences.json', [dict(ann_ids=[101], sentence='x')])
    before = sorted(os.listdir(tmp_path))
    assert_refused(*run(['from-coco', broken, table], capsys), 'is not valid JSON', tmp_path,
                   before)


# ---------------------------------------------------------------- from-labelme
def _labelme(image, shapes, width=30, height=20):
    return dict(version='5.4.1', imagePath=image, imageWidth=width, imageHeight=height,
                imageData=None, shapes=shapes, flags={})


def _shape(label, points, kind='polygon', description=''):
    return dict(label=label, points=points, shape_type=kind, description=description,
                group_id=None, flags={})


@pytest.fixture
def labelme(tmp_path):
    root = tmp_path / 'labelme'
    (root / 'sub').mkdir(parents=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / 'sub' / 'one.jpg')
    (root / 'sub' / 'one.json').write_text(json.dumps(_labelme('one.jpg', [
        _shape('the cup', [[1, 1], [10, 1], [10, 8]], description='cup on the left'),
        _shape('the cup', [[12, 12], [20, 18]], 'rectangle', description='cup on the left'),
        _shape('the plate', [[2, 10], [9, 10], [9, 19], [2, 19]], description='a plate'),
    ])))
    return root


@pytest.mark.parametrize('field', ['label', 'description'])
def test_labelme_shapes_with_one_sentence_are_one_target(labelme, capsys, field):
    status, _ = run(['from-labelme', labelme, '--sentence-from', field], capsys)
    assert status == 0
    masks = masks_of(labelme)
    cup = 'the cup' if field == 'label' else 'cup on the left'
    plate = 'the plate' if field == 'label' else 'a plate'
    triangle = [1, 1, 10, 1, 10, 8]
    rectangle = [12, 12, 20, 12, 20, 18, 12, 18]
    np.testing.assert_array_equal(masks[('sub/one.jpg#0', cup)],
                                  decode_coco_segmentation([triangle, rectangle], 20, 30))
    np.testing.assert_array_equal(masks[('sub/one.jpg#1', plate)], decode_coco_segmentation(
        [[2, 10, 9, 10, 9, 19, 2, 19]], 20, 30))


LABELME_REFUSALS = [
    (lambda s: s.append(_shape('a ring', [[5, 5], [8, 8]], 'circle')),
     "one.json: shapes[3]: shape_type 'circle' is not a region"),
    (lambda s: s.append(_shape(' ', [[1, 1], [5, 1], [5, 5]])),
     'one.json: shapes[3]: empty label'),
    (lambda s: s.append(_shape('x', [[1, 1], [5, 1]])),
     'one.json: shapes[3]: a polygon needs at least 3 points, got 2'),
    (lambda s: s.append(_shape('x', [[1, 'a'], [5, 1], [5, 5]])),
     'one.json: shapes[3]: points must be a list of [x, y] number pairs'),
]


@pytest.mark.parametrize('edit,message', LABELME_REFUSALS, ids=[m for _, m in LABELME_REFUSALS])
def test_labelme_refusals_write_nothing(labelme, capsys, edit, message):
    path = labelme / 'sub' / 'one.json'
    content = json.loads(path.read_text())
    edit(content['shapes'])
    path.write_text(json.dumps(content))
    before = sorted(os.listdir(labelme))
    assert_refused(*run(['from-labelme', labelme], capsys), message, labelme, before)


@pytest.mark.parametrize('text,message', [
    (json.dumps(_labelme('../../one.jpg', [])), "imagePath: '../one.jpg' leaves the image root"),
    ('[' * 100000 + ']' * 100000, 'nests its lists and objects too deep'),
    ('[]', 'not a LabelMe annotation'),
    (json.dumps(dict(_labelme('one.jpg', []), imageWidth='30')), 'imageWidth: missing or not'),
])
def test_labelme_refuses_files_that_are_not_annotations(labelme, capsys, text, message):
    (labelme / 'sub' / 'one.json').write_text(text)
    before = sorted(os.listdir(labelme))
    status, err = run(['from-labelme', labelme], capsys)
    assert_refused(status, err, message, labelme, before)


def test_labelme_needs_files(tmp_path, capsys):
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir()
    assert_refused(*run(['from-labelme', tmp_path], capsys), 'no LabelMe *.json file under',
                   tmp_path, [])


# ---------------------------------------------------------------- the docs' example
def test_example_folder_converts_and_reads_back(tmp_path, capsys):
    example = load_tool('tools/dataset_converters/make_custom_example.py')
    assert example.main([str(tmp_path), '--num-images', '9']) == 0
    assert run(['from-folder', tmp_path], capsys)[0] == 0
    masks = masks_of(tmp_path)
    assert masks and all(mask.any() for mask in masks.values())
    lines = (tmp_path / 'sentences.txt').read_text().splitlines()[1:]
    image, mask_name, sentence = lines[0].split('\t')
    key = next(k for k in masks if k[1] == sentence and k[0].startswith(image))
    np.testing.assert_array_equal(masks[key], np.asarray(
        Image.open(tmp_path / 'masks' / mask_name)) > 0)
    status, err = run_main(lambda: example.main([str(tmp_path)]), 'make_custom_example.py'), \
        capsys.readouterr().err
    assert status == 1 and 'sentences.txt exists; give --overwrite' in err
