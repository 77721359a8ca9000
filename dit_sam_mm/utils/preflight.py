"""Check, before a run starts, that the files a config names exist.

Without this a missing file surfaces one at a time and late (BERT at model build, the dataset when
the first data loader starts, SAM's weights in ``init_weights``). ``find_missing_files`` walks the
config once and lists every missing file with where it usually comes from.
"""
import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Sequence

from mmengine.config import Config, ConfigDict

from .paths import looks_like_local_path

SAM_HOWTO = ('convert the official SAM checkpoint: python tools/model_converters/sam2mmseg.py '
             '{official} {path}')
OFFICIAL_SAM = dict(base='sam_vit_b_01ec64.pth', large='sam_vit_l_0b3195.pth',
                    huge='sam_vit_h_4b8939.pth')
BERT_HOWTO = ('download bert-base-uncased on a machine with internet: huggingface-cli download '
              'bert-base-uncased --local-dir {path}')
DATA_HOWTO = ('see docs/en/dataset_prepare.md for the REFER layout; python '
              'tools/dataset_converters/refcoco.py check DATA_ROOT lists what is missing')
SYNTHREF_HOWTO = 'generate it: python tools/dataset_converters/make_synthref.py {root}{flag}'
CUSTOM_HOWTO = ('see docs/en/custom_data.md: tools/dataset_converters/custom_refer.py writes '
                'SPLIT.jsonl from your annotations')


class MissingFile(NamedTuple):
    """A file or folder that a config needs and that does not exist."""
    what: str
    path: str
    howto: str


def _join(root: Optional[str], path: str) -> str:
    return path if root is None or osp.isabs(path) else osp.join(root, path)


def _model_files(model: ConfigDict, init_weights: bool) -> Iterator[MissingFile]:
    pretrained = model.get('pretrained')
    if init_weights and pretrained and not osp.isfile(pretrained):
        arch = (model.get('backbone') or {}).get('arch')
        official = (OFFICIAL_SAM.get(arch) if isinstance(arch, str) else None) or \
            'sam_vit_<b|l|h>_<hash>.pth'
        yield MissingFile('converted SAM weights (model.pretrained)', pretrained,
                          SAM_HOWTO.format(official=official, path=pretrained))
    neck = model.get('neck') or {}
    bert = neck.get('pretrained')
    if bert and looks_like_local_path(bert) and not osp.isdir(bert):
        yield MissingFile('BERT weights (model.neck.pretrained)', bert,
                          BERT_HOWTO.format(path=bert))


def _split_paths(root: Optional[str], path: str, split: object) -> List[str]:
    """The files of ``path``; a ``{split}`` in it (``CustomReferDataset``) names one per split."""
    if '{split}' not in path:
        return [_join(root, path)]
    splits = [split] if isinstance(split, str) else list(split or ['train'])
    return [_join(root, path.replace('{split}', str(s))) for s in splits]


def _dataset_files(name: str, dataset: ConfigDict) -> Iterator[MissingFile]:
    root = dataset.get('data_root')
    howto = CUSTOM_HOWTO if dataset.get('type') == 'CustomReferDataset' else DATA_HOWTO
    if root and 'synthref' in root:
        # The gRefCOCO-format variant is the one with a grefs(*) split file.
        generalized = 'grefs' in str(dataset.get('split_file', ''))
        howto = SYNTHREF_HOWTO.format(root=root, flag=' --generalized' if generalized else '')
    for key in ('ann_file', 'split_file'):
        for path in _split_paths(root, dataset[key], dataset.get('split')) \
                if dataset.get(key) else []:
            if not osp.isfile(path):
                yield MissingFile(f'{name}.dataset.{key}', path, howto)
    img_dir = (dataset.get('data_prefix') or {}).get('img_path')
    if img_dir is not None and not osp.isdir(_join(root, img_dir)):
        yield MissingFile(f'{name}.dataset.data_prefix.img_path', _join(root, img_dir), howto)
    for transform in dataset.get('pipeline') or []:
        tokenizer = transform.get('tokenizer') if isinstance(transform, dict) else None
        if tokenizer and looks_like_local_path(tokenizer) and not osp.isdir(tokenizer):
            yield MissingFile(f'{name} tokenizer ({transform["type"]}.tokenizer)', tokenizer,
                              BERT_HOWTO.format(path=tokenizer))
        vocab = transform.get('vocab_file') if isinstance(transform, dict) else None
        if vocab and not osp.isfile(vocab):
            yield MissingFile(f'{name} vocabulary ({transform["type"]}.vocab_file)', vocab,
                              howto)


def find_missing_files(cfg: Config,
                       loaders: Sequence[str] = ('train_dataloader', 'val_dataloader'),
                       init_weights: bool = True) -> List[MissingFile]:
    """List the files of ``cfg`` (model weights, data, tokenizer) that do not exist.

    Args:
        cfg (Config): A training or test config.
        loaders (Sequence[str]): Which data loaders to check. Defaults to training's two.
        init_weights (bool): Whether the run initialises the weights from ``model.pretrained``
            (training does; testing loads a checkpoint instead). Defaults to True.

    Returns:
        list[MissingFile]: One entry per missing path (duplicates removed), in config order.
    """
    found = list(_model_files(cfg.model, init_weights)) if cfg.get('model') else []
    for name in loaders:
        loader = cfg.get(name)
        if loader and loader.get('dataset'):
            found.extend(_dataset_files(name, loader.dataset))
    unique, seen = [], set()
    for item in found:
        if item.path not in seen:
            seen.add(item.path)
            unique.append(item)
    return unique


def _project_root(config_file: Optional[str]) -> Optional[str]:
    """The folder holding the ``configs/`` folder that ``config_file`` is in, if any."""
    parts = osp.abspath(config_file).split(osp.sep) if config_file else []
    if 'configs' not in parts[:-1]:
        return None
    return osp.sep.join(parts[:len(parts) - 1 - parts[::-1].index('configs')]) or osp.sep


def _relative_path_note(cfg: Config, missing: Sequence[MissingFile]) -> str:
    """Where relative paths were looked for, and where they are when run from elsewhere."""
    relative = [m.path for m in missing if not osp.isabs(m.path)]
    if not relative:
        return ''
    here = os.getcwd()
    root = _project_root(cfg.filename)
    if root and root != here and all(osp.exists(osp.join(root, p)) for p in relative):
        return (f'relative paths are read from the current folder {here}, but they exist under '
                f'{root}: run from there (cd {root}) or make them absolute\n')
    return f'(relative paths are read from the current folder, {here})\n'


def raise_if_files_missing(cfg: Config, loaders: Sequence[str], init_weights: bool) -> None:
    """Raise ``FileNotFoundError`` naming every missing file and how to get it."""
    missing = find_missing_files(cfg, loaders, init_weights)
    if missing:
        lines = [f'  - {m.what}: {m.path}\n      {m.howto}' for m in missing]
        raise FileNotFoundError('this config needs files that do not exist:\n' +
                                _relative_path_note(cfg, missing) + '\n'.join(lines))
