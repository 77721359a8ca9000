"""``--cfg-options`` merged into a config, with a typo'd key refused before anything is built.

MMEngine's ``Config.merge_from_dict`` adds whatever key it is given: ``model.backbon.arch=x``
gives the model a new ``backbon`` dict, and the run fails minutes later, when the model is
built, with a ``TypeError`` (an unexpected keyword argument) at the end of a long traceback.
:func:`merge_cfg_options` follows each dotted key into the config first. A key the config does
not have may only be added where it reaches the component it would be passed to: an argument
that the registered class (the ``type`` of the dict it lands in) takes, or any key of a dict
without ``type`` (plain settings such as ``env_cfg``) or of a class that takes ``**kwargs``.
Anything else is refused with a message naming the option, where it lands and the nearest
existing keys.
"""
import difflib
import inspect
from typing import Any, Dict, List, Optional

from mmengine.config import Config
from mmengine.registry import Registry


def _registries() -> List[Registry]:
    """MMSegmentation's registries (the default scope of every config here)."""
    import mmseg.registry
    return [value for value in vars(mmseg.registry).values() if isinstance(value, Registry)]


def _takes(component: Any, key: str) -> Optional[bool]:
    """Whether the registered ``type`` of a config dict takes ``key`` as an argument; None when
    that cannot be told (the type is unknown here, or it takes ``**kwargs``)."""
    found = []
    for registry in _registries():
        try:
            target = component if callable(component) else registry.get(component)
        except Exception:  # a scope or module this registry does not know
            continue
        if target is None:
            continue
        try:
            parameters = inspect.signature(target).parameters.values()
        except (TypeError, ValueError):  # a builtin without a signature
            return None
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        found.append({p.name for p in parameters})
    if not found:
        return None
    return any(key in names for names in found)


def _check_option(cfg: Config, option: str, what: str) -> None:
    """Raise a ValueError naming ``option`` if it adds a key no component takes."""
    node: Any = cfg.to_dict()
    path: List[str] = []
    for key in option.split('.'):
        if isinstance(node, (list, tuple)) and key.isdigit():
            if int(key) >= len(node):
                raise ValueError(f'{what} {option}: {".".join(path)} has {len(node)} items, no '
                                 f'item {key}')
            node, path = node[int(key)], path + [key]
            continue
        if not isinstance(node, dict):
            return  # the option replaces a value by a dict: MMEngine's to allow
        if key in node:
            node, path = node[key], path + [key]
            continue
        component = node.get('type')
        if component is None or _takes(component, key) is not False:
            return
        place = '.'.join(path)
        name = component if isinstance(component, str) else getattr(component, '__name__',
                                                                     component)
        nearest = difflib.get_close_matches(key, [str(k) for k in node], n=3, cutoff=0.5)
        raise ValueError(
            f'{what} {option}: {place} ({name}) has no key {key!r} and {name} takes no argument '
            f'{key!r}; ' + (f'did you mean {" or ".join(map(repr, nearest))}? ' if nearest else '')
            + f'its keys: {", ".join(sorted(map(str, node)))}')


def merge_cfg_options(cfg: Config, options: Optional[Dict[str, Any]],
                      what: str = '--cfg-options') -> None:
    """Merge ``options`` (dotted key -> value) into ``cfg`` as MMEngine does, after checking
    that each key exists or is taken by the component it lands in (see the module).

    Args:
        cfg (Config): The config, changed in place.
        options (dict, optional): From ``--cfg-options`` (``DictAction``), or a dict of the same
            form. None or empty changes nothing.
        what (str): How to name the options in messages. Defaults to ``'--cfg-options'``.

    Raises:
        ValueError: A key names a missing list item, or a key no component takes (the option,
            where it lands and the nearest existing keys).
    """
    if not options:
        return
    for option in options:
        _check_option(cfg, str(option), what)
    cfg.merge_from_dict(options)
