"""Import a script of tools/ (not a package) as a module, for tests that call its functions."""
import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_tool(relative_path: str) -> ModuleType:
    """The module of ``REPO_ROOT / relative_path``, e.g. ``'tools/analysis_tools/benchmark.py'``."""
    path = REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(f'tool_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
