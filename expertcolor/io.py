"""Image input and output: decode any supported input to full-resolution L, and turn RGB results
back into the caller's type (PIL for paths and PIL images, ndarray for ndarrays, tensor for tensors).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .color import rgb_to_l

__all__ = ["ImageInput", "DecodedImage", "open_image", "decode_inputs", "encode_output"]

ImageInput = str | os.PathLike | Image.Image | np.ndarray | torch.Tensor

# Modes PIL can turn into RGB without losing meaning; 16/32-bit integer modes are scaled by hand.
_GRAY_INT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
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


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file, honouring its EXIF orientation.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a readable image.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such image file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not an image")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{path} is not a readable image: {e}") from None
    return ImageOps.exif_transpose(img)


def _pil_to_float(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image of any mode -> (H, W, 3) float32 RGB in [0, 1] and optional alpha."""
    alpha = None
    if img.mode in _GRAY_INT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        gray = np.clip(arr / 65535.0, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2).astype(np.float32), None
    if img.mode == "F":
        gray = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        img = img.convert("RGBA")
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return arr[..., :3], arr[..., 3]
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    arr = np.array(img, dtype=np.float32)
    arr /= 255.0  # in place: no second full-size float copy
    return arr, alpha


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
        kind, f = "float", arr.astype(np.float32)
        if not np.isfinite(f).all():
            raise ValueError("float image holds NaN or infinite values")
        if f.min() < -1e-6 or f.max() > 1 + 1e-6:
            raise ValueError(f"float image values must lie in [0, 1], got [{f.min():.3g}, {f.max():.3g}]")
        f = np.clip(f, 0.0, 1.0)
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
    """sRGB ``(3, H, W)`` in ``[0, 1]`` -> L ``(1, 1, H, W)`` float32, in strips of rows so the
    conversion's temporaries stay strip-sized for large photos."""
    H, W = rgb.shape[-2:]
    L = torch.empty((1, 1, H, W), dtype=torch.float32)
    step = max(1, _STRIP_PIXELS // W)
    for r0 in range(0, H, step):
        L[0, :, r0 : r0 + step] = rgb_to_l(rgb[:, r0 : r0 + step]).float()
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
        image: a file path, a PIL image (any mode), an ndarray ``(H, W)`` / ``(H, W, 3|4)``
            (uint8, uint16, or float in ``[0, 1]``), or a tensor ``(B, 1|3, H, W)`` (float in
            ``[0, 1]`` or uint8). Colour is reduced to L.

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


def encode_output(rgb: torch.Tensor, decoded: DecodedImage) -> Any:
    """Turn an RGB result ``(1, 3, H, W)`` in ``[0, 1]`` into the caller's type.

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
    # Round in torch, then convert: one float temporary instead of three for a large photo.
    u8 = (rgb[0] * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()
    if decoded.alpha is not None:
        a8 = np.clip(np.rint(decoded.alpha * 255.0), 0, 255).astype(np.uint8)
        u8 = np.concatenate([u8, a8[..., None]], axis=2)
    if decoded.kind == "uint8":
        return u8
    return Image.fromarray(u8)  # RGB or RGBA from the last axis
