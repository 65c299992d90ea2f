"""Pictures of a colorization for people to inspect: expert colours, each expert's output, routing maps.

Used by ``expertcolor colorize --details`` and ``examples/gallery.py``; it needs no evaluation code.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from .color import lab_to_rgb_gamut
from .merge import upsample_ab

if TYPE_CHECKING:
    from .colorizer import ColorizationResult

__all__ = [
    "expert_color",
    "expert_rgb",
    "label_font",
    "routing_overlay",
    "percent",
    "resize_L",
]

_KNOWN_COLORS: dict[str, tuple[int, int, int]] = {
    "faces": (255, 127, 14),
    "birds": (31, 119, 180),
    "animals": (44, 160, 44),
    "places": (148, 103, 189),
    "generalist": (127, 127, 127),
}
_PALETTE = [(214, 39, 40), (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 187, 120)]


def expert_color(name: str) -> tuple[int, int, int]:
    """A fixed display colour for an expert (stable across runs and models)."""
    return _KNOWN_COLORS.get(name, _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)])


def expert_rgb(result: ColorizationResult, name: str, L_full: torch.Tensor, upsample: str = "guided") -> np.ndarray:
    """One expert's own colours for the whole photo, ``(H, W, 3)`` uint8.

    Its working-resolution ab is upsampled to ``L_full`` (guided by L, as the colorizer does) and
    gamut-mapped at constant L.

    Args:
        result: a :class:`~expertcolor.ColorizationResult` (``expert_ab`` holds the experts that ran).
        name: an expert in ``result.expert_ab``.
        L_full: lightness ``(1, 1, H, W)`` in ``[0, 100]`` (full or display resolution).
        upsample: ``"guided"`` or ``"bilinear"``.
    """
    L_small = torch.from_numpy(np.asarray(result.L, dtype=np.float32))[None, None]
    ab_small = torch.from_numpy(np.asarray(result.expert_ab[name], dtype=np.float32))[None]
    L_full = L_full.float().cpu()
    ab = upsample_ab(ab_small, L_small, L_full, mode=upsample)
    rgb = lab_to_rgb_gamut(torch.cat([L_full, ab], dim=1))
    return np.clip(np.rint(rgb[0].permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)


def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's bundled font at ``size`` pixels (bitmap fallback without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def routing_overlay(
    result: ColorizationResult,
    gray: np.ndarray,
    alpha: float = 0.5,
    legend: bool = True,
) -> Image.Image:
    """The expert map (largest blend weight per pixel) tinted over the grayscale photo, with a legend.

    Args:
        result: a :class:`~expertcolor.ColorizationResult`.
        gray: the photo as ``(H, W)`` or ``(H, W, 3)`` uint8; the map is resized to it (nearest).
        alpha: tint opacity.
        legend: add a strip below the image naming each expert with its share of the pixels.

    Returns:
        RGB image of size ``W x H`` (plus the legend strip).
    """
    gray = np.asarray(gray)
    if gray.ndim == 2:
        gray = np.repeat(gray[..., None], 3, axis=2)
    h, w = gray.shape[:2]
    names = list(result.weights)
    emap = result.expert_map()
    emap_full = np.asarray(Image.fromarray(emap.astype(np.uint8)).resize((w, h), Image.NEAREST))
    colors = np.array([expert_color(n) for n in names], dtype=np.float32)
    tinted = (1 - alpha) * gray.astype(np.float32) + alpha * colors[emap_full]
    img = Image.fromarray(np.clip(np.rint(tinted), 0, 255).astype(np.uint8))
    if not legend:
        return img
    shares = {n: float((emap == i).mean()) for i, n in enumerate(names)}
    return _with_legend(img, [(n, shares[n]) for n in names if shares[n] > 0])


def _with_legend(img: Image.Image, entries: Sequence[tuple[str, float]]) -> Image.Image:
    size = max(10, min(16, img.width // 16))
    font = label_font(size)
    row = size + 6
    per_row = max(1, min(len(entries), img.width // (9 * size)))
    rows = -(-len(entries) // per_row) if entries else 0
    canvas = Image.new("RGB", (img.width, img.height + rows * row + 4), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    col_w = img.width // per_row
    for k, (name, share) in enumerate(entries):
        x = (k % per_row) * col_w + 4
        y = img.height + 2 + (k // per_row) * row
        draw.rectangle([x, y + 2, x + size, y + size + 2], fill=expert_color(name), outline=(0, 0, 0))
        draw.text((x + size + 4, y + 1), f"{name} {percent(share)}", fill=(0, 0, 0), font=font)
    return canvas


def percent(share: float) -> str:
    """``0.25 -> "25%"``; shares that round to 0 but are not 0 read ``"<1%"``."""
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


def resize_L(L: torch.Tensor, max_side: int) -> torch.Tensor:
    """Downscale ``(1, 1, H, W)`` lightness so its long side is at most ``max_side`` (antialiased).

    The same size and filter as :meth:`~expertcolor.ExpertColorizer.working_shape` with
    ``working_size = max_side``; never upscales.
    """
    h, w = L.shape[-2:]
    scale = max_side / max(h, w)
    if scale >= 1:
        return L
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(L, size=size, mode="bilinear", align_corners=False, antialias=True)
