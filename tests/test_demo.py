"""demo/image_demo.py as a user runs it: a picture is written, area and score are printed."""
import re
import runpy
import subprocess
import sys

import mmcv
import pytest
from refer_model_fixture import REPO_ROOT, write_tiny_model

DEMO = REPO_ROOT / 'demo' / 'image_demo.py'


def run_demo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMO), *args],
                          capture_output=True, text=True, timeout=120)


def test_image_demo_writes_the_picture_and_prints_area_and_score(tmp_path):
    tiny = write_tiny_model(tmp_path)
    image = sorted((tiny.data_root / 'images').glob('*.jpg'))[0]
    out_file = tmp_path / 'out' / 'demo.png'
    proc = run_demo(str(image), 'the leftmost triangle', str(tiny.config), str(tiny.checkpoint),
                    '--out-file', str(out_file), '--device', 'cpu')
    assert proc.returncode == 0, proc.stderr
    area = re.search(r'mask area: (\d+) px \(([\d.]+)% of the 64x64 image\)', proc.stdout)
    score = re.search(r'score: ([\d.]+) \(mean probability inside the mask\)', proc.stdout)
    assert area and score, proc.stdout
    assert 0 <= int(area.group(1)) <= 64 * 64 and 0.0 <= float(score.group(1)) <= 1.0
    picture = mmcv.imread(str(out_file))
    assert picture.shape[1] == 384 and picture.shape[0] > 384  # enlarged x6, caption below



def test_image_demo_names_an_unreadable_image(tmp_path, monkeypatch, capsys):
    tiny = write_tiny_model(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['image_demo.py', str(tmp_path / 'nope.jpg'), 'the red circle',
                                      str(tiny.config), str(tiny.checkpoint), '--device', 'cpu'])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(DEMO), run_name='__main__')
    assert exit_info.value.code == 1
    assert 'nope.jpg' in capsys.readouterr().err
