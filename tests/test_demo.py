"""demo/image_demo.py as a user runs it: a picture is written, area, score and tokens printed."""
import math
import re
import runpy
import subprocess
import sys
from typing import Tuple

import mmcv
import pytest
import torch
from refer_model_fixture import REPO_ROOT, write_tiny_model

from dit_sam_mm.apis import init_refer_model

DEMO = REPO_ROOT / 'demo' / 'image_demo.py'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp('tiny_demo'))


@pytest.fixture(scope='module')
def image(tiny):
    return str(sorted((tiny.data_root / 'images').glob('*.jpg'))[0])


def run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMO), *args],
                          capture_output=True, text=True, timeout=120)


def run_demo_here(monkeypatch, capsys, *args: str) -> Tuple[int, str, str]:
    """Run the demo in this process (faster than a subprocess): (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, 'argv', ['image_demo.py', *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(DEMO), run_name='__main__')
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_image_demo_writes_the_picture_and_prints_area_and_score(tiny, image, tmp_path):
    out_file = tmp_path / 'out' / 'demo.png'
    proc = run_demo(image, 'the leftmost triangle', str(tiny.config), str(tiny.checkpoint),
                    '--out-file', str(out_file), '--device', 'cpu')
    assert proc.returncode == 0, proc.stderr
    area = re.search(r'mask area: (\d+) px \(([\d.]+)% of the 64x64 image\)', proc.stdout)
    score = re.search(r'score: ([\d.]+) \(mean probability inside the mask\)', proc.stdout)
    assert area and score, proc.stdout
    assert 0 <= int(area.group(1)) <= 64 * 64 and 0.0 <= float(score.group(1)) <= 1.0
    assert ("word pieces: 3, 0 unknown (read as [UNK]), 3 read, 0 dropped past the tokenizer's "
            'length') in proc.stdout
    assert 'image_demo.py: warning' not in proc.stderr
    picture = mmcv.imread(str(out_file))
    assert picture.shape[1] == 384 and picture.shape[0] > 384  # enlarged x6, caption below


@pytest.mark.parametrize('sentence, counts, warning', [
    ('zebra giraffe okapi', '3, 3 unknown (read as [UNK]), 3 read, 0 dropped',
     "none of the 3 word pieces of the sentence is in the model's vocabulary"),
    ('the red circle ' * 8, '24, 0 unknown (read as [UNK]), 18 read, 6 dropped',
     'the sentence has 24 word pieces but the model reads only the first 18'),
])
def test_image_demo_warns_when_the_model_cannot_read_the_sentence(
        tiny, image, tmp_path, monkeypatch, capsys, sentence, counts, warning):
    code, out, err = run_demo_here(monkeypatch, capsys, image, sentence, str(tiny.config),
                                   str(tiny.checkpoint), '--device', 'cpu',
                                   '--out-file', str(tmp_path / 'result.png'))
    assert code == 0, err
    assert f'word pieces: {counts}' in out
    assert f'image_demo.py: warning: {warning}' in err


def test_image_demo_names_an_unreadable_image(tiny, tmp_path, monkeypatch, capsys):
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    for path, message in ((tmp_path / 'nope.jpg', f'image file not found: {tmp_path}/nope.jpg'),
                          (tmp_path, f'{tmp_path} is a folder, not an image file'),
                          (empty, f'image file {empty} is empty (0 bytes)')):
        code, _, err = run_demo_here(monkeypatch, capsys, str(path), 'the red circle',
                                     str(tiny.config), str(tiny.checkpoint), '--device', 'cpu')
        assert code == 1
        assert err.startswith(f'image_demo.py: error: {message}'), err
        assert 'Traceback' not in err


def test_image_demo_allow_partial(tiny, image, tmp_path, monkeypatch, capsys):
    state = torch.load(tiny.checkpoint, weights_only=True)['state_dict']
    state.pop('decode_head.text_proj.weight')
    partial = tmp_path / 'partial.pth'
    torch.save(dict(state_dict=state), partial)
    args = [image, 'the red circle', str(tiny.config), str(partial), '--device', 'cpu',
            '--out-file', str(tmp_path / 'result.png')]
    code, _, err = run_demo_here(monkeypatch, capsys, *args)
    assert code == 1 and 'decode_head.text_proj.weight' in err
    code, out, err = run_demo_here(monkeypatch, capsys, *args, '--allow-partial')
    assert code == 0, err
    assert 'mask area:' in out


def test_image_demo_says_no_matching_object(tiny, image, tmp_path, monkeypatch, capsys):
    """A model with the no-target branch: the probability, and "no matching object" above the
    threshold (the mask is then empty)."""
    config = tmp_path / 'tiny_no_target.py'
    config.write_text(f"_base_ = ['{tiny.config}']\n"
                      'model = dict(decode_head=dict(no_target=True))\n')
    model, _ = init_refer_model(str(config), str(tiny.checkpoint), 'cpu', allow_partial=True)
    args = [image, 'the red circle', str(config), str(tmp_path / 'no_target.pth'), '--device',
            'cpu', '--out-file', str(tmp_path / 'result.png')]
    for prob, expected in ((0.9, 'no matching object (no-target probability 0.900)'),
                           (0.2, 'no-target probability: 0.200')):
        with torch.no_grad():
            last = model.decode_head.no_target_head.layers[-1]
            last.weight.zero_()
            last.bias.fill_(math.log(prob / (1 - prob)))
        torch.save(dict(state_dict=model.state_dict()), tmp_path / 'no_target.pth')
        code, out, err = run_demo_here(monkeypatch, capsys, *args)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[1] == expected, out
        assert ('no matching object' in out) == (prob > 0.5)
        if prob > 0.5:
            assert lines[2].startswith('mask area: 0 px (0.0% of the 64x64 image)')
    # weights of a model without the branch load only when allowed
    plain = [*args[:3], str(tiny.checkpoint), *args[4:]]
    code, _, err = run_demo_here(monkeypatch, capsys, *plain)
    assert code == 1 and 'decode_head.no_target_head.layers.0.weight' in err
    code, out, err = run_demo_here(monkeypatch, capsys, *plain, '--allow-partial')
    assert code == 0 and 'no-target probability' in out, err


def test_image_demo_takes_mmsegmentations_order_with_the_sentence_as_option(
        tiny, image, tmp_path, monkeypatch, capsys):
    out_file = tmp_path / 'mmseg_order.png'
    status, out, err = run_demo_here(monkeypatch, capsys, image, str(tiny.config),
                                     str(tiny.checkpoint), '--sentence', 'the leftmost triangle',
                                     '--out-file', str(out_file), '--device', 'cpu')
    assert status == 0, err
    assert 'sentence: "the leftmost triangle"' in out and out_file.exists()
    # MMSeg's order without the sentence: told what is missing, in one line
    monkeypatch.setattr(sys, 'argv', ['image_demo.py', image, str(tiny.config),
                                      str(tiny.checkpoint)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(DEMO), run_name='__main__')
    assert exit_info.value.code == 2
    assert 'the sentence is missing' in capsys.readouterr().err
