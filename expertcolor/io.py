"""Image input and output: decode any supported input to full-resolution L, and turn RGB results
back into the caller's type (PIL for paths and PIL images, ndarray for ndarrays, tensor for tensors).

Photos read from files are checked against a pixel limit before they are decoded (a guard against
decompression bombs and corrupt headers that claim huge sizes): by default Pillow's own
(``PIL.Image.MAX_IMAGE_PIXELS``: a hard error above about 179 Mpx); see :func:`set_max_pixels`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from .color import rgb_to_l

logger = logging.getLogger(__name__)

__all__ = [
    "ImageInput", "DecodedImage", "open_image", "decode_inputs", "encode_output", "output_dtype", "to_uint8",
    "set_max_pixels", "get_max_pixels",
]

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor

# Gray modes PIL cannot turn into RGB without losing meaning: scaled by hand (see _pil_to_float).
_GRAY_16_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}
# None: Pillow's own limit; 0: none; N: an error above N pixels (see set_max_pixels).
_max_pixels: int | None = None
_pillow_default: float | int | None = None  # Pillow's limit before set_max_pixels changed it
_limit_lock = threading.Lock()
# Pixels converted at once when decoding large photos (rows of about this many pixels).
_STRIP_PIXELS = 1 << 22


@dataclass
class DecodedImage:
    """One input image reduced to what the pipeline needs.

    Attributes:
        L: lightness at full resolution, shape ``(1, 1, H, W)``, float32 in ``[0, 100]``.
        alpha: alpha channel ``(H, W)`` float in ``[0, 1]`` when the input had one.
        kind: ``"pil"``, ``"uint8"``, ``"float"`` or ``"tensor"``: how to return the result.
        device: the input tensor's device (tensor inputs only).
    """

    L: torch.Tensor
    alpha: np.ndarray | None
    kind: str
    device: torch.device | None = None


def set_max_pixels(limit: int | None) -> int | None:
    """Set the process-wide limit on the pixels of photos opened from files; returns the previous one.

    Args:
        limit: ``None`` for Pillow's own behaviour (``PIL.Image.MAX_IMAGE_PIXELS``, by default a
            hard error above about 179 Mpx and a warning above about 89 Mpx); ``0`` for no limit;
            ``N`` for an error above ``N`` pixels. Like Pillow's limit, which it adjusts so that it
            does not interfere (it is lifted to at least ``N``, or removed for ``0``), the setting is
            process-wide. The command line's ``--max-pixels`` sets it.

    Photos are checked from their header, before any pixel is decoded; large photos within the
    limit are decoded and finished in strips, so memory stays bounded.
    """
    global _max_pixels, _pillow_default
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"max_pixels must be None or an integer >= 0, got {limit!r}")
    with _limit_lock:
        previous = _max_pixels
        if limit is None:
            if _max_pixels is not None:
                Image.MAX_IMAGE_PIXELS = _pillow_default
        else:
            if _max_pixels is None:
                _pillow_default = Image.MAX_IMAGE_PIXELS
            if limit == 0 or _pillow_default is None:
                Image.MAX_IMAGE_PIXELS = None
            else:
                Image.MAX_IMAGE_PIXELS = max(limit, _pillow_default)
        _max_pixels = limit
        return previous


def get_max_pixels() -> int | None:
    """The limit set by :func:`set_max_pixels` (``None``: Pillow's own)."""
    return _max_pixels


_HOW_TO_RAISE = "raise it with --max-pixels N or expertcolor.io.set_max_pixels(N) (0: no limit)"


def _too_large(path: Path, pixels: int | None, limit: int | None, size: tuple[int, int] | None = None) -> ValueError:
    what = f"{size[0]}x{size[1]} = {pixels} pixels" if size else f"{pixels} pixels" if pixels else "too many pixels"
    where = f"the limit of {limit} pixels" if limit else "the pixel limit"
    return ValueError(f"{path}: image of {what} exceeds {where} (a guard against decompression bombs); {_HOW_TO_RAISE}")


def _bomb(path: Path, err: Exception) -> ValueError:
    m = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(err))
    return _too_large(path, int(m.group(1)) if m else None, int(m.group(2)) if m else None)


def _unreadable(path: Path, err: Exception) -> ValueError:
    return ValueError(f"{path} is not a readable image: {str(err).strip() or type(err).__name__}")


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file, honouring its EXIF orientation.

    The photo's size is checked against the pixel limit (see :func:`set_max_pixels`) before it is
    decoded. Multi-frame files (animated GIF, multi-page TIFF) give their first frame.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a readable image, or has more pixels than the limit (the
            message names its size, the limit and how to raise it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such image file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an image")
    try:
        img = Image.open(path)  # reads the header only
    except Image.DecompressionBombError as e:  # Pillow's own limit: neither OSError nor ValueError
        raise _bomb(path, e) from None
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged or fuzzed files raise many kinds
        raise _unreadable(path, e) from None
    limit = _max_pixels
    if limit and img.width * img.height > limit:
        img.close()
        raise _too_large(path, img.width * img.height, limit, img.size)
    try:
        img.load()
    except Image.DecompressionBombError as e:  # e.g. a GIF frame larger than its header says
        img.close()
        raise _bomb(path, e) from None
    except MemoryError:
        img.close()
        raise
    except Exception as e:  # noqa: BLE001 - as for Image.open above
        img.close()
        raise _unreadable(path, e) from None
    try:
        return ImageOps.exif_transpose(img)
    except Exception as e:  # noqa: BLE001 - a damaged EXIF block should not lose the photo
        logger.warning("%s: EXIF orientation unreadable (%s); the photo is used as stored", path, e)
        return img


def _pil_to_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image of any mode -> (H, W, 3) float32 RGB in [0, 1] and optional alpha.

    Gray modes with more than 8 bits follow the rules for ndarrays: ``I;16*`` is scaled by 65535
    (as uint16 arrays); ``F`` must lie in ``[0, 1]`` (as float arrays; an ``F`` image holding
    0..255, e.g. ``img.convert("F")``, is refused with the arrays' message); ``I`` (32-bit
    integers, no array counterpart) is 8-bit when every value is at most 255 (``img.convert("I")``)
    and 16-bit otherwise; values outside ``[0, 65535]`` are refused. Every other mode (1, L, LA, La,
    P, PA, RGB, RGBA, RGBa, RGBX, CMYK, YCbCr, LAB, HSV) goes through Pillow's conversion to RGB(A).
    """
    if img.mode in _GRAY_16_MODES:
        gray = _gray_range(np.asarray(img, dtype=np.float32), "I;16", 65535.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.float32)
        gray = _gray_range(arr, "I", 255.0 if arr.max() <= 255 else 65535.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if img.mode == "F":
        gray = _unit_float(np.asarray(img, dtype=np.float32), "float image (PIL mode F)")
        return np.repeat(gray[..., None], 3, axis=2), None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "La":  # premultiplied: Pillow converts it to LA only
        img = img.convert("LA")
    if img.mode in ("LA", "PA", "RGBA", "RGBa"):
        img = img.convert("RGBA")
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return arr[..., :3], arr[..., 3]
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGBX
    arr = np.array(img, dtype=np.float32)
    arr /= 255.0  # in place: no second full-size float copy
    return arr, None


def _gray_range(arr: np.ndarray, mode: str, scale: float) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 65535:
        raise ValueError(f"PIL mode {mode} image values must lie in [0, 65535], got [{lo:.6g}, {hi:.6g}]")
    arr /= scale
    return np.minimum(arr, 1.0, out=arr)


def _unit_float(f: np.ndarray, what: str = "float image") -> np.ndarray:
    """Check that float pixels lie in ``[0, 1]`` (the rule for float arrays and ``F`` images)."""
    if not np.isfinite(f).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    lo, hi = float(f.min()), float(f.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = "; divide 8-bit values by 255" if hi <= 255 + 1e-6 and lo >= -1e-6 else ""
        raise ValueError(f"{what} values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]{hint}")
    return np.clip(f, 0.0, 1.0)


def _ndarray_to_float(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, str]:
    if arr.size == 0:
        raise ValueError(f"image is empty: array of shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"ndarray image must have shape (H, W), (H, W, 3) or (H, W, 4), got {arr.shape}")
    if arr.dtype == np.uint8:
        kind, f = "uint8", arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        kind, f = "uint8", arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        kind, f = "float", _unit_float(arr.astype(np.float32))
    elif arr.dtype == np.bool_:
        kind, f = "uint8", arr.astype(np.float32)
    else:
        raise TypeError(f"unsupported ndarray dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]")
    if f.ndim == 2:
        return np.repeat(f[..., None], 3, axis=2), None, kind
    if f.shape[2] == 4:
        return f[..., :3], f[..., 3], kind
    return f, None, kind


def _rgb_to_L(rgb: np.ndarray) -> torch.Tensor:
    H, W = rgb.shape[:2]
    if H == 0 or W == 0:
        raise ValueError(f"image is empty: size {W}x{H}")
    return _chw_to_L(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))


def _chw_to_L(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(3, H, W)`` (float in ``[0, 1]``, or uint8) -> L ``(1, 1, H, W)`` float32, in strips of
    rows so the conversion's temporaries (and an 8-bit photo's float copy) stay strip-sized."""
    H, W = rgb.shape[-2:]
    L = torch.empty((1, 1, H, W), dtype=torch.float32)
    step = max(1, _STRIP_PIXELS // W)
    for r0 in range(0, H, step):
        strip = rgb[:, r0 : r0 + step]
        if strip.dtype == torch.uint8:
            strip = strip.float() / 255.0
        L[0, :, r0 : r0 + step] = rgb_to_l(strip).float()
    return L


def _decode_tensor(t: torch.Tensor) -> list[DecodedImage]:
    if t.dim() != 4 or t.shape[1] not in (1, 3):
        raise ValueError(f"tensor input must have shape (B, 1, H, W) or (B, 3, H, W), got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"tensor input is empty: shape {tuple(t.shape)}")
    device = t.device
    if t.dtype == torch.uint8:
        x = t.float() / 255.0
    elif t.is_floating_point():
        x = t.float()
        if not torch.isfinite(x).all():
            raise ValueError("tensor input holds NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"tensor values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")
        x = x.clamp(0, 1)
    else:
        raise TypeError(f"unsupported tensor dtype {t.dtype}; use float in [0, 1] or uint8")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x.detach().cpu()
    return [DecodedImage(_chw_to_L(x[i]), None, "tensor", device) for i in range(x.shape[0])]


def decode_inputs(image: ImageInput) -> list[DecodedImage]:
    """Decode one input (a tensor batch gives several images).

    Args:
        image: a file path, a PIL image (any mode; 16-bit, 32-bit and float gray modes follow the
            array rules, see :func:`_pil_to_float`), an ndarray ``(H, W)`` / ``(H, W, 3|4)``
            (uint8, uint16 scaled by 65535, or float in ``[0, 1]``), or a tensor
            ``(B, 1|3, H, W)`` (float in ``[0, 1]`` or uint8). Colour is reduced to L. Files are
            checked against the pixel limit first (see :func:`set_max_pixels`).

    Raises:
        TypeError: for an unsupported input type.
        ValueError: for empty, malformed or out-of-range images.
        FileNotFoundError: for a missing path.
    """
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ValueError(f"image is empty: size {image.width}x{image.height}")
        if image.mode in ("L", "RGB"):  # the common modes: no full-size float copy of the photo
            u8 = torch.from_numpy(np.array(image))
            chw = u8.expand(3, -1, -1) if u8.dim() == 2 else u8.permute(2, 0, 1)
            return [DecodedImage(_chw_to_L(chw), None, "pil")]
        rgb, alpha = _pil_to_float(image)
        return [DecodedImage(_rgb_to_L(rgb), alpha, "pil")]
    if isinstance(image, np.ndarray):
        rgb, alpha, kind = _ndarray_to_float(image)
        return [DecodedImage(_rgb_to_L(rgb), alpha, kind)]
    if isinstance(image, torch.Tensor):
        return _decode_tensor(image)
    raise TypeError(
        f"unsupported image type {type(image).__name__}; pass a path, PIL.Image, numpy array or torch tensor"
    )


def to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in ``[0, 1]`` (any shape) -> uint8, rounded to nearest."""
    return (rgb * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def output_dtype(decoded: DecodedImage) -> torch.dtype:
    """What :func:`encode_output` wants for ``decoded``'s output: uint8 for 8-bit outputs (PIL images,
    uint8 arrays), which may then be rounded strip by strip as they are finished; else float32."""
    return torch.uint8 if decoded.kind in ("pil", "uint8") else torch.float32


def encode_output(rgb: torch.Tensor, decoded: DecodedImage) -> Any:
    """Turn an RGB result ``(1, 3, H, W)`` (float in ``[0, 1]``, or uint8 for 8-bit outputs) into the
    caller's type.

    Returns:
        ``PIL.Image`` (RGB, or RGBA when the input had alpha) for paths and PIL images; ndarray
        ``(H, W, 3|4)`` uint8 or float32 for ndarrays; tensor ``(3, H, W)`` float for tensors.
    """
    if decoded.kind == "tensor":
        return rgb[0].to(decoded.device)
    if decoded.kind == "float":
        arr = rgb[0].permute(1, 2, 0).cpu().numpy()
        if decoded.alpha is not None:
            arr = np.concatenate([arr, decoded.alpha[..., None]], axis=2)
        return arr.astype(np.float32)
    # The colorizer rounds large photos strip by strip as it finishes them (see output_dtype).
    u8 = (rgb[0] if rgb.dtype == torch.uint8 else to_uint8(rgb[0])).permute(1, 2, 0).cpu().contiguous().numpy()
    if decoded.alpha is not None:
        a8 = np.clip(np.rint(decoded.alpha * 255.0), 0, 255).astype(np.uint8)
        u8 = np.concatenate([u8, a8[..., None]], axis=2)
    if decoded.kind == "uint8":
        return u8
    return Image.fromarray(u8)  # RGB or RGBA from the last axis
