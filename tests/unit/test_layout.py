"""Layout thumbnails: real GDS files written with gdstk, rendered, and checked pixel by pixel."""

from __future__ import annotations

import io
import time

import gdstk
import pytest
from PIL import Image

from portal.results.thumbnail import (
    BACKGROUND,
    INK,
    INSTANCE_COLOUR,
    LAYER_OPACITY,
    LayoutError,
    layer_colour,
    render_gds_png,
)

# With size (216, 236) a 100 x 100 um layout fills the 200 x 200 px drawing area exactly
# (8 px margin, 20 px footer): pixel = (8 + 2x, 208 - 2y).
SIZE = (216, 236)


def px(x: float, y: float) -> tuple[int, int]:
    return round(8 + 2 * x), round(208 - 2 * y)


def over(below: tuple[float, ...], colour: tuple[int, int, int]) -> tuple[float, ...]:
    return tuple(b * (1 - LAYER_OPACITY) + c * LAYER_OPACITY for b, c in zip(below, colour))


def close(pixel: tuple[int, ...], expected: tuple[float, ...]) -> bool:
    return all(abs(p - e) <= 1 for p, e in zip(pixel, expected))


def open_png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


@pytest.fixture
def two_layer_gds(tmp_path):
    lib = gdstk.Library()
    top = lib.new_cell("TOP")
    top.add(gdstk.rectangle((0, 0), (100, 50), layer=1))  # bottom half
    top.add(gdstk.rectangle((60, 60), (100, 100), layer=2, datatype=20))  # top right
    top.add(gdstk.rectangle((0, 40), (20, 100), layer=2))  # overlaps layer 1 at y 40..50
    path = tmp_path / "two_layers.gds"
    lib.write_gds(str(path))
    return path


def test_png_has_the_requested_size(two_layer_gds):
    image = open_png(render_gds_png(two_layer_gds, size=SIZE))
    assert image.size == SIZE
    assert open_png(render_gds_png(two_layer_gds)).size == (640, 640)


def test_rectangles_have_their_layer_colour_at_known_positions(two_layer_gds):
    image = open_png(render_gds_png(two_layer_gds, size=SIZE))
    c1, c2 = layer_colour(1), layer_colour(2)
    assert c1 != c2
    layer1 = over(BACKGROUND, c1)
    layer2 = over(BACKGROUND, c2)
    # y is flipped: layer 1 (layout y 0..50) is in the lower half of the picture.
    assert close(image.getpixel(px(50, 25)), layer1)
    assert close(image.getpixel(px(80, 80)), layer2)
    assert close(image.getpixel(px(10, 70)), layer2)
    # Where both layers are, layer 2 is painted over layer 1.
    assert close(image.getpixel(px(10, 45)), over(layer1, c2))
    # Empty layout area and the margin stay background; the frame is drawn.
    assert image.getpixel(px(40, 80)) == BACKGROUND
    assert image.getpixel((4, 100)) == BACKGROUND
    assert image.getpixel((0, 0)) == INK
    assert image.getpixel((SIZE[0] - 1, SIZE[1] - 1)) == INK


def test_layout_is_centred_when_aspect_ratios_differ(tmp_path):
    lib = gdstk.Library()
    top = lib.new_cell("WIDE")
    top.add(gdstk.rectangle((0, 0), (200, 50), layer=3))
    path = tmp_path / "wide.gds"
    lib.write_gds(str(path))
    image = open_png(render_gds_png(path, size=SIZE))
    # scale 1 px/um: 200 x 50 px, centred vertically in the 200 px drawing area (rows 83..133).
    colour = over(BACKGROUND, layer_colour(3))
    assert close(image.getpixel((108, 108)), colour)
    assert image.getpixel((108, 60)) == BACKGROUND
    assert image.getpixel((108, 150)) == BACKGROUND


def test_paths_triangles_and_sub_pixel_shapes_are_drawn(tmp_path):
    lib = gdstk.Library()
    top = lib.new_cell("MIX")
    top.add(gdstk.rectangle((0, 0), (100, 100), layer=1))  # painted first
    top.add(gdstk.Polygon([(0, 0), (40, 0), (0, 40)], layer=4))  # triangle, lower left
    top.add(gdstk.FlexPath([(60, 10), (60, 90)], 4, layer=5))  # vertical wire at x = 60
    top.add(gdstk.rectangle((80.1, 80.1), (80.2, 80.2), layer=6))  # 0.2 px: still visible
    path = tmp_path / "mix.gds"
    lib.write_gds(str(path))
    image = open_png(render_gds_png(path, size=SIZE))
    base = over(BACKGROUND, layer_colour(1))
    assert close(image.getpixel(px(10, 10)), over(base, layer_colour(4)))
    assert close(image.getpixel(px(35, 35)), base)  # outside the triangle's hypotenuse
    assert close(image.getpixel(px(60, 50)), over(base, layer_colour(5)))
    assert close(image.getpixel(px(56, 50)), base)
    stamp = image.getpixel((168, 47))  # the pixel holding x 168.2..168.4, y 47.6..47.8
    assert close(stamp, over(base, layer_colour(6))), stamp


def test_hierarchy_and_arrays_are_flattened(tmp_path):
    lib = gdstk.Library()
    leaf = lib.new_cell("LEAF")
    leaf.add(gdstk.rectangle((0, 0), (10, 10), layer=7))
    top = lib.new_cell("TOP")
    top.add(gdstk.Reference(leaf, (0, 0), columns=5, rows=5, spacing=(20, 20)))
    top.add(gdstk.rectangle((95, 95), (100, 100), layer=8))  # makes the box 100 x 100
    path = tmp_path / "array.gds"
    lib.write_gds(str(path))
    image = open_png(render_gds_png(path, size=SIZE))
    colour = over(BACKGROUND, layer_colour(7))
    for i in range(5):
        for j in range(5):
            assert close(image.getpixel(px(20 * i + 5, 20 * j + 5)), colour)
    assert image.getpixel(px(15, 15)) == BACKGROUND


def test_too_many_polygons_draws_instance_boxes(tmp_path):
    lib = gdstk.Library()
    leaf = lib.new_cell("CELL")
    for k in range(5):
        leaf.add(gdstk.rectangle((2 * k, 0), (2 * k + 1, 10), layer=7))
    top = lib.new_cell("TOP")
    top.add(gdstk.Reference(leaf, (0, 0), columns=10, rows=10, spacing=(10, 10)))
    top.add(gdstk.rectangle((0, 45), (100, 55), layer=8))  # a top-level strap
    path = tmp_path / "big.gds"
    lib.write_gds(str(path))
    full = open_png(render_gds_png(path, size=SIZE))
    boxed = open_png(render_gds_png(path, size=SIZE, max_polygons=300))  # 501 when flattened
    # Flattened: the leaf's stripes alternate; boxed: the whole instance is one grey box.
    assert close(full.getpixel(px(0.5, 5)), over(BACKGROUND, layer_colour(7)))
    assert close(full.getpixel(px(1.5, 5)), BACKGROUND)
    grey = over(BACKGROUND, INSTANCE_COLOUR)
    assert close(boxed.getpixel(px(0.5, 5)), grey)
    assert close(boxed.getpixel(px(1.5, 5)), grey)
    assert close(boxed.getpixel(px(50, 50)), over(grey, layer_colour(8)))


def test_rendering_a_typical_design_is_fast(tmp_path):
    lib = gdstk.Library()
    std = lib.new_cell("STD")
    for k in range(20):
        std.add(gdstk.rectangle((k * 0.12, 0), (k * 0.12 + 0.06, 2.72), layer=66 + k % 6))
    std.add(gdstk.Polygon([(0, 0), (1, 0.5), (0, 1)], layer=66))
    top = lib.new_cell("chip")
    top.add(gdstk.Reference(std, (0, 0), columns=100, rows=80, spacing=(2.6, 2.72)))
    for k in range(40):
        top.add(gdstk.rectangle((k * 6.5, 0), (k * 6.5 + 1.6, 217.6), layer=71))
    path = tmp_path / "chip.gds"
    lib.write_gds(str(path))
    start = time.perf_counter()
    image = open_png(render_gds_png(path))  # 168,040 polygons, all flattened
    assert time.perf_counter() - start < 10
    assert image.size == (640, 640)
    assert image.getpixel((320, 320)) != BACKGROUND


def test_missing_file(tmp_path):
    with pytest.raises(LayoutError, match="not found"):
        render_gds_png(tmp_path / "nope.gds")


@pytest.mark.parametrize("content", [b"", b"this is not a GDSII stream", b"\x00\x06\x00\x02"])
def test_invalid_file(tmp_path, content):
    path = tmp_path / "bad.gds"
    path.write_bytes(content)
    with pytest.raises(LayoutError, match="not a readable GDSII file"):
        render_gds_png(path)


def test_truncated_file(tmp_path, two_layer_gds):
    path = tmp_path / "cut.gds"
    path.write_bytes(two_layer_gds.read_bytes()[:200])
    with pytest.raises(LayoutError):
        render_gds_png(path)


def test_library_without_geometry(tmp_path):
    lib = gdstk.Library()
    lib.new_cell("EMPTY")
    path = tmp_path / "empty.gds"
    lib.write_gds(str(path))
    with pytest.raises(LayoutError, match="no geometry"):
        render_gds_png(path)
    lib = gdstk.Library()
    path = tmp_path / "nocells.gds"
    lib.write_gds(str(path))
    with pytest.raises(LayoutError, match="no cells"):
        render_gds_png(path)
