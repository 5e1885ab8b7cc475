"""Images in and out of the app: any picture -> the 28x28 white-on-black input; upscaling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ui.common import compose, to_model_input, upscale


def bar(mode: str, size=(60, 90)) -> Image.Image:
    """A dark vertical bar on a light background (or on transparency), in PIL mode `mode`."""
    w, h = size
    a = np.full((h, w), 255, np.uint8)
    a[h // 4: 3 * h // 4, w // 2 - 4: w // 2 + 4] = 0
    if mode == "RGBA":                                   # black bar on a transparent canvas
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = 255 - a
        return Image.fromarray(rgba, "RGBA")
    if mode == "I;16":
        return Image.fromarray(a.astype(np.uint16) * 257)                 # mode I;16
    image = Image.fromarray(a, "L")
    return image.convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "1"])
def test_any_mode_becomes_a_white_bar_on_black(mode, tmp_path):
    path = tmp_path / "bar.png"
    bar(mode).save(path)
    x = to_model_input(str(path), "mnist")
    assert x.shape == (28, 28) and x.dtype == np.uint8
    assert x[0].max() == 0 and x[:, 0].max() == 0            # background black
    assert x[14, 13:15].min() > 200                          # the bar, white, in the middle
    rows = np.flatnonzero(x.max(1) > 100)
    assert rows[-1] - rows[0] + 1 <= 20                      # fitted into MNIST's 20x20 box


def test_fashion_fills_the_frame_and_size_does_not_matter():
    for size in ((30, 45), (600, 900)):
        x = to_model_input(np.asarray(bar("L", size)), "fashion-mnist")
        rows = np.flatnonzero(x.max(1) > 100)
        assert rows[-1] - rows[0] + 1 >= 26


def test_a_model_sized_image_or_its_exact_upscale_is_taken_as_it_is():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    x[0], x[-1], x[:, 0], x[:, -1] = 0, 0, 0, 0              # a dark border: not inverted
    assert np.array_equal(to_model_input(x), x)
    assert np.array_equal(to_model_input(upscale(x, 7)), x)
    assert np.array_equal(to_model_input(Image.fromarray(upscale(x, 10))), x)


def test_sketchpad_value_and_errors(tmp_path):
    canvas = np.full((280, 280, 4), 255, np.uint8)
    canvas[100:180, 130:150, :3] = 0
    x = to_model_input({"background": None, "layers": [], "composite": canvas}, "mnist")
    assert x[14, 14] > 200 and x[0, 0] == 0
    with pytest.raises(ValueError, match="drawing is empty"):
        to_model_input({"background": None, "layers": [], "composite": None})
    with pytest.raises(ValueError, match="blank"):
        to_model_input(np.full((50, 50), 255, np.uint8))
    (tmp_path / "x.png").write_text("no")
    with pytest.raises(ValueError, match="as an image"):
        to_model_input(str(tmp_path / "x.png"))


def test_upscale_and_compose_keep_pixels_crisp():
    x = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    big = upscale(x, 5)
    assert big.shape == (140, 140) and np.array_equal(big[::5, ::5], x)
    grid = compose([[x, x, x], [x, x, x]], 4, ["a", "b", "c"], ["r1", "r2"])
    assert grid.dtype == np.uint8 and grid.shape[0] > 2 * 112 and grid.shape[1] > 3 * 112
    with pytest.raises(ValueError):
        compose([[x, x], [x]])


@pytest.mark.parametrize("pixel, font_size, rows", [(4, 16, ["x_t", "x0_hat"]), (8, 20, None),
                                                    (6, 22, ["one", "two"])])
def test_compose_labels_from_the_cache_are_the_glyphs_drawn(pixel, font_size, rows):
    """compose pastes labels rendered once (a cache) where a label sits on whole pixels: the
    picture must equal the same grid with every label drawn by ImageDraw.text."""
    from PIL import ImageDraw

    from ui import common

    rng = np.random.default_rng(0)
    frames = [[rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(4)]
              for _ in range(len(rows) if rows else 1)]
    labels = ["t=1000", "x_t, t = 37", "eps_hat / 2", "w = 0.33"]
    ours = compose(frames, pixel, labels, rows, font_size=font_size)
    ours_again = compose(frames, pixel, labels, rows, font_size=font_size)      # from the cache
    font, cell, gap = common._font(font_size), 28 * pixel, common.frame_gap(pixel)
    ref = Image.new("L", ours.shape[::-1], common.BACKGROUND)
    draw = ImageDraw.Draw(ref)
    left = (int(np.ceil(max(draw.textlength(t, font=font) for t in rows))) + 2 * gap
            if rows else 0)
    top = font_size + 2 * gap
    for i, row in enumerate(frames):
        y = top + gap + i * (cell + gap)
        if rows:
            draw.text((gap, y + cell / 2), rows[i], fill=common.TEXT, font=font, anchor="lm")
        for j, image in enumerate(row):
            ref.paste(Image.fromarray(upscale(image, pixel)), (left + gap + j * (cell + gap), y))
    for j, label in enumerate(labels):
        draw.text((left + gap + j * (cell + gap) + cell / 2, gap + font_size / 2), label,
                  fill=common.TEXT, font=font, anchor="mm")
    assert np.array_equal(ours, np.asarray(ref)) and np.array_equal(ours_again, ours)
