"""Utilities shared by the plugin's components and tools."""
from .checkpoint import (CheckpointKeyMismatchError, CheckpointMismatchError, LoadReport,
                         check_trained_checkpoint, load_checked_state_dict, read_state_dict)
from .safe_load import (CheckpointReadError, NonFiniteWeightsError, UnsafeCheckpointError,
                        load_checkpoint_file, register_safe_checkpoint_loader)

__all__ = [
    'CheckpointKeyMismatchError', 'CheckpointMismatchError', 'CheckpointReadError', 'LoadReport',
    'NonFiniteWeightsError', 'UnsafeCheckpointError', 'check_trained_checkpoint',
    'load_checked_state_dict', 'load_checkpoint_file', 'read_state_dict',
    'register_safe_checkpoint_loader'
]
