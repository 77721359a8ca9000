"""Run a trained DIT-SAM model on your own images and sentences."""
import os
import os.path as osp
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmseg.structures import SegDataSample

from ..visualization import ReferSegLocalVisualizer
from .model_init import ConfigType, inference_pipeline_cfg, init_refer_model

ImageType = Union[str, Path, np.ndarray]


class ReferSegResult(NamedTuple):
    """The prediction for one (image, sentence) pair, at the image's original size.

    Attributes:
        mask (np.ndarray): (H, W) bool, the referred object (probability > the head's
            ``threshold``).
        score (float): Confidence: the mean probability over the mask's pixels (0 for an empty
            mask).
        probs (np.ndarray, optional): (H, W) float32 probabilities in [0, 1] (sigmoid of the
            logits), when asked for with ``return_probs``.
        visualization (np.ndarray, optional): RGB picture (mask overlay and sentence), when
            asked for with ``draw`` or ``out_dir``.
    """
    mask: np.ndarray
    score: float
    probs: Optional[np.ndarray] = None
    visualization: Optional[np.ndarray] = None

    @property
    def area(self) -> int:
        """Pixels in the mask."""
        return int(np.count_nonzero(self.mask))


def read_image(image: ImageType) -> np.ndarray:
    """An image file or array as a BGR uint8 array (H, W, 3), as ``mmcv.imread`` gives it.

    Raises:
        FileNotFoundError: The file does not exist (named).
        ValueError: The file is no readable image, or the array is not (H, W) / (H, W, 3).
    """
    if isinstance(image, (str, Path)):
        if not osp.isfile(image):
            raise FileNotFoundError(f'image file not found: {image}')
        array = mmcv.imread(str(image), flag='color')
        if array is None:
            raise ValueError(f'cannot read image {str(image)!r}: not an image file or a '
                             'format OpenCV cannot decode')
        return array
    if not isinstance(image, np.ndarray):
        raise TypeError(f'an image must be a file path or a numpy array, got '
                        f'{type(image).__name__}')
    if image.ndim == 2:
        return mmcv.gray2bgr(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'an image array must be (H, W) or (H, W, 3) BGR, got shape '
                         f'{image.shape}')
    return image


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

    Example::

        >>> inferencer = ReferSegInferencer('configs/dit/ldit_vitb_refcoco.py',
        ...                                 weights='work_dirs/ldit/epoch_40.pth', device='cpu')
        >>> result = inferencer('demo.jpg', 'the man on the left', return_probs=True)
        >>> result.mask.shape, result.area, result.score, result.probs.max()
        >>> results = inferencer(['a.jpg', bgr_array], ['the red car', 'the dog'], draw=True)

    Args:
        model (str | Path | Config): The config the weights were trained with.
        weights (str, optional): The checkpoint (see :func:`init_refer_model`). None runs the
            randomly initialised model.
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ... Defaults to the first
            GPU when there is one, else the CPU.
        cfg_options (dict, optional): Overrides merged into the config.
        batch_size (int): Samples per forward pass when called with lists. Defaults to 8.
    """

    def __init__(self,
                 model: ConfigType,
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 cfg_options: Optional[dict] = None,
                 batch_size: int = 8) -> None:
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.model, self.cfg = init_refer_model(model, weights, device, cfg_options)
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
            images (str | Path | np.ndarray | Sequence): An image file or a BGR uint8 array
                (H, W, 3) (as ``mmcv.imread`` returns; (H, W) grey is accepted), or a list of them.
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
        arrays = [read_image(image) for image in images]
        results: List[ReferSegResult] = []
        for start in range(0, len(arrays), self.batch_size):
            stop = start + self.batch_size
            outputs = self._predict(arrays[start:stop], sentences[start:stop])
            results += [self._result(array, output, return_probs, draw or out_dir is not None)
                        for array, output in zip(arrays[start:stop], outputs)]
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            for i, (image, result) in enumerate(zip(images, results)):
                stem = Path(image).stem if isinstance(image, (str, Path)) else 'array'
                mmcv.imwrite(mmcv.rgb2bgr(result.visualization),
                             osp.join(out_dir, f'{stem}_{i}.png'))
        return results if batched else results[0]

    def _predict(self, arrays: List[np.ndarray], sentences: List[str]) -> List[SegDataSample]:
        packed = [self.pipeline(dict(img=array, sentence=sentence))
                  for array, sentence in zip(arrays, sentences)]
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

    def _result(self, array: np.ndarray, output: SegDataSample, return_probs: bool,
                draw: bool) -> ReferSegResult:
        mask = output.pred_sem_seg.data[0].cpu().numpy().astype(bool)
        # For one output channel mmseg's postprocess_result stores sigmoid probabilities.
        probs = output.seg_logits.data[0].float().cpu().numpy()
        score = float(probs[mask].mean()) if mask.any() else 0.0
        picture = None
        if draw:
            picture = self.visualizer.draw_sample(mmcv.bgr2rgb(array), output, draw_gt=False)
        return ReferSegResult(mask, score, probs if return_probs else None, picture)
