"""Bad inputs on the image path: any common picture becomes a uint8 (28, 28) input, anything
else a ValueError that says why (explorer.imageio.to_model_input, re-exported by ui.common)."""

from __future__ import annotations

import io
import struct
import tracemalloc
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from explorer.imageio import MAX_PIXELS, to_model_input
from ui.common import to_model_input as ui_to_model_input

SETTINGS = settings(deadline=None, max_examples=60)
MODES = ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
LOSSLESS = ("PNG", "BMP", "TIFF")
WHITE, BLACK, CLEAR = (255, 255, 255, 255), (0, 0, 0, 255), (0, 0, 0, 0)


def outcome(image, dataset: str = "fashion-mnist") -> np.ndarray | None:
    """The model input, or None after a ValueError with a message; anything else fails."""
    try:
        x = to_model_input(image, dataset)
    except ValueError as e:
        assert str(e).strip()
        return None
    assert isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.shape == (28, 28)
    return x


def refused(image, fragment: str) -> str:
    """The message of the ValueError `image` must raise; it must contain `fragment`."""
    with pytest.raises(ValueError) as info:
        to_model_input(image)
    assert fragment in str(info.value), str(info.value)
    return str(info.value)


def dark_bordered(seed: int = 0) -> np.ndarray:
    """A random uint8 (28, 28) image whose border is black (so it is never inverted)."""
    x = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    x[0], x[-1], x[:, 0], x[:, -1] = 0, 0, 0, 0
    return x


# ---------------------------------------------------------------- (a) property: files and arrays

@dataclass(frozen=True)
class Picture:
    """A picture file to write: mode, size, format, content and optional damage."""
    mode: str
    width: int
    height: int
    fmt: str
    background: tuple[int, int, int, int]
    shapes: tuple = ()             # (x0, y0, x1, y1, rgba) with coordinates as fractions
    noise: bool = False
    animated: bool = False
    damage: tuple | None = None    # ("truncate", fraction) or ("flip", fraction, byte)

    def rgba(self) -> np.ndarray:
        a = np.empty((self.height, self.width, 4), np.uint8)
        a[:] = self.background
        for x0, y0, x1, y1, colour in self.shapes:
            xs = sorted((int(x0 * self.width), int(x1 * self.width)))
            ys = sorted((int(y0 * self.height), int(y1 * self.height)))
            a[ys[0]:ys[1] + 1, xs[0]:xs[1] + 1] = colour
        if self.noise:
            rng = np.random.default_rng(self.width * 7919 + self.height)
            a[..., :3] = rng.integers(0, 256, a[..., :3].shape, dtype=np.uint8)
        return a

    def image(self, rgba: np.ndarray) -> Image.Image:
        im = Image.fromarray(rgba, "RGBA")
        grey = np.asarray(im.convert("L"))
        if self.mode == "I;16":
            return Image.fromarray(grey.astype(np.uint16) * 257)
        if self.mode == "I" and self.fmt == "PNG":     # PNG stores I as I;16 (Pillow 13)
            return Image.fromarray(grey.astype(np.int32) * 200).convert("I;16")
        if self.mode == "I":
            return Image.fromarray(grey.astype(np.int32) * 1000 - 5000)
        if self.mode == "F":
            return Image.fromarray(grey.astype(np.float32) / 255 - 0.5)
        if self.mode == "P+transparency":
            p = im.convert("RGB").convert("P")
            p.info["transparency"] = p.getpixel((0, 0))   # the corner's colour: transparent
            return p
        return im.convert(self.mode)

    def write(self, path) -> None:
        rgba = self.rgba()
        im = self.image(rgba)
        buffer = io.BytesIO()
        try:
            if self.animated and self.fmt in ("GIF", "WEBP"):
                second = self.image(255 - rgba)
                im.save(buffer, self.fmt, save_all=True, append_images=[second], duration=100)
            else:
                im.save(buffer, self.fmt)
        except (OSError, ValueError, KeyError, TypeError):  # a mode the format cannot hold
            buffer = io.BytesIO()
            im.convert("RGB").save(buffer, self.fmt)
        data = bytearray(buffer.getvalue())
        if self.damage and self.damage[0] == "truncate":
            data = data[:int(len(data) * self.damage[1])]
        elif self.damage:
            data[min(len(data) - 1, int(len(data) * self.damage[1]))] = self.damage[2]
        path.write_bytes(bytes(data))


colours = st.tuples(*[st.integers(0, 255)] * 4)
fractions = st.floats(0, 1)
pictures = st.builds(
    Picture,
    mode=st.sampled_from(MODES),
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    fmt=st.sampled_from(sorted(FORMATS)),
    background=st.one_of(st.just(WHITE), st.just(BLACK), st.just(CLEAR), colours),
    shapes=st.lists(st.tuples(fractions, fractions, fractions, fractions, colours),
                    min_size=1, max_size=3).map(tuple),
    noise=st.booleans(),
    animated=st.booleans(),
    damage=st.one_of(st.none(), st.none(), st.tuples(st.just("truncate"), fractions),
                     st.tuples(st.just("flip"), fractions, st.integers(0, 255))),
)
BIG = [Picture("RGB", 3000, 2000, "JPEG", WHITE, ((0.3, 0.3, 0.6, 0.8, BLACK),)),
       Picture("P", 1500, 1500, "GIF", BLACK, ((0.1, 0.1, 0.2, 0.9, WHITE),)),
       Picture("I;16", 1100, 2300, "PNG", (20, 20, 20, 255), ((0.5, 0.5, 0.6, 0.6, WHITE),)),
       Picture("RGBA", 2000, 1, "WEBP", CLEAR, ((0.2, 0, 0.3, 1, BLACK),)),
       Picture("1", 1, 4000, "TIFF", WHITE, ((0, 0.5, 1, 0.7, BLACK),))]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("pictures")


@pytest.mark.filterwarnings("ignore::UserWarning")   # PIL's notes on the files we damaged
@SETTINGS
@given(picture=pictures, dataset=st.sampled_from(["mnist", "fashion-mnist"]))
@example(Picture("L", 1, 1, "PNG", (0, 0, 0, 255)), "mnist")
@example(BIG[0], "mnist")
@example(BIG[1], "fashion-mnist")
@example(BIG[2], "mnist")
@example(BIG[3], "fashion-mnist")
@example(BIG[4], "mnist")
def test_any_picture_file_becomes_an_input_or_a_value_error(workdir, picture, dataset):
    path = workdir / f"picture.{FORMATS[picture.fmt]}"
    picture.write(path)
    x = outcome(str(path), dataset)
    if picture.damage is None and picture.mode in ("L", "RGB") and picture.fmt in LOSSLESS:
        with Image.open(path) as written:                # clear contrast is never "blank"
            grey = np.asarray(written.convert("L"))
        assert x is not None or np.ptp(grey) < 128


dtypes = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_, np.int64,
                          np.dtype(">u2")])
array_shapes = st.tuples(st.integers(1, 60), st.integers(1, 60),
                         st.sampled_from([(), (1,), (3,), (4,)])).map(lambda t: t[:2] + t[2])


@SETTINGS
@given(array=dtypes.flatmap(lambda d: arrays(d, array_shapes)), as_drawing=st.booleans())
def test_any_array_or_drawing_becomes_an_input_or_a_value_error(array, as_drawing):
    outcome({"background": None, "layers": [], "composite": array} if as_drawing else array)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_as_a_pil_image(mode):
    picture = Picture(mode, 90, 60, "PNG", WHITE, ((0.4, 0.2, 0.6, 0.8, BLACK),))
    x = to_model_input(picture.image(picture.rgba()), "mnist")
    assert x[0].max() == 0 and x[14, 14] > 150        # a white bar on black, in the middle


# ---------------------------------------------------------------- (b) every refusal, by example

def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no pixel data behind it."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = data[12:16] + struct.pack(">II", width, height) + data[24:29]
    data[16:24] = ihdr[4:12]
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_files_that_are_not_images(tmp_path):
    (tmp_path / "notes.txt").write_text("a shopping list, not a picture\n")
    refused(str(tmp_path / "notes.txt"), "as an image")
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(5000))
    refused(str(tmp_path / "noise.png"), "as an image")
    (tmp_path / "empty.png").write_bytes(b"")
    refused(str(tmp_path / "empty.png"), "empty (0 bytes)")
    refused(str(tmp_path / "missing.png"), "not found")
    refused(tmp_path / "missing.png", "not found")
    (tmp_path / "folder.png").mkdir()
    refused(str(tmp_path / "folder.png"), "is a folder")
    refused("", "no image given")
    refused("/dev/null", "not a regular file")


def test_damaged_and_truncated_files(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(dark_bordered()).resize((200, 200)).save(buffer, "PNG")
    data = buffer.getvalue()
    (tmp_path / "half.png").write_bytes(data[:len(data) // 2])
    refused(str(tmp_path / "half.png"), "damaged or truncated")
    (tmp_path / "head.png").write_bytes(data[:40])
    assert "as an image" in refused(str(tmp_path / "head.png"), "as an image")
    corrupt = bytearray(data)
    corrupt[60:80] = bytes(20)                          # zeros inside the compressed pixels
    (tmp_path / "corrupt.png").write_bytes(bytes(corrupt))
    refused(str(tmp_path / "corrupt.png"), "as an image")


@pytest.mark.parametrize("side", [8001, 10_000, 100_000])
def test_decompression_bombs_are_refused_from_the_header(tmp_path, side):
    """8001^2 is just over our limit, 10000^2 makes PIL warn and 100000^2 makes it raise; none
    is decoded (the pixel data is missing: decoding would say 'damaged or truncated')."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        refused(str(path), "too large")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        refused(str(path), "too large")
    if side < 100_000:                                  # a lazily opened PIL image: same check
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as lazy:
                refused(lazy, "too large")


def test_the_limit_is_8000_by_8000():
    assert MAX_PIXELS == 8000 * 8000
    refused(np.broadcast_to(np.uint8(0), (8001, 8000)), "too large")   # a view: no memory
    refused(np.broadcast_to(np.uint8(0), (1, 64_000_001)), "too large")


def test_empty_and_blank_drawings():
    refused({"background": None, "layers": [], "composite": None}, "drawing is empty")
    refused({"layers": []}, "drawing is empty")
    white = np.full((280, 280, 4), 255, np.uint8)              # untouched white canvas
    refused({"background": None, "layers": [], "composite": white}, "blank")
    clear = np.zeros((280, 280, 4), np.uint8)                  # untouched transparent canvas
    refused({"background": None, "layers": [], "composite": clear}, "blank")
    refused(np.full((50, 70, 3), 100, np.uint8), "blank")      # one grey, not model-sized
    refused(np.full((56, 56), 3, np.uint8), "blank")           # nearly black: nothing stands out
    refused(np.full((1, 1), 0.5), "blank")
    assert np.array_equal(to_model_input(np.full((28, 28), 255, np.uint8)), np.zeros((28, 28)))


@pytest.mark.parametrize("shape", [(0,), (0, 0), (0, 5), (5, 0, 3), (3, 3, 0)])
def test_zero_sized_arrays(shape):
    refused(np.zeros(shape, np.uint8), "empty")


@pytest.mark.parametrize("shape", [(5,), (2, 5, 5, 3), (5, 5, 2), (5, 5, 5), (1, 28, 28, 1)])
def test_arrays_of_the_wrong_shape(shape):
    message = refused(np.zeros(shape, np.uint8), "must be (H, W) or (H, W, C)")
    assert str(shape) in message


@pytest.mark.parametrize("dtype", [np.complex64, object, "U3", "datetime64[s]"])
def test_arrays_that_do_not_hold_numbers(dtype):
    refused(np.zeros((28, 28), dtype), "must hold numbers")


@pytest.mark.parametrize("value", [None, 3, 2.5, b"\x89PNG", [[0, 255], [255, 0]],
                                   {"composite": {}}, object()])
def test_other_python_types(value):
    with pytest.raises(ValueError, match="cannot read an image from a|no image given"):
        to_model_input(value)


def test_a_closed_pil_image():
    image = Image.new("L", (40, 40))
    image.close()
    refused(image, "could not read the image")


# ---------------------------------------------------------------- (c) closed forms

def test_model_sized_images_and_exact_upscales_come_back_unchanged(tmp_path):
    x = dark_bordered(1)
    assert ui_to_model_input is to_model_input
    assert np.array_equal(to_model_input(x), x)
    ten = np.kron(x, np.ones((10, 10), np.uint8))                 # nearest neighbour x10
    assert np.array_equal(to_model_input(ten), x)
    assert np.array_equal(to_model_input(ten[..., None].repeat(3, 2)), x)
    Image.fromarray(ten).save(tmp_path / "ten.png")
    assert np.array_equal(to_model_input(str(tmp_path / "ten.png")), x)
    huge = np.kron(x, np.ones((100, 100), np.uint8))              # 2800 px: past the box filter
    Image.fromarray(huge).save(tmp_path / "huge.png")
    assert np.array_equal(to_model_input(str(tmp_path / "huge.png")), x)
    assert np.array_equal(to_model_input(x / 255.0), x)           # floats in [0, 1]
    assert np.array_equal(to_model_input(x.astype(np.float32)), x)  # floats in 0..255
    sixteen = x.astype(np.uint16) * 257                           # 16 bits, full range
    sixteen[1, 1], sixteen[2, 2] = 0, 65535
    expected = x.copy()
    expected[1, 1], expected[2, 2] = 0, 255
    assert np.array_equal(to_model_input(sixteen), expected)
    Image.fromarray(sixteen).save(tmp_path / "sixteen.png")
    assert np.array_equal(to_model_input(str(tmp_path / "sixteen.png")), expected)


def test_a_black_on_white_drawing_comes_back_white_on_black():
    x = dark_bordered(2)
    drawing = 255 - np.kron(x, np.ones((10, 10), np.uint8))      # black ink on a white canvas
    rgba = np.dstack([drawing] * 3 + [np.full_like(drawing, 255)])
    assert np.array_equal(to_model_input({"composite": rgba, "layers": []}), x)
    ink = np.zeros((280, 280, 4), np.uint8)                      # black strokes on transparency
    ink[60:220, 130:150, 3] = 255
    y = to_model_input({"composite": ink}, "mnist")
    assert y[0].max() == 0 and y[14, 14] > 200


@pytest.mark.parametrize("fmt, options", [("GIF", {}), ("WEBP", {"lossless": True})])
def test_an_animation_gives_its_first_frame(tmp_path, fmt, options):
    first = np.full((60, 60), 255, np.uint8)
    first[10:50, 25:35] = 0                                      # a black bar on white
    frames = [Image.fromarray(first).convert("RGB"), Image.fromarray(255 - first).convert("RGB")]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, **options)
    with Image.open(path) as written:
        assert getattr(written, "n_frames", 1) == 2
    assert np.array_equal(to_model_input(str(path)), to_model_input(first))


def test_nan_and_inf_in_float_arrays():
    a = np.zeros((40, 40))
    a[10:30, 15:25] = 1.0
    a[0, 0], a[1, 1], a[2, 2] = np.nan, np.inf, -np.inf
    x = to_model_input(a, "mnist")
    assert x[14, 14] > 200
    refused(np.full((40, 40), np.nan), "blank")
    assert to_model_input(np.full((28, 28), np.nan)).max() == 0


# ---------------------------------------------------------------- (d) a very large picture

@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """An 8000x8000 PNG (64 MP, the limit): black, with a white square in the middle."""
    a = np.zeros((8000, 8000), np.uint8)
    a[3000:5000, 2000:4000] = 255
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.fromarray(a).save(path)
    return str(path)


def test_an_8000_by_8000_png_converts_without_full_size_arrays(huge_png):
    tracemalloc.start()
    try:
        x = to_model_input(huge_png, "mnist")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert x.shape == (28, 28) and x.dtype == np.uint8
    assert x[0].max() == 0 and x[14, 14] == 255
    rows, cols = np.flatnonzero(x.max(1) > 100), np.flatnonzero(x.max(0) > 100)
    assert 18 <= len(rows) <= 21 and 18 <= len(cols) <= 21          # MNIST's 20x20 box
    assert peak < 8000 * 8000                                          # numpy never held 64 MB
