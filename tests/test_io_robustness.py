"""Decoding edge cases (issue 20): every PIL mode, over-size and fuzzed files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from expertcolor import io as ecio
from expertcolor.color import rgb_to_lab
from expertcolor.io import decode_inputs, open_image


def _L(rgb_u8: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(rgb_u8[..., :3].astype(np.float64) / 255).permute(2, 0, 1)
    return rgb_to_lab(t)[0].numpy()


def _decoded_L(img) -> np.ndarray:
    return decode_inputs(img)[0].L[0, 0].double().numpy()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (what fuzzing finds), with a token IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture
def no_limit_left_behind():
    yield
    ecio.set_max_pixels(None)


def test_every_pil_mode_decodes_to_the_right_lightness(rgb_image) -> None:
    """Issue 20, defect 4: an ``I`` image holding 0..255 came out near black and an ``F`` one white."""
    rgb = Image.fromarray(rgb_image)
    gray = rgb.convert("L")
    g8 = np.asarray(gray)
    ref_gray = _L(np.repeat(g8[..., None], 3, axis=2))
    ref_rgb = _L(rgb_image)
    cases = {  # mode: (image, reference L, tolerance in L units)
        "L": (gray, ref_gray, 0.01),
        "LA": (gray.convert("LA"), ref_gray, 0.01),
        "La": (gray.convert("LA").convert("La"), ref_gray, 0.01),  # opaque: premultiplied = plain
        "I": (gray.convert("I"), ref_gray, 0.01),  # 0..255: 8-bit scale
        "I16_in_I": (Image.fromarray(g8.astype(np.int32) * 257, "I"), ref_gray, 0.01),  # > 255: 16-bit scale
        "I;16": (Image.fromarray(g8.astype(np.uint16) * 257), ref_gray, 0.01),
        "I;16B": (Image.frombytes("I;16B", gray.size, (g8.astype(">u2") * 257).tobytes()), ref_gray, 0.01),
        "F": (Image.fromarray(g8.astype(np.float32) / 255, "F"), ref_gray, 0.01),  # [0, 1] as float arrays
        "RGB": (rgb, ref_rgb, 0.01),
        "RGBA": (rgb.convert("RGBA"), ref_rgb, 0.01),
        "RGBX": (rgb.convert("RGBX"), ref_rgb, 0.01),
        "CMYK": (rgb.convert("CMYK"), ref_rgb, 0.01),
        # 8-bit conversions that round: within a few tenths to a couple of L units

        "YCbCr": (rgb.convert("YCbCr"), ref_rgb, 2.5),
        "HSV": (rgb.convert("HSV"), ref_rgb, 2.5),
        "LAB": (rgb.convert("LAB"), ref_rgb, 2.5),
        "P": (gray.convert("P"), ref_gray, 0.01),  # a gray palette is exact
        "PA": (gray.convert("P").convert("PA"), ref_gray, 0.01),
    }
    for name, (img, ref, tol) in cases.items():
        assert img.mode == name.split("_")[0] or name == "I16_in_I", name
        L = _decoded_L(img)
        assert L.shape == ref.shape, name
        assert np.abs(L - ref).max() <= tol, (name, np.abs(L - ref).max())
    # 1-bit: black stays black, white stays white.
    bw = gray.convert("1")
    L = _decoded_L(bw)
    on = np.asarray(bw)
    assert np.allclose(L[on], 100, atol=0.01) and np.allclose(L[~on], 0, atol=0.01)
    # Colour palettes: the palette's own colours.
    pal = rgb.convert("P")
    assert np.abs(_decoded_L(pal) - _L(np.asarray(pal.convert("RGB")))).max() <= 0.01
    # Alpha comes along for LA / PA / RGBA.
    assert decode_inputs(gray.convert("LA"))[0].alpha is not None


def test_float_and_int_pil_images_follow_the_array_range_rules(rgb_image) -> None:
    g8 = np.asarray(Image.fromarray(rgb_image).convert("L"))
    f255 = g8.astype(np.float32)
    # An F image holding 0..255 (e.g. img.convert("F")) is refused, as the same float array is.
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]") as from_array:
        decode_inputs(f255)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]") as from_pil:
        decode_inputs(Image.fromarray(f255, "F"))
    assert "divide 8-bit values by 255" in str(from_pil.value) and "divide 8-bit" in str(from_array.value)
    with pytest.raises(ValueError, match="NaN"):
        decode_inputs(Image.fromarray(np.full((4, 4), np.nan, np.float32), "F"))
    # I images: negative or beyond 16 bits is refused; 0..255 is 8-bit, 256..65535 is 16-bit.
    with pytest.raises(ValueError, match=r"\[0, 65535\]"):
        decode_inputs(Image.fromarray(np.full((4, 4), -5, np.int32), "I"))
    with pytest.raises(ValueError, match=r"\[0, 65535\]"):
        decode_inputs(Image.fromarray(np.full((4, 4), 70000, np.int32), "I"))
    white8 = _decoded_L(Image.fromarray(np.full((4, 4), 255, np.int32), "I"))
    white16 = _decoded_L(Image.fromarray(np.full((4, 4), 65535, np.int32), "I"))
    assert np.allclose(white8, 100, atol=0.01) and np.allclose(white16, 100, atol=0.01)


def test_over_size_photo_is_a_value_error_naming_size_limit_and_option(tmp_path, no_limit_left_behind) -> None:
    """Issue 20, defect 2: Pillow's DecompressionBombError is neither OSError nor ValueError."""
    bomb = tmp_path / "fuzzed.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))  # 10 Gpx claimed by a 70-byte file
    with pytest.raises(ValueError) as e:
        open_image(bomb)
    msg = str(e.value)
    assert "fuzzed.png" in msg and "10000000000 pixels" in msg and str(2 * Image.MAX_IMAGE_PIXELS) in msg
    assert "--max-pixels" in msg and "set_max_pixels" in msg
    with pytest.raises(ValueError, match="10000000000 pixels"):
        decode_inputs(bomb)  # what ExpertColorizer.colorize(path) calls

    small = tmp_path / "small.png"
    Image.new("L", (40, 30), 128).save(small)
    assert ecio.set_max_pixels(1000) is None and ecio.get_max_pixels() == 1000
    with pytest.raises(ValueError, match=r"40x30 = 1200 pixels exceeds the limit of 1000 pixels.*--max-pixels"):
        open_image(small)
    assert ecio.set_max_pixels(1200) == 1000
    assert open_image(small).size == (40, 30)
    ecio.set_max_pixels(None)
    assert ecio.get_max_pixels() is None


def test_max_pixels_zero_lifts_pillows_limit_and_none_restores_it(tmp_path, monkeypatch, no_limit_left_behind) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow's hard error at 200 pixels
    img = tmp_path / "img.png"
    Image.new("L", (30, 20), 50).save(img)
    with pytest.raises(ValueError, match="600 pixels exceeds the limit of 200 pixels"):
        open_image(img)
    ecio.set_max_pixels(0)
    assert Image.MAX_IMAGE_PIXELS is None and open_image(img).size == (30, 20)
    ecio.set_max_pixels(5000)  # above Pillow's: Pillow's is lifted so that it does not interfere
    assert Image.MAX_IMAGE_PIXELS == 5000 and open_image(img).size == (30, 20)
    ecio.set_max_pixels(None)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(ValueError, match="max_pixels"):
        ecio.set_max_pixels(-1)


def test_files_that_fail_in_unexpected_ways_are_value_errors(tmp_path, monkeypatch) -> None:
    img = tmp_path / "img.png"
    Image.new("L", (8, 8)).save(img)

    def broken_load(self):
        raise IndexError("tile index out of range")  # what some fuzzed files raise

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(ValueError, match="not a readable image: tile index out of range"):
        open_image(Path(img))
