"""Utilities shared by the plugin's components and tools."""
from .checkpoint import (CheckpointKeyMismatchError, CheckpointMismatchError, LoadReport,
                         load_checked_state_dict, load_trained_checkpoint, read_state_dict,
                         strip_ddp_prefix, trained_state_dict)
from .safe_load import (CheckpointReadError, NonFiniteWeightsError, UnsafeCheckpointError,
                        atomic_write, load_checkpoint_file, register_safe_checkpoint_loader,
                        save_checkpoint_file)

__all__ = [
    'CheckpointKeyMismatchError', 'CheckpointMismatchError', 'CheckpointReadError', 'LoadReport',
    'NonFiniteWeightsError', 'UnsafeCheckpointError', 'atomic_write', 'load_checked_state_dict',
    'load_checkpoint_file', 'load_trained_checkpoint', 'read_state_dict', 'register_safe_checkpoint_loader',
    'save_checkpoint_file', 'strip_ddp_prefix', 'trained_state_dict'
]
