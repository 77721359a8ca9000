"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

They turn command-line arguments into config changes the way MMSegmentation's own tools do, and
make distributed runs work on machines without CUDA: MMEngine 0.10.7 calls
``torch.cuda.set_device`` while initialising the process group and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. Here the process group is started
with the gloo backend first (MMEngine then skips its own initialisation), DDP is built without
device ids, and data-loader workers start from a fork server instead of a plain fork.
"""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction


def add_common_arguments(parser: argparse.ArgumentParser, work_dir_help: str) -> None:
    """Add the options train.py and test.py share: work dir, cfg options, launcher, local rank."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. train_dataloader.batch_size=8 or key="[a,b]"')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_with_local_rank(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line and export ``LOCAL_RANK`` when a launcher passed it as an option."""
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config name>``, MMSeg's default work directory."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def apply_common_args(cfg: Config, config_path: str, launcher: str,
                      work_dir: Optional[str], cfg_options: Optional[dict]) -> None:
    """Apply launcher, ``--cfg-options`` and ``--work-dir`` (CLI > config > file name)."""
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(config_path)


def _export_slurm_environment() -> None:
    """Translate SLURM's variables into the ones ``init_method='env://'`` reads."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        import subprocess
        first = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
        os.environ['MASTER_ADDR'] = first


def setup_cpu_distributed(cfg: Config) -> None:
    """Make a distributed launch work without CUDA (gloo, DDP without device ids, forkserver).

    Does nothing for ``launcher='none'`` or when CUDA is available.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'--launcher {launcher} needs CUDA here; use pytorch or slurm on CPU')
    if launcher == 'slurm':
        _export_slurm_environment()
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    # A data-loader worker forked from a process that runs gloo's threads can hang right after
    # the fork (seen here); workers started from a fork server do not inherit those threads.
    mp_cfg = env_cfg.setdefault('mp_cfg', {})
    if mp_cfg.get('mp_start_method', 'fork') == 'fork':
        mp_cfg['mp_start_method'] = 'forkserver'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', init_method='env://')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
