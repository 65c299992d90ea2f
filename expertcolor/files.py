"""Image files: which files are photos, how label maps are read, and the grayscale rule.

The one home for facts about image files that training, evaluation and the CLI share.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_CHROMA",
    "list_images",
    "mean_chroma",
    "is_grayscale",
    "open_label_map",
    "read_label_map",
    "readable_extensions",
]

#: Photo files that training and evaluation read from dataset folders (lower case). ``.gif`` is
#: left out on purpose: its 256-colour palette makes poor colour ground truth.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: Photos whose :func:`mean_chroma` is below this are grayscale: training skips them, evaluation
#: and the gallery treat them as having no colour ground truth.
MIN_CHROMA = 4.0


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
