"""MMSeg visualiser for referring segmentation: binary masks, side by side, with the sentence."""
import os.path as osp
from typing import List, Optional, Tuple

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from .drawing import Color, foreground, overlay_mask, stack_with_caption, upscale


def mask_iou(pred: np.ndarray, gt: np.ndarray, valid: Optional[np.ndarray] = None) -> float:
    """IoU of two (H, W) bool masks over the ``valid`` pixels (all when None); 1.0 if both
    are empty (the convention of the RIS metrics: nothing predicted for nothing referred)."""
    if valid is not None:
        pred, gt = pred & valid, gt & valid
    union = np.count_nonzero(pred | gt)
    return np.count_nonzero(pred & gt) / union if union else 1.0


@VISUALIZERS.register_module()
class ReferSegLocalVisualizer(SegLocalVisualizer):
    """Draws one referring-segmentation sample: ground truth and prediction, and the sentence.

    Unlike ``SegLocalVisualizer``, which paints every class of ``dataset_meta`` (including the
    background) over the whole image, this tints only the referred object of the 0/1 masks
    (``gt_sem_seg``, ``pred_sem_seg``; (1, H, W), 1 = object, other values such as 255 =
    ignore are not drawn), outlines it, and writes the caption: the sentence from the sample's
    metainfo, the IoU of the prediction when both masks are there, and with ``show_flip`` whether
    the training pipeline flipped the sample (``flip``, ``ori_sentence``). Ground truth is on the
    left, prediction on the right. ``dataset_meta`` (classes / palette) is not needed.

    Every sample gets its own picture: ``add_datasample`` appends the sample's ``ref_id`` and
    ``sent_id`` to the name, because ``SegVisualizationHook`` names pictures after the image file
    and one image has many sentences.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        image (np.ndarray, optional): Image to draw on. Defaults to None.
        vis_backends (list, optional): Visual backend configs. Defaults to None.
        save_dir (str, optional): Directory of the backends. Defaults to None.
        gt_color (Tuple[int, int, int]): RGB colour of the ground truth. Defaults to green.
        pred_color (Tuple[int, int, int]): RGB colour of the prediction. Defaults to red.
        alpha (float): Opacity of the tint. Defaults to 0.5.
        min_size (int): Images whose longer side is shorter are enlarged (nearest neighbour)
            by an integer factor so the caption stays readable. Defaults to 384.
        show_flip (bool): Add a caption line saying whether the sample was flipped.
            Defaults to False.
        **kwargs: Other ``SegLocalVisualizer`` arguments (``classes``, ``palette``,
            ``dataset_name``), kept for compatibility and not used for drawing.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 gt_color: Color = (0, 200, 0),
                 pred_color: Color = (230, 30, 30),
                 alpha: float = 0.5,
                 min_size: int = 384,
                 show_flip: bool = False,
                 **kwargs) -> None:
        super().__init__(name, image, vis_backends, save_dir, alpha=alpha, **kwargs)
        self.gt_color = tuple(gt_color)
        self.pred_color = tuple(pred_color)
        self.min_size = min_size
        self.show_flip = show_flip

    def caption(self, data_sample: SegDataSample, iou: Optional[float] = None) -> List[str]:
        """The caption lines of a sample: sentence, flip state (``show_flip``) and IoU."""
        meta = data_sample.metainfo
        lines = [f'"{meta["sentence"]}"'] if 'sentence' in meta else []
        if self.show_flip:
            if meta.get('flip', False):
                was = meta.get('ori_sentence')
                lines.append('flipped: yes' + (f', was "{was}"' if was is not None else ''))
            else:
                lines.append('flipped: no')
        if iou is not None:
            lines.append(f'IoU {iou:.3f}')
        return lines

    def draw_sample(self,
                    image: np.ndarray,
                    data_sample: SegDataSample,
                    draw_gt: bool = True,
                    draw_pred: bool = True) -> np.ndarray:
        """Return the picture of one sample (RGB): [ground truth | prediction] + caption.

        Args:
            image (np.ndarray): RGB image (H, W, 3) at the size of the masks.
            data_sample (SegDataSample): With ``gt_sem_seg`` and / or ``pred_sem_seg``
                (1, H, W) and metainfo ``sentence``.
            draw_gt (bool): Draw the ground truth panel if there is one. Defaults to True.
            draw_pred (bool): Draw the prediction panel if there is one. Defaults to True.

        Returns:
            np.ndarray: The RGB picture; just the image and caption if no mask is drawn.
        """
        fields: List[Tuple[str, str, Color]] = []
        if draw_gt and 'gt_sem_seg' in data_sample:
            fields.append(('gt_sem_seg', 'ground truth', self.gt_color))
        if draw_pred and 'pred_sem_seg' in data_sample:
            fields.append(('pred_sem_seg', 'prediction', self.pred_color))
        masks = [foreground(data_sample.get(key).data.cpu().numpy()) for key, _, _ in fields]
        iou = None
        if len(masks) == 2:
            gt_values = data_sample.gt_sem_seg.data.cpu().numpy()[0]
            iou = mask_iou(masks[1], masks[0], valid=gt_values != 255)
        big_image, big_masks = upscale(image, masks, self.min_size)
        panels = [overlay_mask(big_image, mask, color, self.alpha)
                  for mask, (_, _, color) in zip(big_masks, fields)] or [big_image]
        titles = [title for _, title, _ in fields] if len(fields) > 1 else None
        return stack_with_caption(panels, titles, self.caption(data_sample, iou))

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw a sample and show it, write it to ``out_file`` or hand it to the backends.

        Args:
            name (str): Picture name; the sample's ``ref_id`` / ``sent_id`` are appended.
            image (np.ndarray): RGB image at the size of the masks.
            data_sample (SegDataSample, optional): The sample. None draws the image only.
            draw_gt (bool): Draw the ground truth. Defaults to True.
            draw_pred (bool): Draw the prediction. Defaults to True.
            show (bool): Show the picture in a window. Defaults to False.
            wait_time (float): Seconds to show it. Defaults to 0.
            out_file (str, optional): Write the picture here instead of to the backends.
            step (int): Global step of the backends. Defaults to 0.
            with_labels (bool): Unused (no class names are written). Defaults to True.
        """
        if data_sample is None:
            data_sample = SegDataSample()
        drawn = self.draw_sample(image, data_sample, draw_gt, draw_pred)
        meta = data_sample.metainfo
        name = osp.splitext(name)[0] + ''.join(
            f'_{key.split("_")[0]}{meta[key]}' for key in ('ref_id', 'sent_id') if key in meta)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
