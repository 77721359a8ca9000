"""Helpers shared by ``tools/train.py`` and ``tools/test.py``.

They turn command-line arguments into config changes the way MMSegmentation's own tools do, and
make distributed runs work on machines without CUDA: MMEngine 0.10.7 calls
``torch.cuda.set_device`` while initialising the process group and wraps the model in DDP with
``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. Here the process group is started
with the gloo backend first (MMEngine then skips its own initialisation), DDP is built without
device ids, and data-loader workers start from a fork server instead of a plain fork.
"""
import argparse
import ast
import os
import os.path as osp
from typing import Any, Optional, Sequence, Union

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction`` that names a ``--cfg-options`` item without ``=``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Union[str, Sequence[Any], None], option_string: Optional[str] = None
                 ) -> None:
        for item in values or []:
            if '=' not in item:
                raise argparse.ArgumentError(
                    self, f"'{item}' is not KEY=VALUE (e.g. train_dataloader.batch_size=8)")
        super().__call__(parser, namespace, values, option_string)


def read_config(path: str) -> Config:
    """``Config.fromfile`` with errors that name the file: missing, or a syntax error (MMEngine
    reports the top file's as ``<unknown>``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        ast.parse(text, filename=path)
    except SyntaxError as err:
        raise SyntaxError(f'config {path}, line {err.lineno}: {err.msg}') from None
    return Config.fromfile(path)


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint MMEngine's ``last_checkpoint`` file in ``work_dir`` names, or None.

    MMEngine records an absolute path, so a work dir copied or moved elsewhere would resume from
    the old folder; a checkpoint of that name in ``work_dir`` itself is taken first.

    Raises:
        FileNotFoundError: The record names a checkpoint found neither in ``work_dir`` nor at
            the recorded path.
    """
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record, encoding='utf-8') as f:
        recorded = f.read().strip()
    local = osp.join(work_dir, osp.basename(recorded))
    for candidate in (local, recorded):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'{record} names {recorded}, which exists neither there nor in '
                            f'{work_dir}; delete {record} to start afresh, or pass '
                            '--cfg-options load_from=CHECKPOINT resume=True')


def add_common_arguments(parser: argparse.ArgumentParser, work_dir_help: str) -> None:
    """Add the options train.py and test.py share: work dir, cfg options, launcher, local rank."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config entries, e.g. train_dataloader.batch_size=8 or key="[a,b]"')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument(
        '--fp32', action='store_true',
        help='on a GPU, run in float32 instead of the default bfloat16 autocast')
    parser.add_argument(
        '--eager', action='store_true',
        help='on a GPU, run eagerly instead of compiling the model with torch.compile')
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
    from .cfg_options import merge_cfg_options
    merge_cfg_options(cfg, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(config_path)


def apply_cpu_threads(cfg: Config) -> Optional[int]:
    """Use ``cpu_threads`` of the config as torch's thread count on a machine without CUDA,
    unless ``OMP_NUM_THREADS`` is set (the user's choice wins).

    Small models on a shared CPU run several times faster on one thread than on all of them,
    which wait on each other; the SynthRef configs set ``cpu_threads = 1``.

    Returns:
        int, optional: The thread count set, or None when nothing was changed.
    """
    threads = cfg.get('cpu_threads')
    if not threads or torch.cuda.is_available() or 'OMP_NUM_THREADS' in os.environ:
        return None
    torch.set_num_threads(int(threads))
    return int(threads)


def _export_slurm_environment(port: Optional[int] = None) -> None:
    """Set the variables ``init_method='env://'`` reads from the ones srun sets, as MMEngine's
    ``_init_dist_slurm`` does on a GPU.

    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` come from ``SLURM_PROCID``, ``SLURM_NTASKS`` and
    ``SLURM_LOCALID``; ``MASTER_PORT`` from ``port`` (``env_cfg.dist_cfg.port``), else the
    environment, else 29500; ``MASTER_ADDR`` from the environment, else the first node of
    ``SLURM_NODELIST`` as ``scontrol show hostname`` names it.

    Raises:
        CommandLineError: A SLURM variable is missing (not started by srun), or ``scontrol``
            cannot name the master node and ``MASTER_ADDR`` is not set.
    """
    import subprocess

    from .cli import CommandLineError
    missing = [name for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if name not in os.environ]
    if missing:
        raise CommandLineError(f'--launcher slurm: {", ".join(missing)} not set; start the '
                               'tool with srun (tools/slurm_train.sh, tools/slurm_test.sh)')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostname', node_list], check=True,
                                   capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as err:
            raise CommandLineError(f'--launcher slurm: scontrol cannot name the first node of '
                                   f'{node_list} ({err}); set MASTER_ADDR to its address') from None
        if not hosts:
            raise CommandLineError(f'--launcher slurm: scontrol names no node in {node_list}; '
                                   'set MASTER_ADDR to the first node\'s address')
        os.environ['MASTER_ADDR'] = hosts[0]


def setup_cpu_distributed(cfg: Config) -> None:
    """Make a distributed launch work without CUDA (gloo, DDP without device ids, forkserver).

    Does nothing for ``launcher='none'`` or when CUDA is available.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'--launcher {launcher} needs CUDA here; use pytorch or slurm on CPU')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if launcher == 'slurm':
        _export_slurm_environment(dist_cfg.get('port'))
    dist_cfg['backend'] = 'gloo'
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
