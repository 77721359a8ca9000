"""Plot and summarise training logs: loss, learning rate and validation metrics.

MMSegmentation's ``analyze_logs.py`` for MMEngine's scalar logs: every training run writes
``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object per line. A training line holds
``iter`` (and ``epoch`` in epoch-based runs), ``lr``, the losses, ``time`` and ``data_time``, its
``step`` is the iteration; a validation line holds the metrics (``oIoU``, ``mIoU``, ``Pr@0.5``,
...), its ``step`` is the epoch in epoch-based runs and the iteration otherwise.

Example::

    python tools/analysis_tools/analyze_logs.py \\
        work_dirs/ldit_tiny_synthref/20261127_101010/vis_data/scalars.json --out curves.png
    python tools/analysis_tools/analyze_logs.py RUN_A/vis_data/scalars.json \\
        RUN_B/vis_data/scalars.json --keys loss oIoU --legend L-DIT E-DIT --title SynthRef \\
        --out curves.svg

The figure has one panel per key (default: ``loss``, ``lr`` and every validation metric) and one
line per run, named in a legend (``--legend``, default: the run's folder). The summary printed
gives, per run, the iterations and epochs trained, the mean of the logged ``time`` (seconds per
iteration, each logged value the mean over a logging interval), and for each key its final value
and, for losses (lowest) and validation metrics (highest), its best value, with their steps.
"""
import argparse
import json
import math
import os.path as osp
import sys
from typing import Callable, List, NamedTuple, Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # the plugin without installing it
    sys.path.insert(0, REPO_ROOT)

from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402

#: Keys of a line that are bookkeeping, not curves.
NOT_CURVES = ('step', 'iter', 'epoch', 'time', 'data_time', 'memory')


class Curve(NamedTuple):
    """One key of one run: ``values[i]`` at ``steps[i]``, steps in ``unit`` (``'iter'`` or
    ``'epoch'``), from the validation lines or the training lines."""
    steps: List[int]
    values: List[float]
    unit: str
    validation: bool


class RunLog(NamedTuple):
    """The scalars of one training run.

    Attributes:
        label (str): The run's name in the legend and the summary.
        train (List[dict]): Training lines (those with ``iter``), in file order.
        val (List[dict]): Validation lines, in file order.
    """
    label: str
    train: List[dict]
    val: List[dict]

    @property
    def by_epoch(self) -> bool:
        """Whether the run counts epochs (its validation steps are then epochs)."""
        return any('epoch' in line for line in self.train)

    def curve(self, key: str) -> Curve:
        """The steps and values of ``key``: training lines first, else validation lines (empty
        when the run does not log ``key``)."""
        validation = not any(key in line for line in self.train)
        lines = self.val if validation else self.train
        unit = 'epoch' if validation and self.by_epoch else 'iter'
        points = [(line['step'], line[key]) for line in lines if key in line]
        return Curve([step for step, _ in points], [value for _, value in points], unit,
                     validation)

    def val_keys(self) -> List[str]:
        """The validation metrics, in the order they first appear."""
        return _keys_in(self.val)


def _keys_in(lines: Sequence[dict]) -> List[str]:
    """The curve keys of ``lines``, in the order they first appear."""
    keys = {}
    for line in lines:
        keys.update(dict.fromkeys(k for k in line if k not in NOT_CURVES))
    return list(keys)


def default_label(path: str) -> str:
    """``<work dir name>/<timestamp>`` for ``.../<work dir>/<timestamp>/vis_data/<file>``, else
    the path."""
    folder = osp.dirname(osp.abspath(path))
    if osp.basename(folder) != 'vis_data':
        return path
    run = osp.dirname(folder)
    return f'{osp.basename(osp.dirname(run))}/{osp.basename(run)}'


def load_json_log(path: str, label: str) -> RunLog:
    """Read one ``scalars.json``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: A line is not a JSON object with a ``step``, or the file holds no line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'log file not found: {path}')
    train, val = [], []
    with open(path, encoding='utf-8') as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}, line {number}: not JSON ({err.msg})') from None
            if not isinstance(line, dict) or 'step' not in line:
                raise ValueError(f'{path}, line {number}: not a scalar record of MMEngine '
                                 '(a JSON object with a "step")')
            (train if 'iter' in line else val).append(line)
    if not train and not val:
        raise ValueError(f'{path}: empty log, no scalars recorded')
    return RunLog(label, train, val)


def load_json_logs(paths: Sequence[str], legend: Optional[Sequence[str]] = None
                   ) -> List[RunLog]:
    """Read the runs' logs, named by ``legend`` (one name per log) or by their folders."""
    if legend is not None and len(legend) != len(paths):
        raise CommandLineError(f'--legend has {len(legend)} names for {len(paths)} logs; give '
                               'one per log')
    labels = legend or [default_label(path) for path in paths]
    return [load_json_log(path, label) for path, label in zip(paths, labels)]


def default_keys(runs: Sequence[RunLog]) -> List[str]:
    """``loss`` and ``lr`` where logged, then every validation metric of any run."""
    keys = [key for key in ('loss', 'lr') if any(run.curve(key).steps for run in runs)]
    for run in runs:
        keys += [key for key in run.val_keys() if key not in keys]
    return keys


def check_keys(runs: Sequence[RunLog], keys: Sequence[str]) -> None:
    """Raise a :class:`CommandLineError` naming a key that no run logs, and the keys there are."""
    for key in keys:
        if not any(run.curve(key).steps for run in runs):
            known = sorted({k for run in runs for k in _keys_in(run.train) + run.val_keys()})
            raise CommandLineError(f"no log has the key '{key}'; keys: {', '.join(known)}")


def _best(key: str, curve: Curve) -> Optional[Callable]:
    """``min`` for a loss, ``max`` for a validation metric, None for anything else (lr)."""
    if 'loss' in key:
        return min
    return max if curve.validation else None


def summarize(run: RunLog, keys: Sequence[str]) -> List[str]:
    """The summary lines of one run (see the module docstring)."""
    times = [line['time'] for line in run.train if 'time' in line]
    iters = max((line['iter'] for line in run.train), default=0)
    head = f'{run.label}: {iters} iterations'
    if run.by_epoch:
        head += f', {max(line["epoch"] for line in run.train)} epochs'
    if times:
        head += (f', {sum(times) / len(times):.4f} s per iteration (mean of {len(times)} '
                 'logged values)')
    lines = [head]
    for key in keys:
        curve = run.curve(key)
        if not curve.steps:
            continue
        steps, values, unit = curve.steps, curve.values, curve.unit
        text = f'  {key}: final {values[-1]:.6g} ({unit} {steps[-1]})'
        best = _best(key, curve)
        if best is not None:
            index = values.index(best(values))  # the first step that reached it
            text += (f', {"lowest" if best is min else "best"} {values[index]:.6g} '
                     f'({unit} {steps[index]})')
        lines.append(text)
    return lines


def plot_curve(runs: Sequence[RunLog], keys: Sequence[str],
               title: Optional[str] = None) -> Figure:
    """Plot every key in its own panel, one line per run, one legend entry per run.

    Args:
        runs (Sequence[RunLog]): The runs.
        keys (Sequence[str]): The keys to plot.
        title (str, optional): The figure's title.

    Returns:
        Figure: The figure.
    """
    columns = min(len(keys), 3)
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        units = {}
        for index, run in enumerate(runs):
            curve = run.curve(key)
            if curve.steps:
                ax.plot(curve.steps, curve.values, color=f'C{index}',
                        marker='o' if curve.validation else None)
                units[curve.unit] = None
        ax.set_xlabel(' / '.join(units))  # 'epoch / iter' when the runs count differently
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    handles = [plt.Line2D([], [], color=f'C{i}', label=run.label) for i, run in enumerate(runs)]
    fig.legend(handles=handles, loc='lower center', ncol=min(len(runs), 4), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot and summarise training logs')
    parser.add_argument('json_logs', nargs='+',
                        help='vis_data/scalars.json of one run or several runs')
    parser.add_argument('--keys', nargs='+',
                        help='keys to plot and summarise (default: loss, lr and every '
                        'validation metric)')
    parser.add_argument('--title', help='title of the figure')
    parser.add_argument('--legend', nargs='+', help='a name for each run (default: its folder)')
    parser.add_argument('--out', help='write the figure to this file (.png or .svg) instead of '
                        'showing it')
    parser.add_argument('--no-plot', action='store_true', help='print the summary only')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    runs = load_json_logs(args.json_logs, args.legend)
    keys = args.keys or default_keys(runs)
    check_keys(runs, keys)
    for run in runs:
        print('\n'.join(summarize(run, keys)))
    if args.no_plot:
        return 0
    if args.out is not None:
        matplotlib.use('Agg')  # writes the file without a display
    fig = plot_curve(runs, keys, args.title)
    if args.out is None:
        plt.show()
    else:
        fig.savefig(args.out)
        print(f'saved the curves to {args.out}')
    plt.close(fig)
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'analyze_logs.py'))
