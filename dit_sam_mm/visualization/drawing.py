"""Drawing of referring-segmentation pictures with NumPy and OpenCV (no matplotlib figure).

Every function takes and returns RGB ``uint8`` images (H, W, 3), the colour order of MMEngine's
visualisers. Masks are (H, W) arrays; a pixel is foreground where the mask equals 1 (so an
``ignore_index`` of 255 in a ground truth is not drawn as object).
"""
import math
import unicodedata
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

Color = Tuple[int, int, int]

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_TEXT_COLOR: Color = (255, 255, 255)
_BAR_COLOR: Color = (32, 32, 32)


def foreground(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: where ``mask`` (bool, 0/1 or 0/1/255 with 255 = ignore) is the object."""
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]  # (1, H, W), the layout of PixelData
    if mask.ndim != 2:
        raise ValueError(f'a mask must be (H, W) or (1, H, W), got shape {mask.shape}')
    return mask == 1 if mask.dtype != bool else mask


def upscale(image: np.ndarray, masks: Sequence[np.ndarray],
            min_size: int) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Enlarge small images (and their masks) by an integer factor so text stays readable.

    Nearest-neighbour resizing keeps tiny synthetic images and mask borders crisp.

    Args:
        image (np.ndarray): RGB image (H, W, 3).
        masks (Sequence[np.ndarray]): (H, W) masks of the image.
        min_size (int): The longer side is enlarged to at least this (if it is shorter).

    Returns:
        Tuple[np.ndarray, List[np.ndarray]]: The image and the masks, enlarged or unchanged.
    """
    factor = math.ceil(min_size / max(image.shape[:2]))
    if factor <= 1:
        return image, list(masks)

    def enlarge(array: np.ndarray) -> np.ndarray:
        return cv2.resize(array, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)

    return enlarge(image), [enlarge(m.astype(np.uint8)).astype(bool) for m in masks]


def overlay_mask(image: np.ndarray, mask: np.ndarray, color: Color,
                 alpha: float = 0.5) -> np.ndarray:
    """Tint the object pixels of ``image`` with ``color`` and outline them.

    Args:
        image (np.ndarray): RGB image (H, W, 3) uint8.
        mask (np.ndarray): (H, W) bool object mask of the same size.
        color (Tuple[int, int, int]): RGB colour of the tint and the outline.
        alpha (float): Opacity of the tint. Defaults to 0.5.

    Returns:
        np.ndarray: A new RGB image; the background is left as it is.
    """
    if mask.shape != image.shape[:2]:
        raise ValueError(f'mask shape {mask.shape} differs from image shape {image.shape[:2]}')
    out = image.copy()
    tint = np.asarray(color, dtype=np.float32)
    out[mask] = (image[mask].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), thickness)
    return out


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only: drop accents, replace other characters by '?'."""
    decomposed = unicodedata.normalize('NFKD', text)
    return ''.join(c if ord(c) < 128 else ('' if unicodedata.combining(c) else '?')
                   for c in decomposed)


def _font_scale(width: int) -> float:
    return float(np.clip(width / 900, 0.4, 0.9))


def _wrap(text: str, max_width: int, scale: float, thickness: int) -> List[str]:
    """Split ``text`` into lines no wider than ``max_width`` pixels (long words stay whole)."""
    lines: List[str] = []
    current = ''
    for word in text.split():
        candidate = f'{current} {word}' if current else word
        if current and cv2.getTextSize(candidate, _FONT, scale, thickness)[0][0] > max_width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return lines + [current] if current else lines


def text_bar(lines: Sequence[str], width: int, scale: Optional[float] = None) -> np.ndarray:
    """A dark RGB strip of the given width holding ``lines`` (each wrapped to fit).

    Args:
        lines (Sequence[str]): Text lines; non-ASCII characters are simplified or replaced.
        width (int): Width of the strip in pixels.
        scale (float, optional): OpenCV font scale; None picks one from ``width``.

    Returns:
        np.ndarray: RGB strip (h, width, 3), h fitting the wrapped lines.
    """
    scale = _font_scale(width) if scale is None else scale
    thickness = 1 if scale < 0.7 else 2
    margin = max(4, round(10 * scale))
    wrapped = [w for line in lines for w in _wrap(_ascii(line), width - 2 * margin, scale,
                                                    thickness)]
    (_, text_height), descent = cv2.getTextSize('Ag', _FONT, scale, thickness)
    line_height = text_height + descent + margin // 2
    bar = np.full((margin + line_height * len(wrapped), width, 3), _BAR_COLOR, dtype=np.uint8)
    for i, line in enumerate(wrapped):
        cv2.putText(bar, line, (margin, margin // 2 + line_height * i + text_height), _FONT,
                    scale, _TEXT_COLOR, thickness, cv2.LINE_AA)
    return bar


def stack_with_caption(panels: Sequence[np.ndarray], titles: Optional[Sequence[str]],
                       caption: Sequence[str]) -> np.ndarray:
    """Put equally tall panels side by side, each under its title, with a caption below.

    Args:
        panels (Sequence[np.ndarray]): RGB images of the same size.
        titles (Sequence[str], optional): One title per panel, or None for no titles.
        caption (Sequence[str]): Lines written under the panels.

    Returns:
        np.ndarray: The RGB picture.
    """
    scale = _font_scale(panels[0].shape[1])
    if titles is not None:
        panels = [np.concatenate([text_bar([title], panel.shape[1], scale), panel])
                  for title, panel in zip(titles, panels)]
    row = np.concatenate(list(panels), axis=1)
    return np.concatenate([row, text_bar(caption, row.shape[1], scale)], axis=0)
