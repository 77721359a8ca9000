"""Load a converted checkpoint into a model and account for every key that does not match.

``load_state_dict(strict=False)`` silently skips whatever does not match, and a mistyped prefix in
a converter then leaves a model half-initialised without anyone noticing. Here every missing and
every unexpected key must match an explicitly allowed pattern (``fnmatch`` syntax, e.g.
``'neck.*'``), otherwise loading fails, naming the offending keys, before any weight is changed.
"""
import fnmatch
import os
from collections import OrderedDict
from typing import Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from mmengine.logging import print_log
from torch import Tensor, nn

from .model_settings import ConfigTextError, setting_mismatches
from .content import CheckpointReadError, plain_state_dict
from .safe_load import load_checkpoint_file

_CONVERT_HINT = ('Create it from the official SAM weights (e.g. sam_vit_b_01ec64.pth from '
                 'https://dl.fbaipublicfiles.com/segment_anything/, downloaded on a machine with '
                 'internet access) with tools/model_converters/sam2mmseg.py.')
_MAX_LISTED = 50


class CheckpointMismatchError(RuntimeError):
    """A checkpoint is not one of the model a config builds."""


class CheckpointKeyMismatchError(CheckpointMismatchError):
    """Raised when a checkpoint has missing or unexpected keys that are not allowed."""


class LoadReport(NamedTuple):
    """What ``load_checked_state_dict`` did.

    Attributes:
        loaded (List[str]): Model keys that were loaded from the checkpoint.
        missing (List[str]): Model keys absent from the checkpoint (all allowed).
        unexpected (List[str]): Checkpoint keys the model does not have (all allowed, ignored).
    """
    loaded: List[str]
    missing: List[str]
    unexpected: List[str]


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns)


def _format_keys(keys: Sequence[str]) -> str:
    listed = ', '.join(keys[:_MAX_LISTED])
    if len(keys) > _MAX_LISTED:
        listed += f', ... and {len(keys) - _MAX_LISTED} more'
    return listed


def read_state_dict(filename: str) -> Mapping[str, Tensor]:
    """Read a state dict from a file: a plain state dict or a dict with a ``state_dict`` entry.

    The file is read with :func:`~dit_sam_mm.checkpoint.safe_load.load_checkpoint_file`, which runs
    nothing a file holds.

    Raises:
        FileNotFoundError: The file does not exist (the message names it and how to make it).
        UnsafeCheckpointError: The file holds more than tensors and plain data.
        CheckpointReadError: The file is no checkpoint or holds no state dict of tensors.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'Checkpoint {filename!r} not found '
                                f'(resolved to {os.path.abspath(filename)!r}). {_CONVERT_HINT}')
    return plain_state_dict(load_checkpoint_file(filename), filename)


def check_keys(model_keys: Iterable[str],
               checkpoint_keys: Iterable[str],
               source: str,
               allowed_missing: Sequence[str] = (),
               allowed_unexpected: Sequence[str] = ()) -> Tuple[List[str], List[str]]:
    """Compare a model's keys with a checkpoint's; fail on differences no pattern allows.

    Args:
        model_keys (Iterable[str]): The model's state-dict keys.
        checkpoint_keys (Iterable[str]): The checkpoint's.
        source (str): The checkpoint, for the message.
        allowed_missing (Sequence[str]): fnmatch patterns of model keys that may be absent.
        allowed_unexpected (Sequence[str]): fnmatch patterns of checkpoint keys the model may
            lack.

    Returns:
        Tuple[List[str], List[str]]: The (allowed) missing and unexpected keys, sorted.

    Raises:
        CheckpointKeyMismatchError: Naming every key that no pattern allows.
    """
    if isinstance(allowed_missing, str):
        allowed_missing = [allowed_missing]
    if isinstance(allowed_unexpected, str):
        allowed_unexpected = [allowed_unexpected]
    model_keys, checkpoint_keys = list(model_keys), set(checkpoint_keys)
    model_key_set = set(model_keys)
    missing = sorted(k for k in model_keys if k not in checkpoint_keys)
    unexpected = sorted(k for k in checkpoint_keys if k not in model_key_set)
    bad_missing = [k for k in missing if not _matches(k, allowed_missing)]
    bad_unexpected = [k for k in unexpected if not _matches(k, allowed_unexpected)]
    if bad_missing or bad_unexpected:
        problems = []
        if bad_missing:
            problems.append(f'{len(bad_missing)} model key(s) missing from the checkpoint and '
                            f'not allowed by allowed_missing_keys={list(allowed_missing)}: '
                            f'{_format_keys(bad_missing)}')
        if bad_unexpected:
            problems.append(f'{len(bad_unexpected)} unexpected checkpoint key(s) not allowed by '
                            f'allowed_unexpected_keys={list(allowed_unexpected)}: '
                            f'{_format_keys(bad_unexpected)}')
        raise CheckpointKeyMismatchError(f'Checkpoint {source} does not match the model: ' +
                                         '; '.join(problems))
    return missing, unexpected


def strip_ddp_prefix(state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Remove the ``module.`` prefix DDP / DataParallel put on every key (if all have it)."""
    if state_dict and all(key.startswith('module.') for key in state_dict):
        return OrderedDict((key[len('module.'):], value) for key, value in state_dict.items())
    return OrderedDict(state_dict)


def trained_state_dict(checkpoint: Mapping, source: str,
                       model_cfg: Mapping) -> 'OrderedDict[str, Tensor]':
    """The state dict of a trained checkpoint, after checking it was trained as ``model_cfg``.

    Used before testing or inference: the model settings of the checkpoint's training config
    (``meta['cfg']``, read without running it, see ``model_settings``) must agree with
    ``model_cfg``. An L-DIT and an E-DIT checkpoint have the same keys and shapes; only this tells
    them apart.

    Args:
        checkpoint (Mapping): A loaded checkpoint: ``{'state_dict': ..., 'meta': ...}`` or a
            plain state dict.
        source (str): The checkpoint file, for messages.
        model_cfg (Mapping): The config's ``model``.

    Returns:
        OrderedDict[str, Tensor]: The state dict, without DDP's ``module.`` prefix.

    Raises:
        CheckpointMismatchError: A model setting differs (every one is named).
        CheckpointReadError: The checkpoint's config text is too large to be a config.
    """
    try:
        mismatches = setting_mismatches(checkpoint.get('meta'), model_cfg)
    except ConfigTextError as err:
        raise CheckpointReadError(f'{source}: {err}') from None
    if mismatches:
        raise CheckpointMismatchError(
            f'Checkpoint {source} was trained as another model than this config builds: '
            + '; '.join(mismatches) + '. Use the config it was trained with.')
    return strip_ddp_prefix(plain_state_dict(checkpoint, source))


def load_checked_state_dict(module: nn.Module,
                            checkpoint: Union[str, Mapping[str, Tensor]],
                            allowed_missing: Sequence[str] = (),
                            allowed_unexpected: Sequence[str] = (),
                            logger: Optional[str] = 'current',
                            source: Optional[str] = None) -> LoadReport:
    """Load ``checkpoint`` into ``module``, failing on keys that are not explicitly allowed.

    Args:
        module (nn.Module): The model to load into.
        checkpoint (str | Mapping[str, Tensor]): A file (see ``read_state_dict``) or a state dict.
        allowed_missing (Sequence[str]): fnmatch patterns of model keys that may be absent from
            the checkpoint (they keep their current values), e.g. ``'neck.*'``.
        allowed_unexpected (Sequence[str]): fnmatch patterns of checkpoint keys the model may
            lack (they are ignored).
        logger (str, optional): Where to log a summary (``mmengine.logging.print_log``);
            None logs nothing. Defaults to 'current'.
        source (str, optional): How messages name the checkpoint. Defaults to the file name,
            or 'the given state dict'.

    Returns:
        LoadReport: the loaded, missing and unexpected keys.

    Raises:
        FileNotFoundError: ``checkpoint`` is a path that does not exist.
        CheckpointKeyMismatchError: A missing or unexpected key matches no allowed pattern; the
            module is left unchanged and the message names every such key.
        CheckpointMismatchError: A tensor's shape differs from the model's (after the
            model's own load hooks, e.g. the backbone's resizing of position embeddings).
    """
    if source is None:
        source = checkpoint if isinstance(checkpoint, str) else 'the given state dict'
    state_dict = read_state_dict(checkpoint) if isinstance(checkpoint, str) else checkpoint
    model_keys = list(module.state_dict().keys())
    missing, unexpected = check_keys(model_keys, state_dict.keys(), source, allowed_missing,
                                     allowed_unexpected)
    model_key_set = set(model_keys)
    try:
        module.load_state_dict(
            {k: v for k, v in state_dict.items() if k in model_key_set}, strict=False)
    except RuntimeError as err:  # size mismatches, listed by torch one per line
        raise CheckpointMismatchError(f'Checkpoint {source} does not fit the model: ' + '; '.join(
            line.strip() for line in str(err).splitlines()[1:] if line.strip())) from None
    loaded = [k for k in model_keys if k in state_dict]
    if logger is not None:
        print_log(
            f'Loaded {len(loaded)} tensors from {source}; allowed missing: '
            f'{_format_keys(missing) or "none"}; ignored unexpected: '
            f'{_format_keys(unexpected) or "none"}',
            logger=logger)
    return LoadReport(loaded=loaded, missing=missing, unexpected=unexpected)


def load_trained_checkpoint(model: nn.Module,
                            filename: str,
                            model_cfg: Mapping,
                            allow_partial: bool = False,
                            logger: Optional[str] = 'current') -> LoadReport:
    """Load a trained checkpoint for testing or inference, refusing one of another model.

    Reads the file safely (:func:`~.safe_load.load_checkpoint_file`: no code runs, NaN / Inf
    weights refused), checks the model settings it was trained with
    (:func:`trained_state_dict`), then loads it with every key and shape checked
    (:func:`load_checked_state_dict`).

    Args:
        model (nn.Module): The model (unwrapped).
        filename (str): The checkpoint.
        model_cfg (Mapping): The config's ``model``.
        allow_partial (bool): Accept missing and unexpected keys (the model settings must still
            agree). Defaults to False.
        logger (str, optional): As for :func:`load_checked_state_dict`. Defaults to 'current'.

    Returns:
        LoadReport: What was loaded.
    """
    state_dict = trained_state_dict(load_checkpoint_file(filename), filename, model_cfg)
    allowed = ['*'] if allow_partial else []
    source = filename if allow_partial else f'{filename} (--allow-partial loads it anyway)'
    return load_checked_state_dict(model, state_dict, allowed, allowed, logger, source)
