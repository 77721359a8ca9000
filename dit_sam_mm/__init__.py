"""DIT-SAM for MMSegmentation.

Importing this package registers every component of the plugin into MMSegmentation's registries
(``mmseg.registry``): configs load it with
``custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)``.
"""
from . import apis, datasets, engine, evaluation, models, visualization  # noqa: F401  (registration)
from .utils import register_safe_checkpoint_loader
from .version import __version__

register_safe_checkpoint_loader()

__all__ = ['__version__']
