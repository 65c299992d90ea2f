"""Edge-aware filters used to soften routing masks and to upsample chroma (He et al., guided filter)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_filter", "guided_coefficients", "guided_filter", "guided_upsample", "resize_rows"]


def box_filter(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``(2r+1) x (2r+1)`` window, edges replicated.

    Args:
        x: shape ``(B, C, H, W)``.
        radius: window radius in pixels (0 returns ``x``).

    Returns:
        Filtered tensor of the same shape. Separable, so cost grows linearly with ``radius``.
    """
    if radius <= 0:
        return x
    k = 2 * radius + 1
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = F.avg_pool2d(x, (1, k), stride=1)
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    return F.avg_pool2d(x, (k, 1), stride=1)


def guided_coefficients(
    guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The guided filter's smoothed linear model ``(a, b)``, each ``(B, C, H, W)``: output ``a * guide + b``."""
    mean_i = box_filter(guide, radius)
    mean_p = box_filter(src, radius)
    cov_ip = box_filter(guide * src, radius) - mean_i * mean_p
    var_i = box_filter(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, radius), box_filter(b, radius)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Guided filter: smooths ``src`` while following the edges of ``guide``.

    Args:
        guide: guidance image, shape ``(B, 1, H, W)``, roughly in ``[0, 1]``.
        src: image to filter, shape ``(B, C, H, W)``.
        radius: window radius in pixels.
        eps: regularisation; smaller follows guide edges more closely.

    Returns:
        Filtered ``src``, shape ``(B, C, H, W)``. The filter is linear in ``src``, and a
        constant ``src`` comes back unchanged.
    """
    a, b = guided_coefficients(guide, src, radius, eps)
    return a * guide + b


def resize_rows(x: torch.Tensor, size: tuple[int, int], rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Bilinear resize (``align_corners=False``), or only output rows ``r0:r1`` of it.

    Rows are interpolated from the width-resized input with the weights ``F.interpolate`` uses, so a
    large photo finished strip by strip matches the whole-image resize (to float rounding) without
    ever holding all of it.

    Args:
        x: shape ``(B, C, h, w)``.
        size: full output size ``(H, W)``.
        rows: ``(r0, r1)`` with ``0 <= r0 < r1 <= H``; ``None``: all rows.

    Returns:
        Shape ``(B, C, r1 - r0, W)`` (``(B, C, H, W)`` for all rows).
    """
    if rows is None:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    (H, W), (r0, r1) = size, rows
    if not 0 <= r0 < r1 <= H:
        raise ValueError(f"rows must satisfy 0 <= r0 < r1 <= {H}, got {rows}")
    h = x.shape[-2]
    x = F.interpolate(x, size=(h, W), mode="bilinear", align_corners=False)  # width only
    src = ((torch.arange(r0, r1, device=x.device, dtype=torch.float64) + 0.5) * (h / H) - 0.5).clamp(min=0)
    y0 = src.floor().long().clamp(max=h - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    w = (src - y0).to(x.dtype).view(1, 1, -1, 1)
    return x[..., y0, :] * (1 - w) + x[..., y1, :] * w


def guided_upsample(
    guide_small: torch.Tensor, src_small: torch.Tensor, guide_full: torch.Tensor, radius: int = 2, eps: float = 1e-3
) -> torch.Tensor:
    """Fast guided upsampling (He & Sun 2015): fit the linear model at low resolution and
    apply it to the full-resolution guide, so upsampled chroma snaps to full-resolution edges.

    Args:
        guide_small: low-resolution guide, ``(B, 1, h, w)``.
        src_small: low-resolution image to upsample, ``(B, C, h, w)``.
        guide_full: full-resolution guide, ``(B, 1, H, W)``.
        radius: window radius at low resolution.
        eps: regularisation.

    Returns:
        Upsampled ``src``, shape ``(B, C, H, W)``.
    """
    a, b = guided_coefficients(guide_small, src_small, radius, eps)
    size = tuple(guide_full.shape[-2:])
    return resize_rows(a, size) * guide_full + resize_rows(b, size)
