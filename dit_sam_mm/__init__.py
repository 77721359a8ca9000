"""DIT-SAM for MMSegmentation.

Importing this package registers every component of the plugin into MMSegmentation's registries
(``mmseg.registry``): configs load it with
``custom_imports = dict(imports=['dit_sam_mm'], allow_failed_imports=False)``.
"""
try:
    import mmengine  # noqa: F401
    import mmseg  # noqa: F401
except ModuleNotFoundError as err:  # e.g. a tool run with the system's Python
    raise ModuleNotFoundError(
        f"{err.msg}: dit_sam_mm runs in the environment 'bash tools/setup_env.sh' makes; "
        "activate it first with 'source .venv/bin/activate' (or run .venv/bin/python)",
        name=err.name) from None

from . import apis, datasets, engine, evaluation, models, visualization  # noqa: E402,F401
from .checkpoint import register_safe_checkpoint_loader  # noqa: E402
from .version import __version__  # noqa: E402

register_safe_checkpoint_loader()

__all__ = ['__version__']
