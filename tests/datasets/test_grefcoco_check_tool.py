"""tools/dataset_converters/refcoco.py check on gRefCOCO fixture folders.

The fixture (conftest.py) has 10 sentences over 3 images: train 4, val 2,
testA 1, testB 3; no-target: ref 2 (1 sentence) + ref 5 (2) = 3; several
targets: ref 1 (2) + ref 3 (2) + ref 7 (1) = 5.
"""
import json
import shutil

import pytest
from tool_loader import load_tool


@pytest.fixture(scope='module')
def refcoco_tool():
    return load_tool('tools/dataset_converters/refcoco.py')


def _data_root(write_grefcoco_folder, tmp_path, refs=None,
               refs_name='grefs(unc).json'):
    """DATA_ROOT with coco/train2014 and grefcoco/ from the gRefCOCO fixture."""
    data = tmp_path / 'data'
    folder = write_grefcoco_folder(data / 'grefcoco', refs,
                                   refs_name=refs_name)
    (data / 'coco').mkdir()
    shutil.move(str(folder / 'images'), str(data / 'coco' / 'train2014'))
    return data


def _check(tool, data, *options):
    return tool.main(['check', str(data), '--datasets', 'grefcoco',
                      *options])


@pytest.mark.parametrize('refs_name', ['grefs(unc).json', 'grefs(unc).p'])
def test_counts_and_shares(refcoco_tool, tmp_path, capsys,
                           write_grefcoco_folder, refs_name):
    data = _data_root(write_grefcoco_folder, tmp_path, refs_name=refs_name)
    assert _check(refcoco_tool, data) == 0
    out = capsys.readouterr().out
    assert ("[WARN]  grefcoco: 7 grefs, 10 sentences over 3 images (per "
            "split: testA 1, testB 3, train 4, val 2) differ from the GRES "
            "paper's 278,232 sentences over 19,994 images") in out
    assert ('[OK]    grefcoco: no-target sentences 3 (30.0%), multi-target '
            '5 (50.0%) (GRES paper: 32,202 and 80,022 of 278,232)') in out
    assert '[OK]    grefcoco: all 3 images found' in out
    assert out.strip().endswith(f'OK: 0 error(s), 1 warning(s) in {data}')
    assert _check(refcoco_tool, data, '--strict') == 1


def test_missing_annotations_and_malformed_ann_ids_are_errors(
        refcoco_tool, tmp_path, capsys, write_grefcoco_folder,
        fixture_grefs):
    refs = fixture_grefs
    refs[0]['ann_id'] = [101, -1]  # -1 among real ids
    refs[3]['ann_id'] = 4242  # not in instances.json (bare int)
    refs[6]['ann_id'] = [301, 5151]
    refs[4]['no_target'] = False  # ann_id [-1]
    data = _data_root(write_grefcoco_folder, tmp_path, refs)
    (data / 'coco' / 'train2014' / 'fixture_000002.jpg').unlink()
    assert _check(refcoco_tool, data) == 1
    out = capsys.readouterr().out
    assert ('[ERROR] grefcoco: 2 annotation ids of refs not in '
            'instances.json: ref_id=4/ann_id=4242, ref_id=7/ann_id=5151'
            ) in out
    assert ('[ERROR] grefcoco: 2 grefs whose ann_id is malformed (-1 among '
            'annotation ids, empty, not ints, or against no_target): '
            'ref_id=1/ann_id=[101, -1], ref_id=5/ann_id=[-1]') in out
    assert '1 of 3 images missing' in out and 'fixture_000002.jpg' in out
    # the counts are still reported
    assert '7 grefs, 10 sentences over 3 images' in out
    assert 'FAILED: 3 error(s)' in out


def test_missing_files_name_the_gres_source(refcoco_tool, tmp_path, capsys):
    (tmp_path / 'coco' / 'train2014').mkdir(parents=True)
    assert _check(refcoco_tool, tmp_path) == 1
    out = capsys.readouterr().out
    assert 'grefcoco: missing' in out and 'grefs(unc).json' in out
    assert 'henghuiding/gRefCOCO' in out


def test_a_damaged_grefs_file_is_an_error_naming_it(
        refcoco_tool, tmp_path, capsys, write_grefcoco_folder,
        fixture_grefs):
    data = _data_root(write_grefcoco_folder, tmp_path)
    refs_file = data / 'grefcoco' / 'grefs(unc).json'
    refs_file.write_text(json.dumps(fixture_grefs)[:50])
    assert _check(refcoco_tool, data) == 1
    out = capsys.readouterr().out
    assert f"[ERROR] grefcoco: cannot read {refs_file}: '{refs_file}' is " \
           'not valid JSON' in out


def test_an_empty_grefs_list_is_an_error(refcoco_tool, tmp_path, capsys,
                                        write_grefcoco_folder):
    data = _data_root(write_grefcoco_folder, tmp_path)
    refs_file = data / 'grefcoco' / 'grefs(unc).json'
    refs_file.write_text('[]')
    assert _check(refcoco_tool, data) == 1
    out = capsys.readouterr().out
    assert f"[ERROR] grefcoco: cannot read {refs_file}: '{refs_file}' holds an empty list: " \
           'no refs' in out
    assert 'FAILED: 1 error(s)' in out


def test_a_sentence_that_is_not_text_is_named_as_such(refcoco_tool, tmp_path, capsys,
                                                      write_grefcoco_folder, fixture_grefs):
    fixture_grefs[0]['sentences'][1]['raw'] = 5
    fixture_grefs[1]['sentences'][0]['raw'] = ' '
    data = _data_root(write_grefcoco_folder, tmp_path, fixture_grefs)
    assert _check(refcoco_tool, data) == 1
    out = capsys.readouterr().out
    assert ('[ERROR] grefcoco: 1 sentences whose text is not a string: ref_id=1/sent_id=11 '
            '(raw = 5, not a string)') in out
    assert '[ERROR] grefcoco: 1 empty sentences: ref_id=2/sent_id=20' in out


def test_only_checked_when_named(refcoco_tool, tmp_path, capsys):
    data = tmp_path / 'data'
    data.mkdir()
    refcoco_tool.main(['check', str(data)])
    out = capsys.readouterr().out
    assert '] refcoco: missing' in out and 'grefcoco:' not in out
    assert _check(refcoco_tool, data) == 1
    out = capsys.readouterr().out
    assert 'grefcoco: missing' in out and '] refcoco:' not in out
