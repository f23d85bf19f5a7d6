"""Server-side layout thumbnails: a GDS file's top cell drawn as a PNG (gdstk + Pillow).

The picture is the flattened top cell scaled to fit, y pointing up as in the layout, on a light
background with a thin border and a footer holding a scale bar and the cell's size. Layers are
painted in ascending layer-number order, each in a fixed colour (:func:`layer_colour`, so a
layer looks the same in every thumbnail) at :data:`LAYER_OPACITY` over what is below, which
keeps lower layers visible through the metal stack.

Speed: gdstk flattens in C++; polygons smaller than about a pixel (standard-cell internals on a
large die) are stamped into the layer mask with numpy instead of being drawn one by one. When
the flattened cell has more than ``max_polygons`` polygons only the largest ones are drawn.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import gdstk
import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["LayoutError", "render_gds_png", "layer_colour", "BACKGROUND", "LAYER_OPACITY"]

#: Canvas colour (RGB).
BACKGROUND: tuple[int, int, int] = (250, 250, 247)
#: Border and scale-bar colour.
INK: tuple[int, int, int] = (60, 60, 60)
#: How much of a layer's colour covers what is below it (0..1).
LAYER_OPACITY = 0.6
#: Colour of instance bounding boxes (drawn when a layout is too big to flatten).
INSTANCE_COLOUR: tuple[int, int, int] = (170, 170, 170)
#: Fixed palette; a layer takes ``PALETTE[layer % len(PALETTE)]``.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (0, 70, 140),
    (170, 110, 0),
)
_MARGIN = 8
_FOOTER = 20


class LayoutError(Exception):
    """The GDS file is missing, unreadable or has nothing to draw."""


def layer_colour(layer: int) -> tuple[int, int, int]:
    """The RGB colour of GDS layer ``layer`` (whatever its datatype)."""
    return PALETTE[layer % len(PALETTE)]


def render_gds_png(
    gds_path: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (640, 640),
    max_polygons: int = 200_000,
) -> bytes:
    """Render the top cell of the GDS file ``gds_path`` as a PNG of ``size`` (width, height).

    When the fully flattened cell would hold more than ``max_polygons`` polygons, only the top
    cell's own shapes are drawn (the largest ``max_polygons`` of them) and every placed
    instance is drawn as its grey bounding box. Raises :class:`LayoutError` when the file is
    missing or not a readable GDS, or when it has no cell with geometry.
    """
    width, height = size
    if width < 4 * _MARGIN or height < 4 * _MARGIN + _FOOTER:
        raise ValueError(f"thumbnail size {size} is too small")
    path = Path(gds_path)
    library = _read(path)
    cell = _top_cell(library, path)
    box = cell.bounding_box()
    if box is None:
        raise LayoutError(f"{path}: top cell {cell.name!r} has no geometry")
    instance_boxes = np.empty((0, 4))
    if _flat_count(cell, {}) <= max_polygons:
        polygons = cell.get_polygons(apply_repetitions=True, include_paths=True)
    else:
        polygons = cell.get_polygons(apply_repetitions=True, include_paths=True, depth=0)
        instance_boxes = _instance_boxes(cell)
    if len(polygons) > max_polygons:
        polygons = sorted(polygons, key=lambda p: p.area(), reverse=True)[:max_polygons]

    (x0, y0), (x1, y1) = box
    inner_w, inner_h = width - 2 * _MARGIN, height - 2 * _MARGIN - _FOOTER
    scale = min(inner_w / max(x1 - x0, 1e-12), inner_h / max(y1 - y0, 1e-12))
    # Centre the drawing; pixel rows grow downwards, the layout's y upwards.
    left = _MARGIN + (inner_w - (x1 - x0) * scale) / 2
    bottom = _MARGIN + inner_h - (inner_h - (y1 - y0) * scale) / 2
    view = _View(scale, left - x0 * scale, bottom + y0 * scale, width, height)

    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = BACKGROUND
    if len(instance_boxes):
        _paint(canvas, _box_mask(view, *view.pixel_boxes(instance_boxes)), INSTANCE_COLOUR)
    for layer, group in _by_layer(polygons):
        _paint(canvas, _layer_mask(group, view), layer_colour(layer))

    image = Image.fromarray(np.rint(canvas).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width - 1, height - 1), outline=INK, width=1)
    um_per_unit = library.unit / 1e-6
    _footer(draw, (width, height), scale / um_per_unit, cell.name, (x1 - x0, y1 - y0), um_per_unit)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class _View:
    """Layout units -> pixel coordinates (x right, y down)."""

    def __init__(self, scale: float, dx: float, dy: float, width: int, height: int) -> None:
        self.scale, self.dx, self.dy, self.width, self.height = scale, dx, dy, width, height

    def pixel_boxes(self, boxes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(xmin, ymin, xmax, ymax) layout boxes -> pixel (left, top, right, bottom) arrays."""
        return (
            boxes[:, 0] * self.scale + self.dx,
            self.dy - boxes[:, 3] * self.scale,
            boxes[:, 2] * self.scale + self.dx,
            self.dy - boxes[:, 1] * self.scale,
        )


def _read(path: Path) -> gdstk.Library:
    if not path.is_file():
        raise LayoutError(f"GDS file not found: {path}")
    try:
        return gdstk.read_gds(str(path))
    except (OSError, RuntimeError, ValueError) as error:
        raise LayoutError(f"{path} is not a readable GDSII file ({error})") from None


def _top_cell(library: gdstk.Library, path: Path) -> gdstk.Cell:
    """The top-level cell with the largest bounding box (several tops are possible)."""
    best, best_area = None, -1.0
    for cell in library.top_level():
        if not isinstance(cell, gdstk.Cell):  # a RawCell cannot be drawn
            continue
        box = cell.bounding_box()
        area = -0.5 if box is None else (box[1][0] - box[0][0]) * (box[1][1] - box[0][1])
        if area > best_area:
            best, best_area = cell, area
    if best is None:
        raise LayoutError(f"{path}: the GDS library has no cells")
    return best


def _repeats(item: gdstk.Reference | gdstk.Polygon | gdstk.FlexPath | gdstk.RobustPath) -> int:
    return item.repetition.size if item.repetition.size else 1


def _flat_count(cell: gdstk.Cell, memo: dict[str, int]) -> int:
    """How many polygons flattening ``cell`` would produce (counted without flattening)."""
    if cell.name not in memo:
        count = sum(_repeats(p) for p in cell.polygons)
        count += sum(_repeats(p) * max(1, p.num_paths) for p in cell.paths)
        for ref in cell.references:
            if isinstance(ref.cell, gdstk.Cell):
                count += _repeats(ref) * _flat_count(ref.cell, memo)
        memo[cell.name] = count
    return memo[cell.name]


def _instance_boxes(cell: gdstk.Cell) -> np.ndarray:
    """Bounding boxes (xmin, ymin, xmax, ymax) of every instance placed in ``cell``."""
    boxes: list[np.ndarray] = []
    for ref in cell.references:
        single = gdstk.Reference(
            ref.cell, ref.origin, ref.rotation, ref.magnification, ref.x_reflection
        )
        box = single.bounding_box()
        if box is None:
            continue
        corners = np.array([box[0][0], box[0][1], box[1][0], box[1][1]])
        offsets = (
            np.asarray(ref.repetition.get_offsets()) if ref.repetition.size else np.zeros((1, 2))
        )
        boxes.append(corners + np.tile(offsets, 2))
    return np.concatenate(boxes) if boxes else np.empty((0, 4))


def _by_layer(polygons: list[gdstk.Polygon]) -> list[tuple[int, list[gdstk.Polygon]]]:
    groups: dict[int, list[gdstk.Polygon]] = {}
    for polygon in polygons:
        groups.setdefault(polygon.layer, []).append(polygon)
    return sorted(groups.items())


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> None:
    covered = mask > 0
    rgb = np.array(colour, dtype=np.float32)
    canvas[covered] = canvas[covered] * (1 - LAYER_OPACITY) + rgb * LAYER_OPACITY


def _box_mask(
    view: _View, left: np.ndarray, top: np.ndarray, right: np.ndarray, bottom: np.ndarray
) -> np.ndarray:
    """Coverage of many pixel-space boxes at once (2-D difference array, then cumulative sums).

    A box covers every pixel it touches, so boxes smaller than a pixel still show.
    """
    w, h = view.width, view.height
    c0 = np.clip(np.floor(left), 0, w).astype(np.int64)
    c1 = np.clip(np.maximum(np.ceil(right), np.floor(left) + 1), 0, w).astype(np.int64)
    r0 = np.clip(np.floor(top), 0, h).astype(np.int64)
    r1 = np.clip(np.maximum(np.ceil(bottom), np.floor(top) + 1), 0, h).astype(np.int64)
    diff = np.zeros((h + 1, w + 1), dtype=np.int32)
    np.add.at(diff, (r0, c0), 1)
    np.add.at(diff, (r0, c1), -1)
    np.add.at(diff, (r1, c0), -1)
    np.add.at(diff, (r1, c1), 1)
    return diff.cumsum(axis=0).cumsum(axis=1)[:h, :w]


def _layer_mask(polygons: list[gdstk.Polygon], view: _View) -> np.ndarray:
    """Coverage mask of one layer: axis-aligned rectangles and sub-pixel polygons in bulk with
    numpy, any other polygon drawn by Pillow."""
    counts = np.fromiter((len(p.points) for p in polygons), dtype=np.int64, count=len(polygons))
    points = np.concatenate([p.points for p in polygons])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    boxes = np.column_stack(
        [
            np.minimum.reduceat(points[:, 0], starts),
            np.minimum.reduceat(points[:, 1], starts),
            np.maximum.reduceat(points[:, 0], starts),
            np.maximum.reduceat(points[:, 1], starts),
        ]
    )
    left, top, right, bottom = view.pixel_boxes(boxes)
    bulk = ((right - left) < 1.5) & ((bottom - top) < 1.5)
    four = np.flatnonzero(counts == 4)
    if len(four):
        quad = points[starts[four][:, None] + np.arange(4)]
        x, y = quad[:, :, 0], quad[:, :, 1]
        vertical_first = (x[:, 0] == x[:, 1]) & (y[:, 1] == y[:, 2]) & (x[:, 2] == x[:, 3])
        vertical_first &= y[:, 3] == y[:, 0]
        horizontal_first = (y[:, 0] == y[:, 1]) & (x[:, 1] == x[:, 2]) & (y[:, 2] == y[:, 3])
        horizontal_first &= x[:, 3] == x[:, 0]
        bulk[four[vertical_first | horizontal_first]] = True
    mask = _box_mask(view, left[bulk], top[bulk], right[bulk], bottom[bulk])
    rest = np.flatnonzero(~bulk)
    if len(rest):
        image = Image.new("L", (view.width, view.height), 0)
        draw = ImageDraw.Draw(image)
        for index in rest:
            xy = points[starts[index] : starts[index] + counts[index]]
            pixels = np.column_stack(
                (xy[:, 0] * view.scale + view.dx, view.dy - xy[:, 1] * view.scale)
            )
            draw.polygon(pixels.ravel().tolist(), fill=255)
        mask = np.maximum(mask, np.asarray(image))
    return mask


def _nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target`` (target > 0)."""
    exponent = math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * 10**exponent <= target:
            return step * 10**exponent
    return 10**exponent


def _format_um(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g} mm"
    return f"{value:g} um"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError, ValueError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _footer(
    draw: ImageDraw.ImageDraw,
    size: tuple[int, int],
    px_per_um: float,
    cell_name: str,
    extent: tuple[float, float],
    um_per_unit: float,
) -> None:
    """Scale bar at the bottom left, cell name and size at the bottom right."""
    width, height = size
    font = _font(11)
    baseline = height - _MARGIN - 4
    bar_um = _nice_length(max(width * 0.25 / px_per_um, 1e-9))
    bar_px = max(1, round(bar_um * px_per_um))
    x = _MARGIN
    draw.line((x, baseline, x + bar_px, baseline), fill=INK, width=2)
    draw.line((x, baseline - 4, x, baseline + 2), fill=INK, width=1)
    draw.line((x + bar_px, baseline - 4, x + bar_px, baseline + 2), fill=INK, width=1)
    text_top = baseline - _FOOTER // 2 + 1
    draw.text((x + bar_px + 6, text_top), _format_um(bar_um), fill=INK, font=font)
    w_um, h_um = extent[0] * um_per_unit, extent[1] * um_per_unit
    label = f"{cell_name}  {w_um:.6g} x {h_um:.6g} um"
    label_x = width - _MARGIN - draw.textlength(label, font=font)
    draw.text((label_x, text_top), label, fill=INK, font=font)
