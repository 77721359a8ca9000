"""Compare the model a checkpoint was trained as with the model a config builds.

Two DIT-SAM variants can share every parameter name and shape (an L-DIT and an E-DIT ViT-B:
their text projections are all ``Linear(768 -> 768)``), so a strict key check alone lets a
checkpoint of one be evaluated as the other. MMEngine writes the training config into every
checkpoint (``meta['cfg']``, the config's Python text). That text is read here *without running
it*: only its ``model = dict(...)`` assignment is evaluated, and only literals and ``dict(...)``
calls with keyword arguments are understood (anything else reads as unknown), so a checkpoint
cannot run code through its config either. Component types are looked up only among the names
already registered (a registry lookup of ``'pkg.Name'`` would import ``pkg``), and a config
text larger than :data:`MAX_CONFIG_TEXT` is refused before it is parsed.

:data:`COMPARED_SETTINGS` lists the settings that define what the weights mean. A setting absent
from a config takes the default of its component's constructor (e.g. ``DITSAMViT``'s
``text_mode='layerwise'``).
"""
import ast
import inspect
from typing import Any, List, Mapping, Optional

from mmseg.registry import MODELS

#: Dotted paths under ``model`` whose values must agree between checkpoint and config.
COMPARED_SETTINGS = ('type', 'backbone.type', 'backbone.arch', 'backbone.text_mode',
                     'backbone.injection.type', 'backbone.num_static_prompts', 'neck.type',
                     'neck.out_layer', 'decode_head.type', 'decode_head.decoder_depth',
                     'decode_head.no_target')

#: A training config is a few KB of text; a checkpoint claiming more is refused unparsed.
MAX_CONFIG_TEXT = 1 << 18

_UNKNOWN = object()


class ConfigTextError(ValueError):
    """A checkpoint's config text cannot be read as a config (too large)."""


def _literal(node: ast.AST) -> Any:
    """The value of a literal / ``dict(k=v, ...)`` expression, else ``_UNKNOWN``."""
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id == 'dict') or node.args or \
                any(k.arg is None for k in node.keywords):
            return _UNKNOWN
        return {k.arg: _literal(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict):
        keys = [_literal(k) if k is not None else _UNKNOWN for k in node.keys]
        if any(k is _UNKNOWN or not isinstance(k, (str, int, float, bool, type(None)))
               for k in keys):
            return _UNKNOWN
        return {k: _literal(v) for k, v in zip(keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_literal(e) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


def model_cfg_from_checkpoint_meta(meta: Any) -> Optional[dict]:
    """The ``model`` dict of the config text MMEngine stored in ``meta['cfg']``, or None."""
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    if not isinstance(text, str):
        return None
    if len(text) > MAX_CONFIG_TEXT:
        raise ConfigTextError(f"meta['cfg'] holds {len(text):,} characters of config text; a "
                              f'training config has a few thousand (at most {MAX_CONFIG_TEXT:,} '
                              'are read)')
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and \
                isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == 'model':
            model = _literal(statement.value)
            return model if isinstance(model, dict) else None
    return None


def registered_model(name: Any) -> Optional[type]:
    """The class registered as ``name`` in mmseg's ``MODELS`` or a registry above it, else None.

    Unlike ``MODELS.get``, nothing is imported: ``'pkg.Name'`` or an unknown name is None.
    """
    registry = MODELS
    while isinstance(name, str) and registry is not None:
        if name in registry.module_dict:
            return registry.module_dict[name]
        registry = registry.parent
    return None


def _constructor_default(component: Mapping, name: str) -> Any:
    """The default of ``name`` in the constructor of ``component['type']``, else _UNKNOWN."""
    cls = registered_model(component.get('type'))
    if cls is None:
        return _UNKNOWN
    parameter = inspect.signature(cls).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return _UNKNOWN
    return parameter.default


def model_setting(model_cfg: Mapping, path: str) -> Any:
    """The value at ``path`` (e.g. ``'backbone.text_mode'``), or its constructor default."""
    node: Any = model_cfg
    parts = path.split('.')
    for i, part in enumerate(parts):
        if not isinstance(node, Mapping):
            return _UNKNOWN
        if part not in node:
            return _constructor_default(node, part) if i == len(parts) - 1 else _UNKNOWN
        node = node[part]
    return node


def _comparable(value: Any) -> Any:
    """Lists and tuples compare alike (a config's tuple is printed as a list)."""
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _comparable(v) for k, v in value.items()}
    return value


def setting_mismatches(checkpoint_meta: Any, model_cfg: Mapping) -> List[str]:
    """``'path: checkpoint X, config Y'`` for each compared setting that differs.

    Settings unknown on either side (no config in the checkpoint, a value that is not a literal)
    are not compared.
    """
    trained = model_cfg_from_checkpoint_meta(checkpoint_meta)
    if trained is None:
        return []
    mismatches = []
    for path in COMPARED_SETTINGS:
        old, new = model_setting(trained, path), model_setting(model_cfg, path)
        if old is _UNKNOWN or new is _UNKNOWN or _comparable(old) == _comparable(new):
            continue
        mismatches.append(f'model.{path}: checkpoint {_shown(old)}, config {_shown(new)}')
    return mismatches


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'

