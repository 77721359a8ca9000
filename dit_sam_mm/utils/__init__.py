"""Utilities shared by the plugin's components and tools."""
from .checkpoint import (CheckpointKeyMismatchError, LoadReport, load_checked_state_dict,
                         read_state_dict)
from .torch_load import register_checkpoint_safe_globals

__all__ = [
    'CheckpointKeyMismatchError', 'LoadReport', 'load_checked_state_dict', 'read_state_dict',
    'register_checkpoint_safe_globals'
]
