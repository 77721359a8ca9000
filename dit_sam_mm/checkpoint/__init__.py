"""Checkpoint I/O: reading files so that none can run code (``safe_load``), checking what they
hold before anything acts on it (``content``), writing them atomically (``safe_load``), and
loading weights into a model with every key, shape and model setting checked (``loading``,
``model_settings``)."""
from .content import (CheckpointReadError, NonFiniteWeightsError, UnsafeCheckpointError,
                      check_finite_weights, plain_state_dict)
from .loading import (CheckpointKeyMismatchError, CheckpointMismatchError, LoadReport,
                      load_checked_state_dict, load_trained_checkpoint, read_state_dict,
                      strip_ddp_prefix, trained_state_dict)
from .safe_load import (atomic_write, load_checkpoint_file, register_safe_checkpoint_loader,
                        save_checkpoint_file)

__all__ = [
    'CheckpointKeyMismatchError', 'CheckpointMismatchError', 'CheckpointReadError', 'LoadReport',
    'NonFiniteWeightsError', 'UnsafeCheckpointError', 'atomic_write', 'check_finite_weights',
    'load_checked_state_dict', 'load_checkpoint_file', 'load_trained_checkpoint',
    'plain_state_dict', 'read_state_dict', 'register_safe_checkpoint_loader',
    'save_checkpoint_file', 'strip_ddp_prefix', 'trained_state_dict'
]
