"""Image files: which files are photos, how they are read (with their ICC profile, EXIF and bit
depth) and written back (same metadata, atomically), how label maps are read, and the grayscale rule.

The one home for facts about image files that training, evaluation and the CLI share.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .io import open_image
from .modeling import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_CHROMA",
    "list_images",
    "mean_chroma",
    "is_grayscale",
    "open_label_map",
    "read_label_map",
    "readable_extensions",
    "LoadedImage",
    "load_image",
    "bit_depth",
    "rgb_icc",
    "save_image",
]

#: Photo files that training and evaluation read from dataset folders (lower case). ``.gif`` is
#: left out on purpose: its 256-colour palette makes poor colour ground truth.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Photos whose :func:`mean_chroma` is below this are grayscale: training skips them, evaluation
#: and the gallery treat them as having no colour ground truth.
MIN_CHROMA = 4.0

_ORIENTATION_TAG = 0x0112
#: Formats written with ``quality=95``, and formats that carry an ICC profile and EXIF.
_QUALITY_FORMATS = {"JPEG", "WEBP"}
_METADATA_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}


def readable_extensions() -> set[str]:
    """Every extension Pillow can open (lower case): what ``expertcolor colorize`` accepts in folders."""
    return {ext.lower() for ext in Image.registered_extensions()}


def list_images(
    root: str | os.PathLike, recursive: bool = True, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Image files below ``root`` (by lower-case ``extensions``), sorted; hidden files and folders
    below ``root`` are ignored ("../photos" itself is not hidden)."""
    root = Path(root)
    it = root.rglob("*") if recursive else root.iterdir()
    out = [
        p
        for p in it
        if p.suffix.lower() in extensions
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    ]
    return sorted(out)


def mean_chroma(img: Image.Image) -> float:
    """Mean over pixels of ``max(R,G,B) - min(R,G,B)`` (0..255) of an RGB image, on a <=64 px thumbnail."""
    small = img if max(img.size) <= 96 else img.resize((64, 64), Image.BILINEAR)
    a = np.asarray(small, dtype=np.int16)
    return float((a.max(axis=2) - a.min(axis=2)).mean())


def is_grayscale(img: Image.Image, min_chroma: float = MIN_CHROMA) -> bool:
    """Whether a photo carries no usable colour: single-channel, or :func:`mean_chroma` below ``min_chroma``."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return True
    return mean_chroma(img if img.mode == "RGB" else img.convert("RGB")) < min_chroma


def open_label_map(path: str | os.PathLike) -> Image.Image:
    """A label map (one class id per pixel) as a loaded PIL image of mode ``P`` or ``L``.

    Palette images keep their indices (the ids), other modes are converted to ``L``.
    """
    with Image.open(path) as im:
        im.load()
        return im if im.mode in ("P", "L") else im.convert("L")


def read_label_map(path: str | os.PathLike) -> np.ndarray:
    """A label map as ``(H, W)`` uint8 class ids (see :func:`open_label_map`)."""
    return np.asarray(open_label_map(path), dtype=np.uint8)


# -- photos read and written with their metadata -------------------------------------------------------
@dataclass
class LoadedImage:
    """A photo read by :func:`load_image`, with what :func:`save_image` carries over to its result.

    Attributes:
        image: the decoded photo, upright (EXIF orientation applied).
        icc: its ICC profile when that describes RGB data (see :func:`rgb_icc`), else ``None``.
        exif: its EXIF block without the orientation tag, or ``None``.
        format: Pillow's name of its file format (``"JPEG"``, ``"PNG"``...).
    """

    image: Image.Image
    icc: bytes | None
    exif: bytes | None
    format: str | None


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Read a photo for colorizing: decoded and upright, with its RGB ICC profile and EXIF.

    The pixel limit is checked first (see :func:`expertcolor.io.set_max_pixels`). A warning is
    logged when only the first of several frames is used, or when samples have more than 8 bits
    (the result is written as 8-bit).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a readable image or exceeds the pixel limit.
    """
    path = Path(path)
    img = open_image(path)  # pixel limit checked, EXIF orientation applied; clean error if unreadable
    with Image.open(path) as probe:  # the header again (decoding is done): format, frames, bit depth
        fmt = probe.format
        frames = getattr(probe, "n_frames", 1) if fmt != "MPO" else 1  # MPO: a camera JPEG and its previews
        bits = bit_depth(probe)
    if frames > 1:
        logger.warning("%s: only the first frame is colorized (the file has %d)", path, frames)
    if bits > 8:
        logger.warning("%s: %d-bit input is written as 8-bit", path, bits)
    exif = img.getexif()
    exif.pop(_ORIENTATION_TAG, None)
    return LoadedImage(img, rgb_icc(img.info.get("icc_profile")), exif.tobytes() if len(exif) else None, fmt)


def bit_depth(probe: Image.Image) -> int:
    """Bits per sample of an opened, not yet decoded file: 8, 16 or 32 (from its mode and raw mode)."""
    if probe.mode in ("I", "F"):
        return 32 if not any("16" in _rawmode(t) for t in getattr(probe, "tile", ())) else 16
    raw = [_rawmode(t) for t in getattr(probe, "tile", ())]
    if probe.mode.startswith("I;16") or any(";16" in r and not r.startswith("BGR;") for r in raw):  # BGR;16: 5-6-5
        return 16
    return 8


def _rawmode(tile: Any) -> str:
    args = getattr(tile, "args", None)
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def rgb_icc(profile: bytes | None) -> bytes | None:
    """``profile`` if it describes RGB data (the output is RGB), else ``None`` (gray/CMYK profiles)."""
    if profile and len(profile) >= 20 and profile[16:20] == b"RGB ":
        return profile
    return None


def _format_for(path: Path, fallback: str | None) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt or fallback or "PNG"


def save_image(image: Image.Image, path: str | os.PathLike, loaded: LoadedImage | None = None) -> None:
    """Save with the format of ``path``'s extension (JPEG/WebP quality 95), keeping ``loaded``'s ICC and EXIF.

    The orientation tag is dropped: pixels are already upright. The file is written to a temporary
    file in the same folder and renamed over ``path``: an interrupted run leaves no half-written
    image, and a symlink at ``path`` is replaced, not written through. Whether ``path`` may be
    replaced at all is the caller's decision (``colorize`` keeps existing files unless
    ``--overwrite``).
    """
    path = Path(path)
    fmt = _format_for(path, loaded.format if loaded else None)
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    kwargs: dict[str, Any] = {}
    if fmt in _QUALITY_FORMATS:
        kwargs["quality"] = 95
    if loaded is not None and fmt in _METADATA_FORMATS:
        if loaded.icc:
            kwargs["icc_profile"] = loaded.icc
        if loaded.exif:
            kwargs["exif"] = loaded.exif
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **kwargs))
