"""``benchmark.py --profile DIR``: a torch.profiler trace and a top-kernels table of a few steps.

:func:`profile_steps` runs a benchmark step a few times under :mod:`torch.profiler` and writes

- ``trace.json``: the Chrome trace (open it in ``chrome://tracing`` or Perfetto);
- ``top_kernels.md``: where the time goes, by category and for the most expensive operators (CPU)
  or kernels (GPU).

What is timed: on CPU the self time of every operator (operators run on the calling thread, so
the self times add up to the steps' wall time, apart from the time outside any operator: Python
and framework work, reported as the *host* row). On GPU the duration of every device kernel, memory
copy and set; the *host gaps* row is the time within the profiled steps during which the GPU runs
nothing (launch overhead, host work, synchronisations).

Categories, from the operator's or kernel's name and those of the operators it runs inside
(a kernel counts under the operator that launched it): *optimiser* (inside ``Optimizer.step``,
Adam, foreach updates, gradient clipping), *attention* (inside
``scaled_dot_product_attention``, flash / memory-efficient / cuDNN kernels, softmax), *matmul*
(matrix products and convolutions), *elementwise* (every other tensor operator: pointwise,
norms, reductions, copies, indexing) and *other* (the rest). The reference's hand-written
attention therefore shows up as matmuls and softmax.
"""
import collections
import os
import re
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile, record_function

STEP_LABEL = 'benchmark_step'
CATEGORIES = ('attention', 'matmul', 'elementwise', 'optimiser', 'other')
_INSIDE = (  # categories decided by the operator or any operator around it, in this order
    ('optimiser', re.compile(r'optimizer\.step|adam|_foreach_|multi_tensor|clip_grad', re.I)),
    ('attention', re.compile(r'scaled_?dot_?product|flash|fmha|attention|sdpa|softmax', re.I)),
)
_OWN = (  # categories decided by the operator's or kernel's own name
    ('matmul', re.compile(r'aten::(mm|bmm|addmm|baddbmm|matmul|einsum|linear|_?convolution|'
                          r'conv\w*|mkldnn_\w*)$|gemm|cutlass|xmma|cublas|conv', re.I)),
    ('elementwise', re.compile(r'^aten::|elementwise|vectorized|reduce|norm|copy|memcpy|memset|'
                               r'fill|index|gather|scatter|cat', re.I)),
)


def categorise(name: str, enclosing: Sequence[str] = ()) -> str:
    """The category of an operator or kernel ``name`` run inside the operators ``enclosing``."""
    for category, pattern in _INSIDE:
        if any(pattern.search(n) for n in (name, *enclosing)):
            return category
    for category, pattern in _OWN:
        if pattern.search(name):
            return category
    return 'other'


def busy_time(intervals: List[Tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals."""
    total, reach = 0.0, float('-inf')
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _enclosing(event: FunctionEvent) -> List[str]:
    names, parent = [], event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    return names


def _timed_events(events: Sequence[FunctionEvent],
                  device: str) -> Tuple[List[Tuple[str, str, float]], float, float]:
    """``(name, category, us)`` of every timed event, the host time and the steps' span (us)."""
    steps = [e for e in events if e.name == STEP_LABEL]
    span = sum(e.time_range.elapsed_us() for e in steps)
    cpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU and not e.is_async]
    if not device.startswith('cuda'):
        rows = [(e.name, categorise(e.name, _enclosing(e)), e.self_cpu_time_total) for e in cpu
                if e.name != STEP_LABEL]
        return rows, sum(e.self_cpu_time_total for e in steps), span
    by_id = {e.id: e for e in cpu}
    rows, intervals = [], []
    for e in events:
        if e.device_type != torch.autograd.DeviceType.CUDA:
            continue
        launcher = by_id.get(e.linked_correlation_id)
        enclosing = [launcher.name, *_enclosing(launcher)] if launcher is not None else []
        rows.append((e.name, categorise(e.name, enclosing), e.time_range.elapsed_us()))
        intervals.append((e.time_range.start, e.time_range.end))
    return rows, span - busy_time(intervals), span


def write_table(path: str, title: str, rows: List[Tuple[str, str, float]], host_us: float,
                span_us: float, steps: int, device: str, top: int = 25) -> Dict[str, float]:
    """Write the markdown table; return the time share (%) of every category and the host."""
    host = 'host gaps (GPU idle)' if device.startswith('cuda') else 'host (outside operators)'
    what = 'device kernels' if device.startswith('cuda') else 'operator self time (CPU)'
    per_category = collections.Counter()
    per_name: Dict[Tuple[str, str], List[float]] = collections.defaultdict(list)
    for name, category, us in rows:
        per_category[category] += us
        per_name[(name, category)].append(us)
    total = sum(per_category.values()) + host_us
    shares = {c: 100 * per_category[c] / total for c in CATEGORIES}
    shares[host] = 100 * host_us / total
    lines = [f'# Profile: {title}', '',
             f'{steps} profiled step(s), {span_us / 1e3:.1f} ms in all; timed: {what}.', '',
             '| category | ms | share |', '|---|---|---|']
    for category in (*CATEGORIES, host):
        us = host_us if category == host else per_category[category]
        lines.append(f'| {category} | {us / 1e3:.1f} | {shares[category]:.1f}% |')
    lines += ['', f'## Top {top}', '', '| name | category | calls | ms | share |',
              '|---|---|---|---|---|']
    ranked = sorted(per_name.items(), key=lambda item: -sum(item[1]))[:top]
    for (name, category), times in ranked:
        short = name if len(name) <= 90 else name[:87] + '...'
        lines.append(f'| `{short}` | {category} | {len(times)} | {sum(times) / 1e3:.2f} | '
                     f'{100 * sum(times) / total:.1f}% |')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return shares


def profile_steps(step: Callable[[], object], device: str, steps: int, out_dir: str,
                  title: str) -> Dict[str, object]:
    """Profile ``steps`` calls of ``step`` and write ``trace.json`` and ``top_kernels.md``.

    Args:
        step (Callable): One benchmark step (already warmed up).
        device (str): ``'cpu'`` or ``'cuda'``; each step ends with a device synchronisation.
        steps (int): Steps to profile.
        out_dir (str): Folder of the two files (created).
        title (str): First line of the table (what was profiled).

    Returns:
        dict: ``trace`` and ``table`` (the paths) and ``shares`` (percent per category).
    """
    os.makedirs(out_dir, exist_ok=True)
    activities = [ProfilerActivity.CPU]
    if device.startswith('cuda'):
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function(STEP_LABEL):
                step()
                if device.startswith('cuda'):
                    torch.cuda.synchronize()
    trace = os.path.join(out_dir, 'trace.json')
    table = os.path.join(out_dir, 'top_kernels.md')
    prof.export_chrome_trace(trace)
    rows, host_us, span_us = _timed_events(prof.events(), device)
    shares = write_table(table, title, rows, host_us, span_us, steps, device)
    return dict(trace=trace, table=table, shares={k: round(v, 2) for k, v in shares.items()})
