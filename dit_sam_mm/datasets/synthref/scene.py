"""Random scenes of coloured shapes for SynthRef, with their exact masks."""
import math
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
from pycocotools import mask as mask_utils

KINDS = ('circle', 'square', 'triangle')
COLOURS = {
    'red': (215, 45, 40),
    'green': (40, 165, 60),
    'blue': (45, 85, 215),
    'yellow': (230, 195, 35),
}
DOTS_COLOUR = (35, 35, 35)
#: Radius ranges of the two size classes, in units of min(width, height)/64;
#: a big shape has at least twice the area of a small one of its kind.
SIZE_RADII = {'small': (4.5, 5.5), 'big': (8.0, 9.5)}


@dataclass
class SceneObject:
    """One object of a scene: a shape, or the crowd of dots.

    Args:
        kind (str): ``'circle'``, ``'square'``, ``'triangle'`` or ``'dots'``.
        colour (str): Colour name (``'black'`` for dots).
        size (str): ``'small'`` or ``'big'`` (``'small'`` for dots).
        polygons (list): Polygons ``[x1, y1, x2, y2, ...]`` of the object.
        mask (np.ndarray): Its (H, W) uint8 mask, rasterised by pycocotools.
        bbox (tuple): ``(x, y, w, h)`` of the mask.
        area (int): Pixel count of the mask.
    """

    kind: str
    colour: str
    size: str
    polygons: List[List[float]]
    mask: np.ndarray = field(repr=False, default=None)
    bbox: Tuple[float, float, float, float] = (0., 0., 0., 0.)
    area: int = 0

    @property
    def centre(self) -> Tuple[float, float]:
        """Centre of the mask's bounding box (x, y)."""
        x, y, w, h = self.bbox
        return x + w / 2.0, y + h / 2.0

    @property
    def is_shape(self) -> bool:
        """True for circles, squares and triangles (not the dots)."""
        return self.kind in KINDS


def shape_polygon(kind: str, cx: float, cy: float, r: float) -> List[float]:
    """Polygon of a shape of circumradius-like size ``r`` centred on cx, cy."""
    if kind == 'circle':
        angles = [2 * math.pi * i / 24 for i in range(24)]
        points = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
    elif kind == 'square':
        h = 0.85 * r
        points = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h),
                  (cx - h, cy + h)]
    elif kind == 'triangle':
        # Circumradius 1.2 r, centred on the bounding box.
        angles = [-math.pi / 2, math.pi / 6, 5 * math.pi / 6]
        points = [(cx + 1.2 * r * math.cos(a),
                   cy + 0.3 * r + 1.2 * r * math.sin(a)) for a in angles]
    else:
        raise ValueError(f'unknown shape kind {kind!r}')
    return [round(float(v), 2) for point in points for v in point]


def rasterise(polygons: List[List[float]], height: int,
              width: int) -> np.ndarray:
    """Mask of polygons, exactly as pycocotools decodes the annotation."""
    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    return np.ascontiguousarray(mask_utils.decode(rle))


def _finish(obj: SceneObject, height: int, width: int) -> SceneObject:
    obj.mask = rasterise(obj.polygons, height, width)
    rle = mask_utils.encode(np.asfortranarray(obj.mask))
    obj.bbox = tuple(float(v) for v in mask_utils.toBbox(rle))
    obj.area = int(mask_utils.area(rle))
    return obj


def sample_scene(rng: np.random.Generator, width: int, height: int,
                 with_dots: bool) -> List[SceneObject]:
    """Place 2-5 non-overlapping shapes (and maybe a dot cluster).

    Kinds and colours come from small per-image palettes, so that several
    shapes often share a colour or a kind and only their position or size
    tells them apart.
    """
    unit = min(width, height) / 64.0
    kinds = list(rng.choice(KINDS, size=int(rng.integers(1, 3)),
                            replace=False))
    colours = list(rng.choice(list(COLOURS), size=int(rng.integers(1, 4)),
                              replace=False))
    count = int(rng.integers(2, 6))
    placed: List[tuple] = []  # (cx, cy, radius) of everything placed
    objects = []
    wanted = [('dots', 7.0 * unit)] if with_dots else []
    for _ in range(count):
        size = 'small' if rng.random() < 0.5 else 'big'
        low, high = SIZE_RADII[size]
        wanted.append((size, float(rng.uniform(low, high)) * unit))
    for size, radius in wanted:
        # No point of a shape is further than 1.4 radius from its centre.
        reach = 1.4 * radius
        for _attempt in range(100):
            margin = reach + 1.0 * unit
            cx = float(rng.uniform(margin, width - margin))
            cy = float(rng.uniform(margin, height - margin))
            if all(math.hypot(cx - x, cy - y) >= reach + r + 2.5 * unit
                   for x, y, r in placed):
                break
        else:
            continue  # no room left: fewer objects
        placed.append((cx, cy, reach))
        if size == 'dots':
            polygons = []
            for _dot in range(6):
                angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(
                    0, radius - 1.5 * unit)
                polygons.append(
                    shape_polygon('circle', cx + dist * math.cos(angle),
                                  cy + dist * math.sin(angle), 1.4 * unit))
            objects.append(SceneObject('dots', 'black', 'small', polygons))
        else:
            kind = str(rng.choice(kinds))
            colour = str(rng.choice(colours))
            objects.append(
                SceneObject(kind, colour, size,
                            [shape_polygon(kind, cx, cy, radius)]))
    return [_finish(obj, height, width) for obj in objects]


def render(objects: List[SceneObject], rng: np.random.Generator, width: int,
           height: int) -> np.ndarray:
    """Draw the scene on a plain or lightly noisy background (RGB uint8).

    Each object is painted through its mask, so the picture shows exactly the pixels of the
    annotation (drawing the polygons with PIL would add a one-pixel rim at the right and bottom
    that pycocotools' rasterisation leaves out).
    """
    grey = int(rng.integers(195, 240))
    canvas = np.full((height, width, 3), grey, dtype=np.float32)
    if rng.random() < 0.5:
        canvas += rng.normal(0.0, 6.0, size=canvas.shape).astype(np.float32)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    for obj in objects:
        base = DOTS_COLOUR if obj.kind == 'dots' else COLOURS[obj.colour]
        jitter = rng.integers(-12, 13, size=3)
        image[obj.mask.astype(bool)] = np.clip(np.array(base) + jitter, 0, 255)
    return image
