"""Utilities shared by the plugin's components and tools."""
from .torch_load import register_checkpoint_safe_globals

__all__ = ['register_checkpoint_safe_globals']
