"""Image-quality metrics for colorization, in numpy.

Conventions (all functions):
    * ``rgb`` images are ``(H, W, 3)`` ``uint8`` sRGB (values ``0..255``); float arrays in ``[0, 1]``
      are accepted and scaled by 255 where a function says so.
    * ``mask`` is an optional ``(H, W)`` boolean array selecting the pixels that count; a metric over
      an empty mask is ``nan``.
    * ``groups`` is an ``(H, W)`` integer label map (e.g. 0 background, 1 person, 2 bird, 3 animal,
      255 ignore).

Reference implementations: :func:`skimage.metrics.peak_signal_noise_ratio`,
:func:`skimage.metrics.structural_similarity`, :func:`skimage.color.deltaE_ciede2000`; the
colourfulness measure is Hasler & Süsstrunk, "Measuring colourfulness in natural images" (2003).
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity
from skimage.morphology import dilation, disk

__all__ = [
    "IGNORE",
    "to_uint8",
    "psnr",
    "ssim_map",
    "ssim",
    "rgb_to_lab",
    "ciede2000_map",
    "colorfulness",
    "boundary_band",
]

#: Label value of pixels that no metric counts.
IGNORE = 255


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Return ``rgb`` as ``uint8``: float input in ``[0, 1]`` is scaled by 255 and rounded.

    Raises:
        ValueError: if the array is not ``(H, W, 3)``.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {rgb.shape}")
    if rgb.dtype == np.uint8:
        return rgb
    if np.issubdtype(rgb.dtype, np.floating):
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_uint8(a), to_uint8(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def _check_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape[:2]:
        raise ValueError(f"mask of shape {mask.shape} does not match image of shape {shape[:2]}")
    return mask


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio over all channels of the selected pixels.

    Without a mask this equals ``skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)``.

    Args:
        a, b: ``(H, W, 3)`` uint8 RGB images.
        mask: optional ``(H, W)`` bool; only these pixels count.
        data_range: peak value (255 for 8-bit).

    Returns:
        PSNR in dB; ``inf`` for identical pixels, ``nan`` for an empty mask.
    """
    a, b = _check_pair(a, b)
    mask = _check_mask(mask, a.shape)
    diff = a.astype(np.float64) - b.astype(np.float64)
    sq = diff**2 if mask is None else (diff**2)[mask]
    if sq.size == 0:
        return float("nan")
    mse = float(sq.mean())
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _win_size(shape: tuple[int, ...]) -> int:
    """skimage's default SSIM window (7), shrunk to the largest odd size that fits a small image."""
    side = min(shape[0], shape[1])
    return min(7, side if side % 2 else side - 1)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (7x7 uniform window, skimage defaults), averaged over the RGB channels.

    Args:
        a, b: ``(H, W, 3)`` uint8 RGB images (both sides at least 3 pixels).

    Returns:
        ``(H, W)`` float64 SSIM map in ``[-1, 1]``.
    """
    a, b = _check_pair(a, b)
    win = _win_size(a.shape)
    if win < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {a.shape[:2]}")
    _, full = structural_similarity(a, b, channel_axis=2, data_range=255, win_size=win, full=True)
    return full.mean(axis=2)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, smap: np.ndarray | None = None) -> float:
    """Mean structural similarity of two RGB images.

    Without a mask this is ``skimage.metrics.structural_similarity(a, b, channel_axis=2,
    data_range=255)`` (the mean of the SSIM map with a border of 3 pixels cropped); with a mask it is
    the mean of :func:`ssim_map` over the selected pixels (no border crop).

    Args:
        a, b: ``(H, W, 3)`` uint8 RGB images.
        mask: optional ``(H, W)`` bool.
        smap: a precomputed :func:`ssim_map` of ``(a, b)`` to reuse.

    Returns:
        SSIM in ``[-1, 1]``; ``nan`` for an empty mask.
    """
    smap = ssim_map(a, b) if smap is None else smap
    mask = _check_mask(mask, smap.shape)
    if mask is None:
        pad = (_win_size(smap.shape) - 1) // 2
        inner = smap[pad : smap.shape[0] - pad, pad : smap.shape[1] - pad]
        return float(inner.mean())
    return float(smap[mask].mean()) if mask.any() else float("nan")


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of an 8-bit RGB image, ``(H, W, 3)`` float64 (``skimage.color.rgb2lab``)."""
    return rgb2lab(to_uint8(rgb))


def ciede2000_map(
    a: np.ndarray, b: np.ndarray, lab_a: np.ndarray | None = None, lab_b: np.ndarray | None = None
) -> np.ndarray:
    """Per-pixel CIEDE2000 colour difference of two 8-bit RGB images.

    Args:
        a, b: ``(H, W, 3)`` uint8 RGB images (converted with ``skimage.color.rgb2lab``).
        lab_a, lab_b: precomputed Lab images to reuse (optional).

    Returns:
        ``(H, W)`` float64, ``>= 0`` (0 for identical colours; ~1 is a just-noticeable difference).
    """
    a, b = _check_pair(a, b)
    lab_a = rgb2lab(a) if lab_a is None else lab_a
    lab_b = rgb2lab(b) if lab_b is None else lab_b
    return deltaE_ciede2000(lab_a, lab_b)


def colorfulness(rgb: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Hasler & Süsstrunk (2003) colourfulness ``M = sigma_rgyb + 0.3 * mu_rgyb``.

    With ``rg = R - G`` and ``yb = (R + G) / 2 - B`` on the 0..255 scale,
    ``sigma_rgyb = sqrt(std(rg)^2 + std(yb)^2)`` and ``mu_rgyb = sqrt(mean(rg)^2 + mean(yb)^2)``.
    A gray image scores 0; the authors' scale puts "moderately colourful" near 33 and "extremely
    colourful" above 109.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB image.
        mask: optional ``(H, W)`` bool.

    Returns:
        Colourfulness ``>= 0``; ``nan`` for an empty mask.
    """
    rgb = to_uint8(rgb)
    mask = _check_mask(mask, rgb.shape)
    px = rgb.reshape(-1, 3) if mask is None else rgb[mask]
    if px.shape[0] == 0:
        return float("nan")
    r, g, b = (px[:, i].astype(np.float64) for i in range(3))
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def boundary_band(groups: np.ndarray, width: int = 8) -> np.ndarray:
    """Pixels within ``width`` pixels (Euclidean) of a pixel of a different group.

    Every label value, ``255`` (ignore) included, counts as its own group here, so pixels next to an
    ignored fringe are in the band; callers drop ignored pixels themselves. The image border is not
    a boundary. Both sides of a boundary belong to the band, so a straight boundary between two
    groups gives a band ``2 * width`` pixels wide.

    Args:
        groups: ``(H, W)`` integer label map.
        width: band half-width in pixels (``>= 1``).

    Returns:
        ``(H, W)`` bool band mask (the interior is ``~band``).
    """
    groups = np.asarray(groups)
    if groups.ndim != 2:
        raise ValueError(f"groups must be an (H, W) label map, got shape {groups.shape}")
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    band = np.zeros(groups.shape, dtype=bool)
    values = np.unique(groups)
    if values.size < 2:
        return band
    footprint = disk(int(width))
    for v in values:
        inside = groups == v
        near_other = dilation((~inside).astype(np.uint8), footprint, mode="constant", cval=0) > 0
        band |= inside & near_other
    return band
