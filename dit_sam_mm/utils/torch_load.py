"""Make MMEngine's own checkpoints loadable with ``torch.load(weights_only=True)``.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. A checkpoint written by
MMEngine 0.10.7's ``CheckpointHook`` keeps the message hub and the runner's meta data beside the
weights: numpy arrays and scalars, ``HistoryBuffer`` objects and a ``getattr`` call that rebuilds
numpy dtypes. ``Runner.resume`` then fails with ``UnpicklingError: Weights only load failed``.

Instead of turning weights-only loading off, this module allow-lists exactly the globals that
MMEngine's checkpoints need (the set was read off a checkpoint written by ``tools/train.py``; the
resume test in ``tests/test_resume.py`` keeps it honest). Everything else a pickle may try to build
is still refused by torch.
"""
from typing import List

import numpy as np
import torch


def checkpoint_safe_globals() -> List[object]:
    """Return the globals MMEngine checkpoints need beyond torch's weights-only defaults."""
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    allowed = [
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        HistoryBuffer,
        getattr,
    ]
    # numpy >= 1.25 pickles a dtype as an instance of its concrete class (e.g. Float64DType).
    if hasattr(np, 'dtypes'):
        allowed += [
            cls for cls in vars(np.dtypes).values()
            if isinstance(cls, type) and issubclass(cls, np.dtype)
        ]
    return allowed


def register_checkpoint_safe_globals() -> None:
    """Allow-list MMEngine's checkpoint globals for ``torch.load(weights_only=True)``.

    Safe to call several times; torch keeps one set of allowed globals per process.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
