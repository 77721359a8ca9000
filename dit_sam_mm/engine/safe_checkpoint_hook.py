"""MMEngine's ``CheckpointHook`` with the files it writes and removes made safe.

MMEngine 0.10.7's hook, on resume, takes from the checkpoint's message hub the path of the best
checkpoint so far (``best_ckpt``) and removes that path (``rmtree`` for a folder) when a new
best is saved: a checkpoint from elsewhere could name any file. It also removes the old best
(and, with ``max_keep_ckpts``, the oldest checkpoint) *before* writing the new one, and writes
in place, so a kill during the write leaves no valid checkpoint of that kind.

:class:`SafeCheckpointHook` changes exactly that:

- every checkpoint is written to a temporary file and renamed when complete (the file backend
  ``'atomic_local'``, :class:`AtomicLocalBackend`); the temporary files of writes a kill
  interrupted are removed when training starts again;
- the removals the base hook asks for while saving happen only after the save completed, and
  only for a file in this run's checkpoint folder named as the hook names its files
  (``epoch_N.pth`` / ``iter_N.pth`` by ``filename_tmpl``, or ``best_<metric>_<that>``); any
  other path is left alone with a warning;
- on resume, the counters of the checkpoint are checked against the schedule: a checkpoint past
  ``max_epochs`` / ``max_iters`` would end the run at once with nothing trained.

``tools/train.py`` runs a config's ``CheckpointHook`` as this hook (same options).
"""
import contextlib
import logging
import os
import os.path as osp
import re
from typing import Any, Iterator, List, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

from ..checkpoint.safe_load import atomic_write

#: Name of the file backend that writes through a temporary file.
ATOMIC_BACKEND = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend whose ``put`` writes a file completely or not at all."""

    def put(self, obj: bytes, filepath: Any) -> None:
        with atomic_write(str(filepath)) as f:
            f.write(obj)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


class ResumeStateError(ValueError):
    """A checkpoint to resume from is past the end of the configured schedule."""


class _DeferredRemovals:
    """Wraps a file backend: ``remove`` / ``rmtree`` are recorded instead of done."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.paths: List[Tuple[str, bool]] = []

    def remove(self, path: str) -> None:
        self.paths.append((str(path), False))

    def rmtree(self, path: str) -> None:
        self.paths.append((str(path), True))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """``CheckpointHook`` that writes atomically and removes only its own files.

    Takes the arguments of MMEngine's ``CheckpointHook``. With ``backend_args`` unset (a local
    folder), checkpoints are written through :class:`AtomicLocalBackend`.
    """

    def __init__(self, *args: Any, backend_args: Any = None, **kwargs: Any) -> None:
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, backend_args=backend_args, **kwargs)

    def before_train(self, runner: Any) -> None:
        """MMEngine's set-up, then removal of the temporary files of checkpoints whose writing
        was killed (``.epoch_3.pth.<random>.tmp``): a kill leaves one per interrupted write."""
        super().before_train(runner)
        if not is_main_process() or not isinstance(self.file_backend, LocalBackend) or \
                not osp.isdir(self.out_dir):
            return
        for name in os.listdir(self.out_dir):
            written = re.fullmatch(r'\.(.+)\.[^.]+\.tmp', name)
            path = osp.join(self.out_dir, name)
            if written and self._is_own_name(written.group(1)) and osp.isfile(path) and \
                    not osp.islink(path):
                os.remove(path)
                print_log(f'{type(self).__name__}: removed {path}, the part of a checkpoint '
                          'whose writing was interrupted', logger='current')

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """On resume, refuse counters past the end of the schedule (a run that trains nothing).

        Raises:
            ResumeStateError: Naming the counter and the schedule's end.
        """
        loop = getattr(runner, '_train_loop', None)
        if not getattr(runner, '_resume', False) or not isinstance(loop, BaseLoop):
            return
        # An epoch-based loop counts iterations by the data loader's length, which may change.
        counter, limit = (('iter', 'max_iters') if isinstance(loop, IterBasedTrainLoop) else
                          ('epoch', 'max_epochs'))
        value, end = (checkpoint.get('meta') or {}).get(counter), getattr(loop, limit, None)
        if isinstance(value, int) and isinstance(end, int) and value > end:
            raise ResumeStateError(
                f'the checkpoint to resume from is at {counter} {value}, past the end of the '
                f'schedule (train_cfg.{limit}={end}); nothing would be trained. Resume with the '
                f'config it was trained with, or raise train_cfg.{limit}')

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        with self._removals_after():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner: Any, metrics: dict) -> None:
        with self._removals_after():
            super()._save_best_checkpoint(runner, metrics)

    @contextlib.contextmanager
    def _removals_after(self) -> Iterator[None]:
        """Record the base hook's removals; do the allowed ones once the block completed."""
        if isinstance(getattr(self, 'file_backend', None), _DeferredRemovals):
            yield  # nested (a best save also saves the latest checkpoint): the outer one removes
            return
        deferred = _DeferredRemovals(getattr(self, 'file_backend', None))
        self.file_backend = deferred
        try:
            yield
        finally:
            self.file_backend = deferred.backend
        for path, tree in deferred.paths:
            if not self._is_own_checkpoint(path):
                print_log(f'{type(self).__name__}: not removing {path}: it is not a checkpoint '
                          f'this hook writes in {self.out_dir}', logger='current',
                          level=logging.WARNING)
            elif tree:
                self.file_backend.rmtree(path)
            else:
                self.file_backend.remove(path)

    def _is_own_name(self, name: str) -> bool:
        """Whether ``name`` is how this hook names a checkpoint (``epoch_3.pth``, ``best_...``)."""
        step = re.escape(self.filename_tmpl).replace(r'\{\}', r'\d+')
        return re.fullmatch(f'({step})|(best_.+_{step})', name) is not None

    def _is_own_checkpoint(self, path: str) -> bool:
        """Whether ``path`` is a file of this run's folder named as this hook names its files."""
        name = osp.basename(path)
        if path != self.file_backend.join_path(self.out_dir, name) or not self._is_own_name(name):
            return False
        if isinstance(self.file_backend, LocalBackend):
            return osp.realpath(osp.dirname(path)) == osp.realpath(self.out_dir) and \
                osp.isfile(path) and not osp.islink(path)
        return True
