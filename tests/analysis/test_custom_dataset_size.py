"""tools/analysis_tools/custom_dataset_size.py on a small file: what it builds and reports."""
import json

from tool_loader import load_tool


def test_reports_the_index_it_built(tmp_path, capsys):
    tool = load_tool('tools/analysis_tools/custom_dataset_size.py')
    out = tmp_path / 'size.json'
    assert tool.main(['--sentences', '50', '--images', '7', '--json', str(out)]) == 0
    result = json.loads(out.read_text())
    assert result['sentences'] == 50 and 10 <= result['records'] <= 50
    assert result['pickled_bytes'] > 50 * 100 and result['build_s'] >= 0
    assert 'sentences        50' in capsys.readouterr().out
