"""tools/infer.py (labelling at scale) on the tiny model: JSON Lines and folder inputs, COCO RLE
records, PNG masks and overlays, a SIGKILL mid-line and a resume, a 2-process torchrun run, the
way back into the custom format, and the refusals (one line naming file, line and field)."""
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS
from pycocotools import mask as mask_utils
from refer_model_fixture import REPO_ROOT, write_no_target_checkpoint, write_tiny_model
from tool_loader import load_tool

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.apis.batch_inference import part_file, parts_dir
from dit_sam_mm.apis.inference_inputs import read_jsonl_pairs
from dit_sam_mm.apis.inferencer import read_image
from dit_sam_mm.apis.pair_loader import PairPreprocessor
from dit_sam_mm.datasets.custom_writer import dump_record
from dit_sam_mm.datasets.mask_codec import encode_mask
from dit_sam_mm.utils.cli import run_main

SENTENCES = ('the red circle', 'the blue square')
BATCH = 4  # 18 pairs: batches of 4, 4, 4, 4, 2
NO_TARGET = ['model.decode_head.no_target=True']

infer_tool = load_tool('tools/infer.py')
custom_refer = load_tool('tools/dataset_converters/custom_refer.py')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_batch_inference'))


@pytest.fixture(scope='module')
def pairs_file(tiny):
    """18 pairs (9 images x 2 sentences) with default ids (line numbers), images relative to
    the file's folder."""
    images = sorted((tiny.data_root / 'images').glob('*.jpg'))
    path = tiny.data_root.parent / 'pairs.jsonl'
    path.write_text(''.join(json.dumps(dict(image=f'synthref/images/{image.name}',
                                            sentence=sentence)) + '\n'
                            for image in images for sentence in SENTENCES))
    return path


@pytest.fixture(scope='module')
def one_thread():
    """One thread, as torchrun gives each of 2 processes (another count rounds differently)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def process_settings():
    """infer.py sets torch's and OpenCV's thread counts and the start method of processes as
    the config says (as tools/test.py does): restored after each test."""
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    method = multiprocessing.get_start_method(allow_none=True)
    yield
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv2_threads)
    multiprocessing.set_start_method(method, force=True)


def infer(tiny, source, out, *options):
    """tools/infer.py in this process; returns the exit status."""
    argv = [str(tiny.config), str(tiny.checkpoint), str(source), str(out), '--batch-size',
            str(BATCH), '--no-progress', *map(str, options)]
    return run_main(lambda: infer_tool.main(argv), 'infer.py')


@pytest.fixture(scope='module')
def reference(tiny, pairs_file, one_thread, tmp_path_factory):
    """An uninterrupted 1-process run with PNG masks and overlays: the output's folder."""
    folder = tmp_path_factory.mktemp('reference')
    assert infer(tiny, pairs_file, folder / 'pred.jsonl', '--png-dir', folder / 'png',
                 '--overlay-dir', folder / 'overlay') == 0
    return folder


def lines(path):
    return path.read_text().splitlines()


def test_one_record_per_pair_in_input_order(tiny, pairs_file, reference):
    records = [json.loads(line) for line in lines(reference / 'pred.jsonl')]
    pairs = [json.loads(line) for line in lines(pairs_file)]
    assert [r['id'] for r in records] == list(range(1, 19))  # line numbers
    assert [(r['image'], r['sentence']) for r in records] == [(p['image'], p['sentence'])
                                                               for p in pairs]
    assert not os.path.exists(parts_dir(str(reference / 'pred.jsonl')))
    model = ReferSegInferencer(str(tiny.config), str(tiny.checkpoint), 'cpu', batch_size=BATCH)
    for start in range(0, 18, BATCH):  # the same batches
        batch = pairs[start:start + BATCH]
        results = model([str(pairs_file.parent / p['image']) for p in batch],
                        [p['sentence'] for p in batch])
        for record, result in zip(records[start:start + BATCH], results):
            assert set(record) == {'id', 'image', 'sentence', 'segmentation', 'score',
                                   'no_target_prob', 'area'}
            rle = record['segmentation']
            assert rle['size'] == [64, 64] and isinstance(rle['counts'], str)
            mask = mask_utils.decode(dict(size=rle['size'], counts=rle['counts'].encode()))
            np.testing.assert_array_equal(mask.astype(bool), result.mask)
            assert record['area'] == result.area == mask.sum()
            assert record['score'] == result.score
            assert record['no_target_prob'] is None  # no no-target branch
            png = mmcv.imread(str(reference / 'png' / f'{record["id"]}.png'), 'unchanged')
            np.testing.assert_array_equal(png, result.mask.astype(np.uint8) * 255)
            overlay = mmcv.imread(str(reference / 'overlay' / f'{record["id"]}.png'))
            assert overlay.ndim == 3 and overlay.shape[2] == 3


def test_folder_with_a_sentence_file(tiny, one_thread, tmp_path):
    folder = tmp_path / 'photos'
    (folder / 'street').mkdir(parents=True)
    images = sorted((tiny.data_root / 'images').glob('*.jpg'))[:3]
    for image in images:
        shutil.copy(image, folder / 'street' / image.name)
    (folder / 'sentences.txt').write_text(
        f'# every image, then one\n\nstreet/*.jpg\tthe red circle\n'
        f'street/{images[1].name}\tthe blue square\n')
    assert infer(tiny, folder, tmp_path / 'pred.jsonl') == 0
    records = [json.loads(line) for line in lines(tmp_path / 'pred.jsonl')]
    names = [f'street/{image.name}' for image in images]
    assert [(r['id'], r['image'], r['sentence']) for r in records] == [
        *[(f'{name}#3', name, 'the red circle') for name in names],
        (f'{names[1]}#4', names[1], 'the blue square')]


def test_a_finished_output_is_not_predicted_again(tiny, pairs_file, reference, one_thread,
                                                  tmp_path, capsys):
    out = tmp_path / 'pred.jsonl'
    shutil.copy(reference / 'pred.jsonl', out)
    assert infer(tiny, pairs_file, out) == 0
    assert 'rank 0/1: 0 pairs predicted' in capsys.readouterr().out
    assert out.read_text() == (reference / 'pred.jsonl').read_text()


KILL_WRAPPER = textwrap.dedent('''
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from tool_loader import load_tool
    import dit_sam_mm.apis.batch_inference as batch_inference
    calls = []

    def write_then_die(f, lines):
        """The second batch: one record, half of the next, then SIGKILL."""
        calls.append(lines)
        if len(calls) < 2:
            return write(f, lines)
        f.write((lines[0] + '\\n' + lines[1][:len(lines[1]) // 2]).encode())
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    write, batch_inference.write_lines = batch_inference.write_lines, write_then_die
    sys.exit(load_tool('tools/infer.py').main(sys.argv[1:]))
''')


def test_killed_mid_line_then_resumed_equals_the_uninterrupted_run(tiny, pairs_file, reference,
                                                                   one_thread, tmp_path):
    out = tmp_path / 'pred.jsonl'
    wrapper = tmp_path / 'kill_wrapper.py'
    wrapper.write_text(KILL_WRAPPER.format(tests=str(REPO_ROOT / 'tests')))
    # With a data-loader worker, which holds the captured pipes: run() returns once it has
    # noticed that its parent was killed and left too.
    killed = subprocess.run(
        [sys.executable, str(wrapper), str(tiny.config), str(tiny.checkpoint), str(pairs_file),
         str(out), '--batch-size', str(BATCH), '--num-workers', '1'], cwd=REPO_ROOT,
        capture_output=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    part = part_file(str(out), 0)
    written = open(part, 'rb').read()
    assert not written.endswith(b'\n') and written.count(b'\n') == BATCH + 1
    assert not out.exists()
    assert infer(tiny, pairs_file, out) == 0
    assert out.read_text() == (reference / 'pred.jsonl').read_text()
    assert not os.path.exists(parts_dir(str(out)))


def test_resume_from_another_ranks_partial_part_file(tiny, pairs_file, reference, one_thread,
                                                     tmp_path, capsys):
    """As if a 2-process run was killed: rank 1 had written its first batch (pairs 5-8) and
    half a line of its second (pairs 13-16); a 1-process run finishes it."""
    out = tmp_path / 'pred.jsonl'
    expected = lines(reference / 'pred.jsonl')
    os.makedirs(parts_dir(str(out)))
    with open(part_file(str(out), 1), 'w') as f:
        f.write(''.join(line + '\n' for line in expected[4:8]) + expected[12][:40])
    assert infer(tiny, pairs_file, out) == 0
    assert 'rank 0/1: 14 pairs predicted' in capsys.readouterr().out
    assert lines(out) == expected


def test_two_processes_equal_one(tiny, pairs_file, reference, tmp_path):
    """Two torchrun processes, each with a data-loader worker, write the 1-process file."""
    out = tmp_path / 'pred.jsonl'
    result = subprocess.run(
        ['sh', 'tools/dist_infer.sh', str(tiny.config), str(tiny.checkpoint), str(pairs_file),
         str(out), '2', '--batch-size', str(BATCH), '--png-dir', str(tmp_path / 'png'),
         '--num-workers', '1'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHON=sys.executable, PORT='29647', OMP_NUM_THREADS='1'))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'rank 0/2: 10 pairs predicted' in result.stdout  # batches 0, 2, 4
    assert 'rank 1/2: 8 pairs predicted' in result.stdout  # batches 1, 3
    assert out.read_text() == (reference / 'pred.jsonl').read_text()
    assert sorted(os.listdir(tmp_path / 'png')) == sorted(os.listdir(reference / 'png'))


def test_worker_processes_write_the_same_output(tiny, pairs_file, reference, one_thread,
                                                tmp_path, monkeypatch):
    """Two data-loader workers read and preprocess ahead of the model: the records, PNG masks and
    overlays are those of the run in this process (the tiny config has no workers). Without
    --num-workers the config's test_dataloader.num_workers applies; its cpu_threads and
    env_cfg.mp_cfg too."""
    used = []
    real = infer_tool.run_batch_inference

    def recording(*args, **kwargs):
        used.append(kwargs['num_workers'])
        return real(*args, **kwargs)

    monkeypatch.setattr(infer_tool, 'run_batch_inference', recording)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    torch.set_num_threads(2)
    out = tmp_path / 'pred.jsonl'
    assert infer(tiny, pairs_file, out, '--num-workers', 2, '--png-dir', tmp_path / 'png',
                 '--overlay-dir', tmp_path / 'overlay') == 0
    # the config's cpu_threads (1, SynthRef's) and start method (fork), as tools/test.py
    assert torch.get_num_threads() == 1
    assert multiprocessing.get_start_method() == 'fork'
    assert out.read_text() == (reference / 'pred.jsonl').read_text()
    for kind in ('png', 'overlay'):
        names = sorted(os.listdir(reference / kind))
        assert sorted(os.listdir(tmp_path / kind)) == names
        for name in names:
            np.testing.assert_array_equal(mmcv.imread(str(tmp_path / kind / name)),
                                          mmcv.imread(str(reference / kind / name)))
    assert infer(tiny, pairs_file, tmp_path / 'again.jsonl', '--cfg-options',
                 'test_dataloader.num_workers=1') == 0
    assert used == [2, 1]
    assert (tmp_path / 'again.jsonl').read_text() == out.read_text()


def test_an_unreadable_image_in_a_worker_is_one_line(tiny, pairs_file, tmp_path, capsys):
    folder = tmp_path / 'photos'
    folder.mkdir()
    image = sorted((tiny.data_root / 'images').glob('*.jpg'))[0]
    shutil.copy(image, folder / 'good.jpg')
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8 not a JPEG')
    (folder / 'sentences.txt').write_text('good.jpg\tthe red circle\nbroken.jpg\tthe dog\n')
    assert infer(tiny, folder, tmp_path / 'out.jsonl', '--num-workers', 1) == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f'infer.py: error: {folder}/sentences.txt, line 2: image: '), line
    assert 'broken.jpg' in line and 'Traceback' not in err
    assert not (tmp_path / 'out.jsonl').exists()
    assert infer(tiny, pairs_file, tmp_path / 'out.jsonl', '--num-workers', -1) == 1
    assert error_line(capsys) == 'infer.py: error: --num-workers must be >= 0, got -1'


def test_a_prepared_pair_travels_as_arrays_and_comes_back_unchanged(tiny, pairs_file):
    """What a worker sends holds no tensor (torch would give each its own shared-memory
    segment); unpacked, it is the pipeline's output again."""
    inferencer = ReferSegInferencer(str(tiny.config), str(tiny.checkpoint), 'cpu')
    pairs = read_jsonl_pairs(str(pairs_file))
    prepared = PairPreprocessor(pairs, inferencer)[1]
    assert isinstance(prepared.inputs, np.ndarray) and prepared.image is None
    assert not any(isinstance(value, torch.Tensor) for value in prepared.data_sample.values())
    expected = inferencer.preprocess(read_image(pairs[1].path), pairs[1].sentence)
    packed = pickle.loads(pickle.dumps(prepared)).packed()
    assert torch.equal(packed['inputs'], expected['inputs'])
    assert packed['data_samples'].metainfo == expected['data_samples'].metainfo
    assert set(packed['data_samples'].keys()) == set(expected['data_samples'].keys())
    for key in expected['data_samples'].keys():
        assert torch.equal(packed['data_samples'].get(key), expected['data_samples'].get(key))


@pytest.mark.parametrize('shell', ['sh', 'bash'])
def test_dist_infer_sh_passes_every_argument(shell, tmp_path):
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\nfor arg in "$@"; do echo "arg: $arg"; done\n')
    fake.chmod(0o755)
    result = subprocess.run([shell, 'tools/dist_infer.sh', 'c.py', 'w.pth', 'in put.jsonl',
                             'out.jsonl', '3', '--png-dir', 'm d'], cwd=REPO_ROOT, text=True,
                            capture_output=True, timeout=60,
                            env=dict(os.environ, PYTHON=str(fake), PORT='29733'))
    assert result.returncode == 0, result.stderr
    passed = [line[5:] for line in result.stdout.splitlines() if line.startswith('arg: ')]
    torchrun = passed[passed.index('torch.distributed.run'):]
    assert '--nproc_per_node=3' in torchrun and torchrun[-9].endswith('tools/infer.py')
    assert torchrun[-8:] == ['c.py', 'w.pth', 'in put.jsonl', 'out.jsonl', '--png-dir', 'm d',
                             '--launcher', 'pytorch']
    usage = subprocess.run([shell, 'tools/dist_infer.sh', 'c.py'], cwd=REPO_ROOT, text=True,
                           capture_output=True, timeout=60)
    assert usage.returncode == 2 and 'usage:' in usage.stderr


@pytest.fixture(scope='module')
def no_target_checkpoint(tiny, tmp_path_factory):
    return write_no_target_checkpoint(tiny, tmp_path_factory.mktemp('no_target') / 'nt.pth')


def convert(predictions, out_dir, *options):
    argv = ['from-predictions', str(predictions), '--out-dir', str(out_dir), *options]
    return run_main(lambda: custom_refer.main(argv), 'custom_refer.py')


def build_dataset(tiny, data_root, generalized):
    return DATASETS.build(dict(
        type='CustomReferDataset', data_root=str(data_root), ann_file='{split}.jsonl',
        data_prefix=dict(img_path=str(tiny.data_root.parent)), split='train',
        sample_mode='ref', generalized=generalized, pipeline=[]))


def test_predictions_convert_into_the_custom_format(tiny, pairs_file, reference,
                                                    no_target_checkpoint, one_thread, tmp_path):
    assert convert(reference / 'pred.jsonl', tmp_path / 'found') == 0
    predictions = [json.loads(line) for line in lines(reference / 'pred.jsonl')]
    dataset = build_dataset(tiny, tmp_path / 'found', generalized=False)
    assert len(dataset) == 18
    for sample, prediction in zip(dataset, predictions):
        assert (sample['ref_id'], sample['sentence']) == (prediction['id'],
                                                         prediction['sentence'])
        assert sample['img_path'] == str(tiny.data_root.parent / prediction['image'])
        assert sample['segmentation'] == prediction['segmentation']
    record = json.loads(lines(tmp_path / 'found' / 'train.jsonl')[0])
    assert record['meta'] == dict(score=predictions[0]['score'], no_target_prob=None)

    out = tmp_path / 'no_target.jsonl'
    argv = [str(tiny.config), str(no_target_checkpoint), str(pairs_file), str(out),
            '--no-progress', '--cfg-options', *NO_TARGET]
    assert run_main(lambda: infer_tool.main(argv), 'infer.py') == 0
    empty = [json.loads(line) for line in lines(out)]
    assert all(r['area'] == 0 and r['no_target_prob'] == pytest.approx(0.9, abs=1e-5)
               for r in empty)
    assert convert(out, tmp_path / 'empty', '--split', 'val') == 0
    dataset = DATASETS.build(dict(
        type='CustomReferDataset', data_root=str(tmp_path / 'empty'), ann_file='{split}.jsonl',
        data_prefix=dict(img_path=str(tiny.data_root.parent)), split='val',
        sample_mode='ref', generalized=True, pipeline=[]))
    assert len(dataset) == 18 and all(sample['no_target'] for sample in dataset)


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize('content, expected', [
    ('{"image": "synthref/images/synthref_000001.jpg", "sentence": "a"}\n{"image": \n',
     'line 2: not valid JSON'),
    ('{"image": "synthref/images/synthref_000001.jpg"}\n', 'line 1: sentence: missing'),
    ('{"image": "synthref/images/synthref_000001.jpg", "sentence": " "}\n',
     'line 1: sentence: must be a non-empty string'),
    ('{"image": "synthref/images/synthref_000001.jpg", "sentense": "a"}\n',
     "line 1: unknown field(s) ['sentense']"),
    ('{"image": "synthref/images/nope.jpg", "sentence": "a"}\n', 'line 1: image: '),
    ('{"image": "/etc/passwd", "sentence": "a"}\n', 'line 1: image: '),
    ('{"id": 1, "image": "synthref/images/synthref_000001.jpg", "sentence": "a"}\n'
     '{"id": 1, "image": "synthref/images/synthref_000002.jpg", "sentence": "b"}\n',
     'line 2: id: 1 repeats the id 1 of'),
    ('[1, 2]\n', 'line 1: must be a JSON object'),
])
def test_bad_input_is_refused_in_one_line(tiny, content, expected, tmp_path, capsys):
    source = tiny.data_root.parent / f'bad_{tmp_path.name}.jsonl'
    source.write_text(content)
    try:
        assert infer(tiny, source, tmp_path / 'out.jsonl') == 1
    finally:
        source.unlink()
    line = error_line(capsys)
    assert line.startswith(f'infer.py: error: {source}, ') and expected in line, line
    assert not (tmp_path / 'out.jsonl').exists()


def test_other_refusals(tiny, pairs_file, reference, tmp_path, capsys):
    assert infer(tiny, tmp_path / 'missing.jsonl', tmp_path / 'out.jsonl') == 1
    assert error_line(capsys) == f'infer.py: error: input file not found: {tmp_path}/missing.jsonl'
    assert infer(tiny, tmp_path, tmp_path / 'out.jsonl') == 1  # a folder without sentences.txt
    assert f'{tmp_path}/sentences.txt not found' in error_line(capsys)
    (tmp_path / 'sentences.txt').write_text('*.png\tthe dog\n')
    assert infer(tiny, tmp_path, tmp_path / 'out.jsonl') == 1
    assert "sentences.txt, line 1: image: the pattern '*.png' matches no image" in \
        error_line(capsys)
    # too many pixels: refused from the header, naming the input line
    assert infer(tiny, pairs_file, tmp_path / 'out.jsonl', '--max-pixels', '100') == 1
    line = error_line(capsys)
    assert f'{pairs_file}, line 1: image: image file ' in line and 'pixels' in line, line
    # an output of another input
    changed = tmp_path / 'pairs.jsonl'
    changed.write_text(pairs_file.read_text().replace('the blue square', 'the green one', 1))
    out = tmp_path / 'other.jsonl'
    shutil.copy(reference / 'pred.jsonl', out)
    assert infer(tiny, changed, out, '--image-root', pairs_file.parent) == 1
    assert f'{out}, line 2: id: 2 was predicted for another input' in error_line(capsys)


@pytest.mark.parametrize('change, expected', [
    (lambda r: r.pop('segmentation'), 'line 2: segmentation: missing'),
    (lambda r: r['segmentation'].update(counts='0PP5'), 'line 2: segmentation: counts add up'),
    (lambda r: r['segmentation'].update(size=[64]), 'line 2: segmentation: must be a COCO RLE'),
    (lambda r: r.update(image='../x.jpg'), "line 2: image: '../x.jpg' leaves the image root"),
])
def test_bad_predictions_are_refused(reference, change, expected, tmp_path, capsys):
    records = [json.loads(line) for line in lines(reference / 'pred.jsonl')][:3]
    change(records[1])
    source = tmp_path / 'pred.jsonl'
    source.write_text(''.join(dump_record(r) + '\n' for r in records))
    assert convert(source, tmp_path / 'out') == 1
    line = error_line(capsys)
    assert line.startswith('custom_refer.py: error: ') and expected in line, line
    assert not (tmp_path / 'out' / 'train.jsonl').exists()


def test_an_empty_prediction_is_a_no_target_record(reference, tmp_path):
    records = [json.loads(line) for line in lines(reference / 'pred.jsonl')][:2]
    records[1].update(segmentation=encode_mask(np.zeros((64, 64), bool)), area=0)
    source = tmp_path / 'pred.jsonl'
    source.write_text(''.join(dump_record(r) + '\n' for r in records))
    assert convert(source, tmp_path) == 0
    converted = [json.loads(line) for line in lines(tmp_path / 'train.jsonl')]
    assert 'objects' in converted[0] and converted[1]['no_target'] is True
    assert 'objects' not in converted[1]
