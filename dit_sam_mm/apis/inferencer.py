"""Run a trained DIT-SAM model on your own images and sentences."""
import os
import os.path as osp
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.logging import print_log
from mmseg.structures import SegDataSample

from ..datasets.image_limits import DEFAULT_MAX_PIXELS, check_max_pixels
from ..datasets.transforms.loading import decode_image, read_image_file
from ..utils.fast_path import (FastPath, accelerate_inference, cuda_device_info, describe,
                               gpu_fast_path)
from ..visualization import ReferSegLocalVisualizer
from .model_init import ConfigType, inference_pipeline_cfg, init_refer_model
from .refer_result import ReferSegResult, token_counts

ImageType = Union[str, Path, bytes, np.ndarray]

#: What :func:`read_image` takes as an image array.
ACCEPTED_ARRAYS = ('a BGR array (H, W, 3) or a grey one (H, W) or (H, W, 1), of uint8 (0-255) or '
                   'float (values in [0, 1])')


def _check_array(image: np.ndarray, name: str) -> np.ndarray:
    """An accepted image array (see :data:`ACCEPTED_ARRAYS`) as a contiguous BGR uint8 array."""

    def refused(problem: str) -> ValueError:
        return ValueError(f'{name}: {problem}; an image array must be {ACCEPTED_ARRAYS}')

    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise refused(f'got shape {image.shape}')
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise refused(f'the image array is empty (shape {image.shape})')
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise refused('the float image array holds NaN or infinite values')
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0:
            raise refused(f'the float image array holds values in [{low:g}, {high:g}], not in '
                          '[0, 1] (for 0-255 values convert it with .astype(np.uint8))')
        image = np.round(image.astype(np.float32) * 255.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise refused(f'got dtype {image.dtype}')
    if image.ndim == 2:
        image = mmcv.gray2bgr(image)
    return np.ascontiguousarray(image)


def read_image(image: ImageType, name: str = 'image',
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image file, its bytes or an array as a BGR uint8 array (H, W, 3), as ``mmcv.imread``
    gives it.

    Args:
        image (str | Path | bytes | np.ndarray): An image file or the bytes of one (read in
            colour, BGR), or an array: BGR (H, W, 3) or grey (H, W) / (H, W, 1), uint8 (0-255)
            or float with values in [0, 1] (multiplied by 255 and rounded).
        name (str): What to call the image in error messages (the argument it came from).
            Defaults to ``'image'``.
        max_pixels (int): A file or bytes whose header claims more pixels is refused before it
            is decoded. Defaults to ``DEFAULT_MAX_PIXELS`` (89,478,485, Pillow's limit).

    Returns:
        np.ndarray: The contiguous BGR uint8 array.

    Raises:
        FileNotFoundError: The file does not exist (named).
        IsADirectoryError: The path is a folder (named).
        TypeError: ``image`` is neither a path, bytes nor an array.
        ImageTooLargeError: More than ``max_pixels`` pixels (named, with the size and limit).
        ValueError: The file is empty or no image (named); the array is empty, of another shape
            or dtype, or a float array with values outside [0, 1], NaN or infinite.
    """
    if isinstance(image, (str, Path)):
        return read_image_file(image, color_type='color', max_pixels=max_pixels)
    if isinstance(image, bytes):
        return decode_image(image, f'{name} (bytes)', color_type='color', max_pixels=max_pixels)
    if not isinstance(image, np.ndarray):
        raise TypeError(f'{name}: an image must be a file path, the bytes of an image file or a '
                        f'numpy array, got {type(image).__name__}')
    return _check_array(image, name)


def _as_batch(images: Union[ImageType, Sequence[ImageType]],
              sentences: Union[str, Sequence[str]]) -> Tuple[list, List[str], bool]:
    """Pair the inputs: (images, sentences, whether they were lists)."""
    image_is_list = isinstance(images, (list, tuple))
    sentence_is_list = isinstance(sentences, (list, tuple))
    if image_is_list != sentence_is_list:
        raise ValueError('give one image and one sentence, or two lists of the same length '
                         '(e.g. [image] * len(sentences) for one image and several sentences)')
    if not image_is_list:
        images, sentences = [images], [sentences]
    if len(images) != len(sentences):
        raise ValueError(f'got {len(images)} images but {len(sentences)} sentences: the lists '
                         'must have the same length (one sentence per image)')
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str) or not sentence.strip():
            raise ValueError(f'sentence {i} is empty ({sentence!r}): say which object to '
                             'segment')
    return list(images), list(sentences), image_is_list


class ReferSegInferencer:
    """Referring segmentation with a trained model: image + sentence -> mask.

    The model is built and loaded once; every call preprocesses exactly like the config's
    evaluation (its test pipeline without the annotation loading: keep-ratio ``Resize``,
    ``TokenizeText`` with the config's vocabulary, ``PackReferSegInputs``; the model's data
    preprocessor normalises and pads) and runs ``model.test_step``, whose post-processing crops the
    padding and resizes to the original image size.

    Images are files or their bytes (read in colour: EXIF orientation applied, alpha dropped;
    one whose header claims more than ``max_pixels`` pixels is refused before it is decoded) or
    numpy arrays in OpenCV's BGR channel order (as ``mmcv.imread`` / ``cv2.imread`` return them;
    flip the last axis of an RGB array): (H, W, 3), or grey (H, W) / (H, W, 1). Arrays are uint8
    (0-255) or float (any float dtype) with values in [0, 1], which are multiplied by 255 and
    rounded to uint8, so a float image gives the prediction of its 8-bit version. Anything else
    (an empty array, other shapes, other dtypes, a float outside [0, 1], NaN or infinity) is
    refused with a ``ValueError`` naming the argument; a missing file (``FileNotFoundError``), a
    folder (``IsADirectoryError``) or an empty or undecodable file (``ValueError``), with one
    naming the file.

    Each result also says how much of its sentence the model read (``result.tokens``): the word
    pieces unknown to the vocabulary (read as [UNK]: a sentence of unknown words still gives a
    mask, which does not follow it) and those cut off past the tokenizer's ``max_length``.

    Example::

        >>> inferencer = ReferSegInferencer('configs/dit/ldit_vitb_refcoco.py',
        ...                                 weights='work_dirs/ldit/epoch_40.pth', device='cpu')
        >>> result = inferencer('demo.jpg', 'the man on the left', return_probs=True)
        >>> result.mask.shape, result.area, result.score, result.probs.max()
        >>> result.tokens.num_unknown, result.tokens.truncated, result.tokens.warnings()
        >>> results = inferencer(['a.jpg', bgr_array], ['the red car', 'the dog'], draw=True)

    Args:
        model (str | Path | Config): The config the weights were trained with.
        weights (str, optional): The checkpoint (see :func:`init_refer_model`). None runs the
            randomly initialised model.
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ... Defaults to the first
            GPU when there is one, else the CPU.
        cfg_options (dict, optional): Overrides merged into the config.
        batch_size (int): Samples per forward pass when called with lists. Defaults to 8.
        allow_partial (bool): Load a checkpoint whose keys do not all match the config (missing
            or unexpected keys); refused by default. Defaults to False.
        fast (bool, optional): Run the model in autocast, compiled with CUDA graphs
            (``torch.compile(mode='reduce-overhead')``, one graph per input and batch size,
            captured on the first call of that size). None: as ``gpu_fast_path`` chooses for
            the device (bfloat16 from sm_80, float16 before; compiled from sm_70 with Triton),
            unless the config sets ``gpu_fast_path = False``. True: bfloat16 and compiled, on
            any device. Defaults to None.
        max_pixels (int): Refuse image files and bytes whose header claims more pixels, before
            decoding them. Defaults to ``DEFAULT_MAX_PIXELS`` (89,478,485, Pillow's limit).
    """

    def __init__(self,
                 model: ConfigType,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 batch_size: int = 8,
                 allow_partial: bool = False,
                 fast: Optional[bool] = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.max_pixels = check_max_pixels(max_pixels)
        self.model, self.cfg = init_refer_model(model, weights, device, cfg_options,
                                                allow_partial=allow_partial)
        on_cuda = next(self.model.parameters()).is_cuda
        if fast is None:
            self.fast_path = gpu_fast_path(self.cfg, cuda=on_cuda)
        else:
            self.fast_path = (FastPath('bfloat16', True, 'fast=True') if fast else
                              FastPath(None, False, 'fast=False'))
        if accelerate_inference(self.model, self.fast_path, compile_mode='reduce-overhead'):
            print_log(describe(self.fast_path, cuda_device_info() if on_cuda else None),
                      logger='current')
        self.pipeline = Compose(inference_pipeline_cfg(self.cfg))
        self.batch_size = batch_size
        self._visualizer: Optional[ReferSegLocalVisualizer] = None

    @property
    def visualizer(self) -> ReferSegLocalVisualizer:
        """The visualiser that draws the pictures (built on first use)."""
        if self._visualizer is None:
            self._visualizer = ReferSegLocalVisualizer(name=f'refer_inferencer_{id(self)}')
        return self._visualizer

    def __call__(self,
                 images: Union[ImageType, Sequence[ImageType]],
                 sentences: Union[str, Sequence[str]],
                 return_probs: bool = False,
                 draw: bool = False,
                 out_dir: Optional[str] = None
                 ) -> Union[ReferSegResult, List[ReferSegResult]]:
        """Segment the object each sentence refers to.

        Args:
            images (str | Path | bytes | np.ndarray | Sequence): An image file, its bytes or an
                array (see the class documentation: BGR (H, W, 3) or grey, uint8 or float in
                [0, 1]), or a list of them.
            sentences (str | Sequence[str]): The referring sentence, or a list with one sentence
                per image.
            return_probs (bool): Also return the probability maps. Defaults to False.
            draw (bool): Also return pictures of the predictions. Defaults to False.
            out_dir (str, optional): Write the pictures there as PNG files
                (``{image name or 'array'}_{index}.png``); implies ``draw``.

        Returns:
            ReferSegResult | List[ReferSegResult]: One result for one pair, a list for lists.
        """
        images, sentences, batched = _as_batch(images, sentences)
        arrays = [read_image(image, f'images[{i}]' if batched else 'images', self.max_pixels)
                  for i, image in enumerate(images)]
        results: List[ReferSegResult] = []
        for start in range(0, len(arrays), self.batch_size):
            stop = start + self.batch_size
            outputs = self.forward([self.preprocess(array, sentence) for array, sentence
                                    in zip(arrays[start:stop], sentences[start:stop])])
            results += [self.postprocess(output, array, return_probs, draw or out_dir is not None)
                        for array, output in zip(arrays[start:stop], outputs)]
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            for i, (image, result) in enumerate(zip(images, results)):
                stem = (Path(image).stem if isinstance(image, (str, Path)) else
                        'bytes' if isinstance(image, bytes) else 'array')
                mmcv.imwrite(mmcv.rgb2bgr(result.visualization),
                             osp.join(out_dir, f'{stem}_{i}.png'))
        return results if batched else results[0]

    def preprocess(self, image: np.ndarray, sentence: str) -> dict:
        """One pair through the test pipeline.

        Args:
            image (np.ndarray): The BGR uint8 image (as :func:`read_image` gives it).
            sentence (str): The referring sentence.

        Returns:
            dict: ``inputs`` (the resized, padded (3, H, W) image tensor) and ``data_samples``
            (its ``SegDataSample`` with the tokens and the original size), as
            ``PackReferSegInputs`` packs them.
        """
        return self.pipeline(dict(img=image, sentence=sentence))

    def forward(self, packed: List[dict]) -> List[SegDataSample]:
        """Run ``model.test_step`` on preprocessed pairs (:meth:`preprocess`), all at once.

        Args:
            packed (list[dict]): The pairs, as :meth:`preprocess` returns them.

        Returns:
            list[SegDataSample]: The predictions at the images' original sizes, in order.
        """
        # mmseg 1.2.2's SegDataPreProcessor requires one image size per test batch (it checks
        # before padding): with ReferPad in the test pipeline (our configs) that is one group;
        # other pipelines send images of different resized shapes through separate passes.
        groups: Dict[tuple, List[int]] = defaultdict(list)
        for i, sample in enumerate(packed):
            groups[tuple(sample['inputs'].shape)].append(i)
        outputs: List[Optional[SegDataSample]] = [None] * len(packed)
        for indices in groups.values():
            data = dict(inputs=[packed[i]['inputs'] for i in indices],
                        data_samples=[packed[i]['data_samples'] for i in indices])
            with torch.no_grad():
                for i, output in zip(indices, self.model.test_step(data)):
                    outputs[i] = output
        return outputs

    def postprocess(self, output: SegDataSample, image: Optional[np.ndarray] = None,
                    return_probs: bool = False, draw: bool = False) -> ReferSegResult:
        """The result of one prediction of :meth:`forward`.

        Args:
            output (SegDataSample): The prediction.
            image (np.ndarray, optional): Its BGR image, needed only to ``draw``.
            return_probs (bool): Keep the probability map. Defaults to False.
            draw (bool): Draw the picture. Defaults to False.

        Returns:
            ReferSegResult: Mask, score, token counts, no-target answer (and probabilities and
            picture when asked for).
        """
        mask = output.pred_sem_seg.data[0].cpu().numpy().astype(bool)
        # For one output channel mmseg's postprocess_result stores sigmoid probabilities.
        probs = output.seg_logits.data[0].float().cpu().numpy()
        score = float(probs[mask].mean()) if mask.any() else 0.0
        picture = None
        if draw:
            if image is None:
                raise ValueError('postprocess: draw=True needs the image')
            picture = self.visualizer.draw_sample(mmcv.bgr2rgb(image), output, draw_gt=False)
        no_target_prob = output.metainfo.get('no_target_prob')
        no_target = (no_target_prob is not None
                     and no_target_prob > self.model.decode_head.no_target_threshold)
        return ReferSegResult(mask, score, probs if return_probs else None, picture,
                              token_counts(output.metainfo), no_target_prob, no_target)
