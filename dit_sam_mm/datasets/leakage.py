"""Evaluation images that a training set also holds (leakage between mixed datasets).

RefCOCO, RefCOCO+ and RefCOCOg all take their images from COCO train2014, and their splits were
made apart: RefCOCOg-umd's train split holds images of RefCOCO's val and test splits, and your
own data may hold any of them. A model trained on a mix of them has seen some evaluation images.
:func:`find_leaks` lists every image of an evaluation dataset (``val_dataloader``,
``test_dataloader``) that a training dataset of the config (``train_dataloader``, through
MMEngine's ``ConcatDataset`` / ``RepeatDataset`` wrappers) also holds; images are compared by
their absolute, normalised path. ``tools/analysis_tools/check_leakage.py`` prints the list and
``tools/train.py`` warns at start-up.
"""
import copy
import logging
import os.path as osp
from collections import defaultdict
from typing import Dict, Iterator, List, NamedTuple, Set

from mmengine.config import Config
from mmengine.logging import print_log

from mmseg.registry import DATASETS

#: Wrappers whose datasets are read through: key of the inner dataset(s).
WRAPPERS = {'ConcatDataset': 'datasets', 'RepeatDataset': 'dataset',
            'ClassBalancedDataset': 'dataset'}
SHOWN = 5


class Leak(NamedTuple):
    """One evaluation image a training dataset also holds.

    Attributes:
        image (str): The image file (absolute path).
        evaluated_in (list[str]): The evaluation datasets that hold it (``loader: type
            data_root split``).
        trained_in (list[str]): The training datasets that hold it.
    """
    image: str
    evaluated_in: List[str]
    trained_in: List[str]


def leaf_datasets(cfg: dict) -> Iterator[dict]:
    """The dataset configs inside ``cfg``, through the wrappers of :data:`WRAPPERS`."""
    inner = WRAPPERS.get(cfg.get('type'))
    if inner is None:
        yield cfg
        return
    value = cfg[inner]
    for child in (value if isinstance(value, (list, tuple)) else [value]):
        yield from leaf_datasets(child)


def describe(loader: str, cfg: dict) -> str:
    """A short name of a dataset config for the messages."""
    parts = [cfg.get('data_root'), cfg.get('split_file') or cfg.get('ann_file'),
             cfg.get('split')]
    return f'{loader}: {cfg.get("type")} ' + ' '.join(str(p) for p in parts if p)


def dataset_images(cfg: dict) -> Set[str]:
    """The absolute paths of the images a dataset config reads (without running its pipeline).

    Args:
        cfg (dict): A dataset config (not a wrapper).

    Returns:
        set[str]: The images of its data list.
    """
    cfg = copy.deepcopy(dict(cfg))
    cfg.update(pipeline=[], serialize_data=False, lazy_init=False)
    dataset = DATASETS.build(cfg)
    return {osp.normpath(osp.abspath(info['img_path'])) for info in dataset.data_list
            if info.get('img_path')}


def _loader_datasets(cfg: Config, loaders) -> Dict[str, Set[str]]:
    found: Dict[str, Set[str]] = {}
    for loader in loaders:
        dataloader = cfg.get(loader)
        if not dataloader or not dataloader.get('dataset'):
            continue
        for leaf in leaf_datasets(dataloader['dataset']):
            name = describe(loader, leaf)
            if name not in found:
                found[name] = dataset_images(leaf)
    return found


def find_leaks(cfg: Config) -> List[Leak]:
    """Every evaluation image of ``cfg`` that one of its training datasets also holds.

    Args:
        cfg (Config): A training config (``train_dataloader`` and ``val_dataloader`` and/or
            ``test_dataloader``).

    Returns:
        list[Leak]: One per leaked image, sorted by path.
    """
    trained = _loader_datasets(cfg, ['train_dataloader'])
    evaluated = _loader_datasets(cfg, ['val_dataloader', 'test_dataloader'])
    train_index: Dict[str, List[str]] = defaultdict(list)
    for name, images in trained.items():
        for image in images:
            train_index[image].append(name)
    leaks: Dict[str, List[str]] = defaultdict(list)
    for name, images in evaluated.items():
        for image in images & train_index.keys():
            leaks[image].append(name)
    return [Leak(image, leaks[image], train_index[image]) for image in sorted(leaks)]


def summarise(leaks: List[Leak]) -> List[str]:
    """Lines saying how many images leak from which training set into which evaluation set."""
    pairs: Dict[tuple, int] = defaultdict(int)
    for leak in leaks:
        for evaluated in leak.evaluated_in:
            for trained in leak.trained_in:
                pairs[(evaluated, trained)] += 1
    return [f'{count:,} image(s) of [{evaluated}] are also in [{trained}]'
            for (evaluated, trained), count in sorted(pairs.items())]


def warn_about_leaks(cfg: Config) -> List[Leak]:
    """Log a warning when evaluation images of ``cfg`` are also training images.

    Args:
        cfg (Config): The training config.

    Returns:
        list[Leak]: The leaks (empty when there are none).
    """
    leaks = find_leaks(cfg)
    if leaks:
        examples = ', '.join(osp.basename(leak.image) for leak in leaks[:SHOWN])
        print_log(
            f'{len(leaks):,} evaluation image(s) are also training images, so the validation '
            f'and test numbers of this run are optimistic: ' + '; '.join(summarise(leaks))
            + f' (e.g. {examples}). List them with '
            'python tools/analysis_tools/check_leakage.py CONFIG', logger='current',
            level=logging.WARNING)
    return leaks

