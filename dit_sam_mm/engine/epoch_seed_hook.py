"""Reproducible randomness per epoch, so a resumed run repeats an uninterrupted one.

MMEngine seeds the random number generators once, when the runner starts. A run killed after
epoch k and resumed from its checkpoint therefore draws different random numbers in epoch k + 1
(augmentation, the sentence drawn for a ref, dropout) than the run that was never interrupted, and
ends with different weights. Two pieces fix that:

- ``EpochSeedHook`` reseeds Python's, NumPy's and torch's generators at the start of every
  training epoch from (seed, epoch, rank), so epoch k + 1 starts from the same state either way;
- ``seed_worker_from_torch`` seeds a data-loader worker from the per-worker torch seed that the
  ``DataLoader`` draws from the (reseeded) main process. MMEngine's default worker seed is the same
  in every epoch, so non-persistent workers would repeat one epoch's augmentation forever.

Workers must be non-persistent (``persistent_workers=False``) or absent for the resumed run to
repeat exactly: a persistent worker keeps its generator state across epochs.
"""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import FUNCTIONS
from mmseg.registry import HOOKS

# Large odd strides keep the seeds of different (epoch, rank) pairs apart.
_EPOCH_STRIDE = 1_000_003
_RANK_STRIDE = 7_919


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of ``epoch`` on ``rank`` (fits NumPy's 32-bit seeds)."""
    return (seed + epoch * _EPOCH_STRIDE + rank * _RANK_STRIDE) % 2**32


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@FUNCTIONS.register_module()
def seed_worker_from_torch(worker_id: int) -> None:
    """``worker_init_fn``: seed NumPy and ``random`` from the worker's torch seed.

    The ``DataLoader`` gives worker ``i`` the torch seed ``base + i``, with ``base`` drawn from the
    main process's generator each time an epoch's iterator is made.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed all generators at the start of every training epoch.

    Args:
        seed (int, optional): Base seed. Defaults to None: the runner's seed
            (``randomness.seed`` in the config, or the one MMEngine drew).
    """

    priority = 'HIGHEST'

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    def before_train_epoch(self, runner) -> None:
        base = self.seed if self.seed is not None else runner.seed
        seed_everything(epoch_seed(base, runner.epoch, get_rank()))
