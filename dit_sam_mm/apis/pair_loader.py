"""Reading and preprocessing (image, sentence) pairs in data-loader workers for batch inference.

:func:`build_pair_loader` gives a ``DataLoader`` whose workers read each image (header pixel check
first) and run the inferencer's test pipeline while the model runs on the batch before; with no
worker it does the same in the calling process between batches. The batches come in the order
asked for, so the output does not depend on the number of workers.
"""
import ctypes
import os
import signal
import sys
from functools import partial
from typing import List, NamedTuple, Optional

import numpy as np
import torch
from mmseg.structures import SegDataSample
from torch.utils.data import DataLoader, Dataset

from .inference_inputs import Pair
from .inferencer import ReferSegInferencer, read_image

#: ``prctl`` option of Linux: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class PreparedPair(NamedTuple):
    """One pair read and preprocessed, as a data-loader worker sends it back.

    The tensors travel as numpy arrays, pickled with the rest through the worker's pipe: torch
    would move each tensor (three a pair) into a shared-memory segment of its own, which on the
    tiny SynthRef model costs about as much as the model's own time a pair, and unpickling a
    tensor costs more than unpickling an array.

    Attributes:
        inputs (np.ndarray): The pipeline's ``inputs`` (3, H, W).
        data_sample (SegDataSample): Its ``data_samples``, the tensor fields as numpy arrays
            until :meth:`packed`.
        image (np.ndarray, optional): The BGR image, kept only for drawing overlays.
    """
    inputs: np.ndarray
    data_sample: SegDataSample
    image: Optional[np.ndarray] = None

    @classmethod
    def from_packed(cls, packed: dict, image: Optional[np.ndarray]) -> 'PreparedPair':
        """From the pipeline's output (``inputs`` and ``data_samples``)."""
        sample = packed['data_samples']
        sample.set_data({key: value.numpy() for key, value in sample.items()
                         if isinstance(value, torch.Tensor)})
        return cls(packed['inputs'].numpy(), sample, image)

    def packed(self) -> dict:
        """The pipeline's output again, as :meth:`ReferSegInferencer.forward` takes it."""
        sample = self.data_sample
        sample.set_data({key: torch.from_numpy(value) for key, value in sample.items()
                         if isinstance(value, np.ndarray)})
        return dict(inputs=torch.from_numpy(self.inputs), data_samples=sample)


class PairPreprocessor(Dataset):
    """The pairs as a map-style dataset: reads the image (header pixel check first) and runs the
    inferencer's test pipeline, so that a ``DataLoader`` prepares the next batches in worker
    processes while the model runs.

    Args:
        pairs (list[Pair]): The whole input.
        inferencer (ReferSegInferencer): Whose pipeline and ``max_pixels`` to use (its model is
            not used here).
        keep_images (bool): Keep each image in its ``PreparedPair`` (to draw overlays).
            Defaults to False.
    """

    def __init__(self, pairs: List[Pair], inferencer: ReferSegInferencer,
                 keep_images: bool = False) -> None:
        self.pairs = pairs
        self.pipeline = inferencer.pipeline
        self.max_pixels = inferencer.max_pixels
        self.keep_images = keep_images

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> PreparedPair:
        """The pair's prepared inputs.

        Raises:
            ValueError: The image is unreadable or too large (input file, line and field named;
                ``run_main`` prints a worker's error as one line too).
        """
        pair = self.pairs[index]
        try:
            image = read_image(pair.path, max_pixels=self.max_pixels)
        except (OSError, ValueError) as err:
            raise ValueError(f'{pair.where}: image: {err}') from None
        # The pipeline itself, not the inferencer's preprocess: a worker started by spawn would
        # receive the whole inferencer, model included, with a bound method.
        return PreparedPair.from_packed(self.pipeline(dict(img=image, sentence=pair.sentence)),
                                        image if self.keep_images else None)


def _die_with_parent(parent_pid: int, worker_id: int) -> None:
    """A worker's init function: on Linux, ask the kernel to kill this worker when the process
    that runs the model dies. A worker outliving a killed parent would wait forever to write a
    batch into a pipe that no process reads (it holds the pipe's other end itself). Workers
    started by a fork server (not children of that process) are left as they are."""
    if sys.platform.startswith('linux') and os.getppid() == parent_pid:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # it died before the request
            os._exit(1)


def _as_list(prepared: List[PreparedPair]) -> List[PreparedPair]:
    """The data loader's collate function: the batch's pairs as they are (the inferencer
    stacks and pads them)."""
    return prepared


def build_pair_loader(pairs: List[Pair], inferencer: ReferSegInferencer,
                      batches: List[List[int]], num_workers: int = 0,
                      mp_start_method: Optional[str] = None,
                      keep_images: bool = False) -> DataLoader:
    """A loader of the given batches of ``pairs``, read and preprocessed.

    Args:
        pairs (list[Pair]): The whole input.
        inferencer (ReferSegInferencer): Whose pipeline and ``max_pixels`` to use.
        batches (list[list[int]]): The batches to load, as indices into ``pairs``, in order.
        num_workers (int): Worker processes; 0 loads in this process. Defaults to 0.
        mp_start_method (str, optional): How the workers are started (``'fork'``,
            ``'spawn'``, ``'forkserver'``); None: Python's default.
        keep_images (bool): Keep each image (to draw overlays). Defaults to False.

    Returns:
        DataLoader: Yields one list of :class:`PreparedPair` a batch.
    """
    if num_workers < 0:
        raise ValueError(f'--num-workers must be >= 0, got {num_workers}')
    return DataLoader(PairPreprocessor(pairs, inferencer, keep_images), batch_sampler=batches,
                      num_workers=num_workers, collate_fn=_as_list,
                      multiprocessing_context=mp_start_method if num_workers else None,
                      worker_init_fn=partial(_die_with_parent, os.getpid()))
