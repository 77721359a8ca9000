"""A ``torch.compile`` backend that runs eagerly when inductor cannot compile.

``torch.compile`` defers its work to the first call; on a machine where inductor cannot run
(Triton missing or too old for the GPU, no C compiler, a torch build without it) that first call
raises, and a training run or a test would stop there. The backend ``'inductor_or_eager'``
compiles each graph with inductor and, when that fails, runs the graph as it is (what the
``'eager'`` backend does), logs one warning naming the error, and skips inductor for the rest of
the process. A backward graph is compiled lazily by inductor at the first backward pass; a
failure there is not caught (it is raised as before).

MMEngine's ``compile`` config takes it by name (``compile=dict(backend='inductor_or_eager')``,
which ``tools/train.py`` sets on the GPU fast path), and so does ``InferenceAccelerator``.
``mode`` and ``options`` mean what they mean for inductor.
"""
import logging
from typing import Any, Callable, List, Optional

import torch
from mmengine.logging import print_log
from torch._dynamo import register_backend

#: Name under which the backend is registered with ``torch._dynamo``.
FALLBACK_BACKEND = 'inductor_or_eager'

#: The error that made the backend give up on inductor in this process (None: not yet).
_failure: List[BaseException] = []


def compile_failure() -> Optional[BaseException]:
    """The error with which inductor failed in this process, or None."""
    return _failure[0] if _failure else None


def reset_compile_failure() -> None:
    """Let the backend try inductor again (after the cause was fixed, or in tests)."""
    _failure.clear()


def _inductor(graph: torch.fx.GraphModule, example_inputs: List[Any], mode: Optional[str],
              options: Optional[dict]) -> Callable:
    from torch._inductor import list_mode_options
    from torch._inductor.compile_fx import compile_fx
    patches = dict(list_mode_options(mode) if mode else {}, **(options or {}))
    return compile_fx(graph, example_inputs, config_patches=patches)


@register_backend(name=FALLBACK_BACKEND)
def inductor_or_eager(graph: torch.fx.GraphModule,
                      example_inputs: List[Any],
                      mode: Optional[str] = None,
                      options: Optional[dict] = None) -> Callable:
    """Compile ``graph`` with inductor; on failure, return it to run eagerly (warning once)."""
    if _failure:
        return graph.forward
    try:
        return _inductor(graph, example_inputs, mode, options)
    except Exception as err:  # any inductor failure: a missing compiler, Triton, a bug
        _failure.append(err)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ''
        print_log(f'torch.compile: inductor failed ({type(err).__name__}: {detail[:300]}); '
                  'running eagerly instead. --eager skips compiling.', logger='current',
                  level=logging.WARNING)
        return graph.forward
