"""tools/analysis_tools/analyze_logs.py: the summary against hand computation, the figure (one
panel per key, one legend entry per run), PNG and SVG files, and one-line errors."""
import json

import pytest
from tool_loader import load_tool

from dit_sam_mm.utils.cli import run_main

tool = load_tool('tools/analysis_tools/analyze_logs.py')

# Epoch-based, with the keys MMEngine's LoggerHook writes to vis_data/scalars.json for the tiny
# SynthRef model on a CPU (no "memory"): 2 epochs of 4 iterations logged every 2, validation
# after each epoch (its step is the epoch).


def train_line(lr, loss, time, epoch, iteration):
    return {'lr': lr, 'data_time': 0.01, 'loss': loss, 'decode.loss_ce': loss,
            'decode.acc_seg': 50.0, 'time': time, 'epoch': epoch, 'iter': iteration,
            'step': iteration}


def val_line(oiou, miou, pr50, epoch):
    return {'oIoU': oiou, 'mIoU': miou, 'Pr@0.5': pr50, 'data_time': 0.002, 'time': 0.05,
            'step': epoch}


EPOCH_RUN = [
    train_line(2.5e-5, 0.60, 0.30, 1, 2), train_line(5e-5, 0.40, 0.20, 1, 4),
    val_line(22.5, 20.0, 18.0, 1),
    train_line(7.5e-5, 0.25, 0.10, 2, 6), train_line(1e-4, 0.30, 0.20, 2, 8),
    val_line(21.0, 25.0, 19.0, 2),
]
# Iteration-based (no "epoch"; validation step = iteration), oIoU only.
ITER_RUN = [
    dict(lr=1e-4, data_time=0.02, loss=0.50, time=0.40, iter=5, step=5),
    dict(lr=1e-4, data_time=0.02, loss=0.45, time=0.60, iter=10, step=10),
    {'oIoU': 30.0, 'data_time': 0.002, 'time': 0.05, 'step': 10},
]


def write_log(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    return str(path)


@pytest.fixture
def logs(tmp_path):
    """The two runs in MMEngine's layout: <work_dir>/<timestamp>/vis_data/scalars.json."""
    return [write_log(tmp_path / 'work_dirs' / name / '20261201_120000' / 'vis_data' /
                      'scalars.json', lines)
            for name, lines in (('epoch_run', EPOCH_RUN), ('iter_run', ITER_RUN))]


def test_summary_matches_hand_computation_and_the_png_is_written(logs, tmp_path, capsys):
    out = tmp_path / 'curves.png'
    assert tool.main([*logs, '--out', str(out), '--title', 'two runs']) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        # times 0.30, 0.20, 0.10, 0.20: mean 0.2; last epoch 2, last iteration 8
        'epoch_run/20261201_120000: 8 iterations, 2 epochs, 0.2000 s per iteration '
        '(mean of 4 logged values)',
        '  loss: final 0.3 (iter 8), lowest 0.25 (iter 6)',
        '  lr: final 0.0001 (iter 8)',
        '  oIoU: final 21 (epoch 2), best 22.5 (epoch 1)',
        '  mIoU: final 25 (epoch 2), best 25 (epoch 2)',
        '  Pr@0.5: final 19 (epoch 2), best 19 (epoch 2)',
        # times 0.40, 0.60: mean 0.5; validation steps are iterations
        'iter_run/20261201_120000: 10 iterations, 0.5000 s per iteration '
        '(mean of 2 logged values)',
        '  loss: final 0.45 (iter 10), lowest 0.45 (iter 10)',
        '  lr: final 0.0001 (iter 10)',
        '  oIoU: final 30 (iter 10), best 30 (iter 10)',
        f'saved the curves to {out}',
    ]
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and out.stat().st_size > 10_000


def test_one_panel_per_key_one_line_per_run_one_legend_entry_per_run(logs):
    runs = tool.load_json_logs(logs, ['L-DIT', 'E-DIT'])
    keys = tool.default_keys(runs)
    assert keys == ['loss', 'lr', 'oIoU', 'mIoU', 'Pr@0.5']
    fig = tool.plot_curve(runs, keys, title='SynthRef')
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert list(panels) == keys
    assert [len(panels[key].lines) for key in keys] == [2, 2, 2, 1, 1]
    assert list(panels['oIoU'].lines[0].get_xdata()) == [1, 2]  # epochs
    assert list(panels['oIoU'].lines[1].get_xdata()) == [10]  # iterations
    assert list(panels['loss'].lines[0].get_ydata()) == [0.60, 0.40, 0.25, 0.30]
    assert panels['oIoU'].get_xlabel() == 'epoch / iter' and panels['loss'].get_xlabel() == 'iter'
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ['L-DIT', 'E-DIT']
    assert fig._suptitle.get_text() == 'SynthRef'


def test_chosen_keys_to_svg(logs, tmp_path, capsys):
    out = tmp_path / 'oiou.svg'
    assert tool.main([logs[0], '--keys', 'oIoU', '--legend', 'run', '--out', str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        '  oIoU: final 21 (epoch 2), best 22.5 (epoch 1)', f'saved the curves to {out}']
    assert '<svg' in out.read_text()


@pytest.mark.parametrize('case, message', [
    ('missing', 'log file not found: {missing}'),
    ('empty', '{empty}: empty log, no scalars recorded'),
    ('not json', '{broken}, line 2: not JSON (Expecting value)'),
    ('no such key', "no log has the key 'IoU'; keys: Pr@0.5, decode.acc_seg, decode.loss_ce, "
     'loss, lr, mIoU, oIoU'),
    ('legend count', '--legend has 2 names for 1 logs; give one per log'),
])
def test_bad_input_is_one_line(logs, tmp_path, capsys, case, message):
    files = dict(missing=str(tmp_path / 'nope.json'), empty=write_log(tmp_path / 'e.json', []),
                 broken=str(tmp_path / 'b.json'))
    (tmp_path / 'b.json').write_text('{"loss": 1, "iter": 1, "step": 1}\n{"loss": \n')
    argv = {'missing': [files['missing']], 'empty': [files['empty']],
            'not json': [files['broken']], 'no such key': [logs[0], '--keys', 'IoU'],
            'legend count': [logs[0], '--legend', 'a', 'b']}[case]
    assert run_main(lambda: tool.main(argv + ['--no-plot']), 'analyze_logs.py') == 1
    captured = capsys.readouterr()
    assert captured.err == f'analyze_logs.py: error: {message.format(**files)}\n'
    assert captured.out == ''
