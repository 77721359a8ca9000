"""A test-only hook that kills its own training process with SIGKILL right after a checkpoint.

Loaded by the resume test through ``custom_imports`` (the tests folder is put on PYTHONPATH), so
the interruption happens at a known point: after epoch ``after_epoch``'s checkpoint is on disk.
"""
import os
import signal

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class SigkillAfterEpochHook(Hook):
    """Send SIGKILL to this process after ``after_epoch`` epochs (after CheckpointHook)."""

    priority = 'LOWEST'

    def __init__(self, after_epoch: int) -> None:
        self.after_epoch = after_epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.after_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
