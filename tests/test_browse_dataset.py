"""tools/analysis_tools/browse_dataset.py: training samples with the sentence and the flip state."""
import re

import mmcv
from refer_model_fixture import write_tiny_model
from tool_loader import load_tool

from dit_sam_mm.datasets import swap_left_right


def load_browse_tool():
    return load_tool('tools/analysis_tools/browse_dataset.py')


def test_browse_writes_pictures_and_reports_the_flipped_sentences(tmp_path, capsys):
    tiny = write_tiny_model(tmp_path, flip_prob=1.0)
    out_dir = tmp_path / 'browse'
    assert load_browse_tool().main([str(tiny.config), '--output-dir', str(out_dir), '--show-number',
                             '4', '--not-show']) == 0
    pictures = sorted(out_dir.glob('*.png'))
    assert len(pictures) == 4
    assert mmcv.imread(str(pictures[0])).shape[1] == 384  # 64 px enlarged, ground truth only
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4
    for line in lines:
        match = re.fullmatch(r'\d+: synthref_\d+\.jpg flipped=yes sentence="(.*)" \(was "(.*)"\)',
                             line)
        assert match, line
        assert match.group(1) == swap_left_right(match.group(2))


def test_browse_without_flip(tmp_path, capsys):
    tiny = write_tiny_model(tmp_path, flip_prob=0.0)
    assert load_browse_tool().main([str(tiny.config), '--show-number', '2', '--not-show']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all('flipped=no' in line and '(was' not in line for line in lines)
