"""Refs, grefs and image files built to hang or exhaust a reader are refused quickly, in one line.

* A grefs pickle of a few hundred bytes whose lists share references (each level holds the
  previous one twice: 2**40 paths) is walked once per object, by the dataset and the checker.
* Nesting far deeper than REFER data (pickle or JSON) and reference cycles are refused, naming
  the file, instead of a RecursionError.
* Images whose header claims a huge size (PNG, Radiance HDR, PFM, PPM, PAM, Sun raster) with a
  payload of a few bytes are refused from the header, naming the file, its size and the limit,
  by every reader (the loading transform, the inferencer for paths and bytes, both demos and
  the data checker) without calling the decoder; a separate interpreter shows that OpenCV itself
  allocates gigabytes for them.
"""
import json
import pickle
import runpy
import signal
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path

import mmcv
import numpy as np
import pytest
from PIL import Image
from tool_loader import REPO_ROOT, load_tool

from dit_sam_mm.apis import read_image
from dit_sam_mm.datasets import GRefCOCODataset, read_grefs_file
from dit_sam_mm.datasets.image_limits import (DEFAULT_MAX_PIXELS, ImageTooLargeError,
                                              check_image_size)
from dit_sam_mm.datasets.refer_pickle import UnsafePickleError, load_plain_pickle
from dit_sam_mm.datasets.transforms import LoadReferImageFromFile



@contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f'still running after {seconds} s')

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def laughs(levels: int = 25, width: int = 3) -> list:
    """Lists each holding the previous one ``width`` times: ``width**levels`` paths (3**25 is
    8.5e11) through ``levels + 1`` objects."""
    layer = ['ha']
    for _ in range(levels):
        layer = [layer] * width
    return layer


def gref(**changes) -> dict:
    ref = dict(ref_id=1, ann_id=[1], image_id=1, split='val', no_target=False,
               sentences=[dict(sent_id=1, raw='the red box', sent='the red box')])
    ref.update(changes)
    return ref


def write_gref_folder(root: Path, refs, name: str = 'grefs(unc).p') -> Path:
    """DATA_ROOT with coco/train2014 (one 8 x 6 image) and grefcoco/ holding ``refs``."""
    folder = root / 'grefcoco'
    (root / 'coco' / 'train2014').mkdir(parents=True)
    folder.mkdir()
    Image.new('RGB', (8, 6)).save(root / 'coco' / 'train2014' / 'a.png')
    instances = dict(images=[dict(id=1, file_name='a.png', width=8, height=6)],
                     annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0,
                                       segmentation=[[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]])])
    (folder / 'instances.json').write_text(json.dumps(instances))
    data = pickle.dumps(refs, protocol=2) if name.endswith('.p') else json.dumps(refs).encode()
    (folder / name).write_bytes(data)
    return folder / name


def nested_list_pickle(depth: int) -> bytes:
    """A pickle of ``depth`` lists inside each other, written by hand (pickle.dumps recurses)."""
    return b'\x80\x02' + b']' * depth + b'a' * (depth - 1) + b'.'


def test_shared_references_in_a_grefs_pickle_are_walked_once(tmp_path):
    path = write_gref_folder(tmp_path, [gref(extra=laughs())])
    assert path.stat().st_size < 1000
    with deadline(10):
        refs = read_grefs_file(str(path))
        dataset = GRefCOCODataset(data_root=str(path.parent), split_file=path.name, split='val',
                                  data_prefix=dict(img_path='../coco/train2014'))
    assert refs[0]['extra'][0] is refs[0]['extra'][1] and len(dataset) == 1


def test_the_919_byte_grefs_pickle_of_the_issue_is_refused_at_once(tmp_path):
    """Each of 40 levels holds the previous one twice (10**12 paths): too deep for REFER."""
    path = write_gref_folder(tmp_path, [gref(extra=laughs(40, 2))])
    with deadline(10), pytest.raises(UnsafePickleError, match='nest more than 32 deep') as error:
        read_grefs_file(str(path))
    assert str(path) in str(error.value)


def test_shared_references_in_a_checked_field_give_a_short_message(tmp_path):
    path = write_gref_folder(tmp_path, [gref(ann_id=laughs())])
    with deadline(10), pytest.raises(ValueError) as error:
        GRefCOCODataset(data_root=str(path.parent), split_file=path.name, split='val')
    message = str(error.value)
    assert str(path) in message and 'ann_id=' in message and len(message) < 400


def test_the_checker_finishes_on_a_billion_laughs_grefs_pickle(tmp_path, capsys):
    write_gref_folder(tmp_path, [gref(extra=laughs(), sentences=[dict(sent_id=1, raw='x'),
                                                                   dict(sent_id=2, raw=5)])])
    tool = load_tool('tools/dataset_converters/refcoco.py')
    with deadline(20):
        status = tool.main(['check', str(tmp_path), '--datasets', 'grefcoco'])
    out = capsys.readouterr().out
    assert status == 1
    assert ('[ERROR] grefcoco: 1 sentences whose text is not a string: ref_id=1/sent_id=2 '
            '(raw = 5, not a string)') in out
    assert 'empty sentences' not in out


@pytest.mark.parametrize('data, problem', [
    (nested_list_pickle(200_000), 'nest more than 32 deep'),
    (nested_list_pickle(33), 'nest more than 32 deep'),
])
def test_deep_nesting_is_refused_naming_the_file(data, problem):
    with deadline(10), pytest.raises(UnsafePickleError, match=problem) as error:
        load_plain_pickle(data, source='deep.p')
    assert "'deep.p'" in str(error.value)
    assert isinstance(load_plain_pickle(nested_list_pickle(32), source='ok.p'), list)


def test_shared_depth_counts_along_the_deepest_path():
    shallow = [[[]]]
    deep = nested = []
    for _ in range(29):
        nested.append([])
        nested = nested[0]
    nested.append(shallow)
    # Walked first at depth 2, ``shallow`` is then met again at depth 32: its innermost list
    # is 34 deep.
    with pytest.raises(UnsafePickleError, match='nest more than 32 deep'):
        load_plain_pickle(pickle.dumps([deep, shallow], protocol=2), source='shared.p')


def test_a_reference_cycle_is_refused():
    cycle = []
    cycle.append([cycle])
    with deadline(10), pytest.raises(UnsafePickleError, match='contains itself'):
        load_plain_pickle(pickle.dumps(cycle, protocol=2), source='cycle.p')


def test_a_200k_deep_grefs_json_is_refused_naming_the_file(tmp_path, capsys):
    path = write_gref_folder(tmp_path, None, 'grefs(unc).json')
    path.write_text('[' * 200_000 + ']' * 200_000)
    with pytest.raises(ValueError, match='nests its lists and objects too deep') as error:
        read_grefs_file(str(path))
    assert str(path) in str(error.value)
    tool = load_tool('tools/dataset_converters/refcoco.py')
    assert tool.main(['check', str(tmp_path), '--datasets', 'grefcoco']) == 1
    assert 'too deep' in capsys.readouterr().out


# Images: a header claiming a huge size, a few bytes of payload.

def cv2_png(width: int, height: int) -> bytes:
    import cv2
    return cv2.imencode('.png', np.zeros((height, width, 3), np.uint8))[1].tobytes()


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data)))

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr)
            + chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))


HUGE = {  # name -> (bytes, width, height)
    'huge.png': (png_header(20000, 20000), 20000, 20000),
    'huge.hdr': (b'#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 16000 +X 16000\n' + b'\0' * 64,
                 16000, 16000),
    'huge.pfm': (b'PF\n30000 20000\n-1.0\n' + b'\0' * 64, 30000, 20000),
    'huge.ppm': (b'P6\n# made for the test\n40000 30000\n255\n' + b'\0' * 64, 40000, 30000),
    'huge.pam': (b'P7\nWIDTH 20000\nHEIGHT 20000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n'
                 + b'\0' * 64, 20000, 20000),
    'huge.ras': (struct.pack('>8I', 0x59a66a95, 25000, 25000, 24, 0, 1, 0, 0) + b'\0' * 64,
                 25000, 25000),
}


@pytest.fixture
def no_decoding(monkeypatch):
    """Any call of a decoder fails the test."""
    def decode(*args, **kwargs):
        raise AssertionError('the image was decoded')

    monkeypatch.setattr(mmcv, 'imfrombytes', decode)
    import cv2
    monkeypatch.setattr(cv2, 'imdecode', decode)


def test_huge_headers_make_opencv_allocate_gigabytes(tmp_path):
    """Guard: such files are hostile to a plain decode: under a 2 GiB address-space limit,
    in which a small image decodes, OpenCV fails to allocate the pixels they claim."""
    script = (
        'import resource, sys, cv2, numpy as np\n'
        'resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n'
        'for name in sys.argv[1:]:\n'
        '    try:\n'
        '        image = cv2.imdecode(np.fromfile(name, np.uint8), cv2.IMREAD_COLOR)\n'
        '        print(repr(None if image is None else image.shape))\n'
        '    except cv2.error as err:\n'
        '        print(repr(str(err)))\n')
    files = {'small.png': cv2_png(7, 5), 'huge.png': png_header(30000, 30000),
             'huge.hdr': HUGE['huge.hdr'][0]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proc = subprocess.run([sys.executable, '-c', script, *(str(tmp_path / n) for n in files)],
                          capture_output=True, text=True, timeout=60)
    small, png, hdr = proc.stdout.splitlines()
    assert small == '(5, 7, 3)', proc.stdout + proc.stderr
    # 30000 x 30000 x 3 bytes for the PNG; 16000 x 16000 x 3 floats for the HDR (OpenCV logs
    # its failure and returns None).
    assert 'Failed to allocate 2700000000 bytes' in png, proc.stdout
    assert hdr == 'None' and 'Failed to allocate 3072000000 bytes' in proc.stderr


@pytest.mark.parametrize('name', sorted(HUGE))
def test_every_reader_refuses_a_huge_header_without_decoding(tmp_path, no_decoding, name):
    data, width, height = HUGE[name]
    path = tmp_path / name
    path.write_bytes(data)
    expected = (f'image file {path} is {width} x {height} = {width * height:,} pixels, more than '
                f'the limit of {DEFAULT_MAX_PIXELS:,} (max_pixels); refused before decoding')
    with pytest.raises(ImageTooLargeError) as error:
        LoadReferImageFromFile()(dict(img_path=str(path)))
    assert str(error.value) == expected
    with pytest.raises(ImageTooLargeError, match='refused before decoding'):
        read_image(str(path))
    with pytest.raises(ImageTooLargeError, match=r'images \(bytes\) is'):
        read_image(data, 'images')
    assert check_image_size(data, max_pixels=width * height) == (width, height)


@pytest.mark.parametrize('ext', ['.hdr', '.pfm', '.ppm', '.pgm', '.pbm', '.pam', '.sr', '.png',
                                 '.jpg', '.bmp', '.tiff', '.webp'])
def test_header_sizes_agree_with_opencv(ext):
    import cv2
    image = np.zeros((7, 13), np.float32) if ext in ('.hdr', '.pfm') else np.zeros((7, 13),
                                                                                  np.uint8)
    if ext not in ('.pbm', '.pgm'):
        image = np.dstack([image] * 3)
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    data = encoded.tobytes()
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    assert check_image_size(data) == (decoded.shape[1], decoded.shape[0]) == (13, 7)


def test_the_demos_and_the_checker_refuse_a_huge_image(tmp_path, monkeypatch, capsys,
                                                       no_decoding):
    path = tmp_path / 'big.hdr'
    path.write_bytes(HUGE['huge.hdr'][0])
    web_demo = load_tool('demo/web_demo.py')
    with pytest.raises(ValueError) as error:
        web_demo.read_upload(str(path), web_demo.DEFAULT_MAX_PIXELS)
    assert str(error.value).startswith('Image too large: big.hdr has 16000 x 16000 = '
                                       '256,000,000 pixels; this demo takes at most 16,777,216')
    # image_demo reads the image before the model: the config and checkpoint are never read.
    monkeypatch.setattr(sys, 'argv', ['image_demo.py', str(path), 'the cat', 'no_config.py',
                                      'no_checkpoint.pth'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / 'demo' / 'image_demo.py'), run_name='__main__')
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count('\n') == 1
    assert err.startswith(f'image_demo.py: error: image file {path} is 16000 x 16000 = '
                          '256,000,000 pixels, more than the limit of 89,478,485')
    folder = write_gref_folder(tmp_path / 'data', [gref()]).parent
    (folder.parent / 'coco' / 'train2014' / 'a.png').write_bytes(png_header(20000, 20000))
    tool = load_tool('tools/dataset_converters/refcoco.py')
    assert tool.main(['check', str(folder.parent), '--datasets', 'grefcoco']) == 1
    assert ('a.png (20000x20000 = 400,000,000 pixels, more than --max-pixels 89,478,485)'
            in capsys.readouterr().out)
