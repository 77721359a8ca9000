"""Visualisation of referring segmentation (``ReferSegLocalVisualizer`` in mmseg's VISUALIZERS)."""
from .drawing import foreground, overlay_mask, stack_with_caption, text_bar, upscale
from .refer_visualizer import ReferSegLocalVisualizer, mask_iou

__all__ = [
    'ReferSegLocalVisualizer', 'mask_iou', 'foreground', 'overlay_mask', 'stack_with_caption',
    'text_bar', 'upscale'
]
