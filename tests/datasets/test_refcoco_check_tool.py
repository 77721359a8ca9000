"""tools/dataset_converters/refcoco.py check on fixture folders."""
import io
import shutil
import subprocess
import sys

import pickle

import numpy as np
import pytest
from PIL import Image
from tool_loader import load_tool


@pytest.fixture(scope='module')
def refcoco_tool():
    return load_tool('tools/dataset_converters/refcoco.py')


def _data_root(write_refer_folder, tmp_path, **variant):
    """DATA_ROOT with coco/train2014 and refcoco/ from the REFER fixture."""
    data = tmp_path / 'data'
    refcoco = write_refer_folder(data / 'refcoco', **variant)
    (data / 'coco').mkdir()
    shutil.move(str(refcoco / 'images'), str(data / 'coco' / 'train2014'))
    return data


def test_empty_folder_lists_what_is_missing(refcoco_tool, tmp_path, capsys):
    assert refcoco_tool.main(['check', str(tmp_path)]) == 1
    out = capsys.readouterr().out
    for path in ('coco/train2014', 'refcoco/instances.json',
                 'refcoco+/refs(unc).p', 'refcocog/refs(umd).p',
                 'refcocog/refs(google).p'):
        assert path in out
    assert 'lichengunc/refer' in out and 'train2014.zip' in out
    assert 'FAILED' in out


def test_complete_folder_passes_with_split_warning(refcoco_tool, tmp_path,
                                                   capsys, write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path)
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 0
    out = capsys.readouterr().out
    assert '[WARN]  refcoco: sentences per split testA 1, testB 2, train 6, '\
        'val 2 differ from the published counts (train 120,624, val 10,834,'\
        ' testA 5,657, testB 5,059)' in out
    assert '[OK]    refcoco: all 3 images found' in out
    assert out.strip().endswith(f'OK: 0 error(s), 1 warning(s) in {data}')
    # the same folder fails when split sizes must match
    assert refcoco_tool.main(['check', str(data), '--datasets', 'refcoco',
                              '--strict']) == 1
    # and when other datasets are asked for (default: all four)
    assert refcoco_tool.main(['check', str(data)]) == 1
    assert 'refcoco+: missing' in capsys.readouterr().out


def test_missing_image_and_annotation_are_errors(refcoco_tool, tmp_path,
                                                 capsys, write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path,
                      skip_images=('fixture_000002.jpg', ))
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 1
    out = capsys.readouterr().out
    assert '1 of 3 images missing' in out and 'fixture_000002.jpg' in out

    refs_file = data / 'refcoco' / 'refs(unc).p'
    refs = pickle.loads(refs_file.read_bytes())
    refs[0]['ann_id'] = 4242
    refs_file.write_bytes(pickle.dumps(refs, protocol=2))
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 1
    assert 'ref_id=1/ann_id=4242' in capsys.readouterr().out


def test_runs_as_a_script(repo_root, tmp_path, write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path)
    tool = repo_root / 'tools' / 'dataset_converters' / 'refcoco.py'
    done = subprocess.run(
        [sys.executable, str(tool), 'check', str(data), '--datasets',
         'refcoco', 'refcocog_umd'], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert 'refcocog_umd: missing' in done.stdout
    assert 'refs(umd).p' in done.stdout


def _png(width, height):
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3),
                                               dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG')
    return buffer.getvalue()


def test_unreadable_images_are_errors_with_their_names(
        refcoco_tool, tmp_path, capsys, write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path)
    images = data / 'coco' / 'train2014'
    (images / 'fixture_000001.jpg').write_bytes(b'')
    (images / 'fixture_000002.jpg').write_bytes(b'not an image at all')
    (images / 'fixture_000003.jpg').write_bytes(_png(33, 32))  # json: 32x32
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 1
    out = capsys.readouterr().out
    assert '[ERROR] refcoco: 3 of 3 images under' in out
    assert 'fixture_000001.jpg (empty file, 0 bytes)' in out
    assert 'fixture_000002.jpg (not readable as an image: ' in out
    assert ('fixture_000003.jpg (33x32 pixels, but instances.json says '
            '32x32)') in out
    assert 'all 3 images found' not in out and 'FAILED' in out


def test_decode_images_finds_a_damaged_body(refcoco_tool, tmp_path, capsys,
                                            write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path)
    damaged = _png(32, 32)[:200]  # the header is whole, the pixels are not
    (data / 'coco' / 'train2014' / 'fixture_000003.jpg').write_bytes(damaged)
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 0
    assert 'headers read; --decode-images' in capsys.readouterr().out
    assert refcoco_tool.main(['check', str(data), '--datasets', 'refcoco',
                              '--decode-images']) == 1
    out = capsys.readouterr().out
    assert '1 of 3 images under' in out
    assert 'fixture_000003.jpg (not readable as an image: cannot decode' in out
    # whole images pass the full decode
    (data / 'coco' / 'train2014' / 'fixture_000003.jpg').write_bytes(
        _png(32, 32))
    assert refcoco_tool.main(['check', str(data), '--datasets', 'refcoco',
                              '--decode-images']) == 0
    assert 'all 3 images found under' in capsys.readouterr().out


def test_a_truncated_instances_json_is_an_error_naming_it(
        refcoco_tool, tmp_path, capsys, write_refer_folder):
    data = _data_root(write_refer_folder, tmp_path)
    ann_file = data / 'refcoco' / 'instances.json'
    ann_file.write_bytes(ann_file.read_bytes()[:100])
    assert refcoco_tool.main(['check', str(data), '--datasets',
                              'refcoco']) == 1
    out = capsys.readouterr().out
    assert f"[ERROR] refcoco: '{ann_file}' is not valid JSON" in out
    assert 'of 100 bytes); a truncated or damaged copy?' in out
