"""sRGB (D65) <-> CIE Lab conversions in torch, and the L / ab normalisation used by every network.

All functions are batched, differentiable where it makes sense, and run on any device. They match
:func:`skimage.color.rgb2lab` / :func:`skimage.color.lab2rgb` (illuminant D65, 2° observer) to
better than 1e-3 for in-gamut colours.

Conventions:
    * RGB is non-linear sRGB in ``[0, 1]``, shape ``(..., 3, H, W)``.
    * Lab has L in ``[0, 100]`` and a, b roughly in ``[-128, 127]``, shape ``(..., 3, H, W)``.
"""

from __future__ import annotations

from functools import lru_cache

import torch

__all__ = [
    "AB_SCALE",
    "L_SCALE",
    "rgb_to_lab",
    "lab_to_rgb",
    "lab_to_rgb_gamut",
    "in_gamut",
    "rgb_to_l",
    "normalize_l",
    "normalize_ab",
    "denormalize_ab",
    "ab_bin_centers",
]

# Networks see L/50 - 1 in [-1, 1] and predict ab/110: 110 covers the sRGB gamut's chroma
# except a few extreme blues/greens, which keeps targets of order 1.
L_SCALE = 50.0
AB_SCALE = 110.0

_XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)


def _check_channels(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (..., 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {x.dtype}")


def _matmul_channels(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply an (n, 3) matrix over the channel dimension (-3)."""
    return torch.einsum("ij,...jhw->...ihw", m.to(device=x.device, dtype=x.dtype), x)


def _view_white(x: torch.Tensor) -> torch.Tensor:
    return _WHITE_D65.to(device=x.device, dtype=x.dtype).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB to CIE Lab (D65, 2° observer).

    Args:
        rgb: sRGB image, shape ``(..., 3, H, W)``, float in ``[0, 1]``.

    Returns:
        Lab image, shape ``(..., 3, H, W)``: L in ``[0, 100]``, a and b roughly in ``[-128, 127]``.

    Raises:
        TypeError: if ``rgb`` is not a floating point tensor.
        ValueError: if the channel dimension is not 3.
    """
    _check_channels(rgb, "rgb")
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0).pow(2.4), rgb / 12.92)
    xyz = _matmul_channels(_XYZ_FROM_RGB, lin) / _view_white(rgb)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12).pow(1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-3)
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)
    return lab


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Convert CIE Lab (D65, 2° observer) to sRGB.

    Args:
        lab: Lab image, shape ``(..., 3, H, W)``.
        clip: clip the result to ``[0, 1]`` as :func:`skimage.color.lab2rgb` does. With
            ``clip=False`` out-of-gamut colours come back outside ``[0, 1]`` (useful to test the
            gamut; see :func:`lab_to_rgb_gamut` for a mapping that keeps L).

    Returns:
        sRGB image, shape ``(..., 3, H, W)``.
    """
    _check_channels(lab, "lab")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp_min(0.0)  # as skimage: negative Z is clipped
    f = torch.stack([fx, fy, fz], dim=-3)
    xyz = torch.where(f > 0.2068966, f.pow(3), (f - 16.0 / 116.0) / 7.787) * _view_white(lab)
    lin = _matmul_channels(_RGB_FROM_XYZ, xyz)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0.0031308).pow(1.0 / 2.4) - 0.055, 12.92 * lin)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def in_gamut(lab: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    """Per-pixel mask of Lab colours that sRGB can show.

    Args:
        lab: Lab image, shape ``(..., 3, H, W)``.
        tol: tolerance on the ``[0, 1]`` RGB bounds.

    Returns:
        Boolean tensor of shape ``(..., H, W)``.
    """
    rgb = lab_to_rgb(lab, clip=False)
    return ((rgb >= -tol) & (rgb <= 1.0 + tol)).all(dim=-3)


def lab_to_rgb_gamut(lab: torch.Tensor, iterations: int = 14) -> torch.Tensor:
    """Convert Lab to sRGB, bringing out-of-gamut colours inside by reducing chroma.

    Clipping RGB changes lightness; here each out-of-gamut pixel keeps its L and hue and its
    chroma is scaled by the largest factor in ``[0, 1]`` that fits sRGB (bisection, precise to
    ``2**-iterations``). Neutral grey is always inside, so the search always succeeds.

    Args:
        lab: Lab image, shape ``(..., 3, H, W)``, L in ``[0, 100]``.
        iterations: bisection steps.

    Returns:
        sRGB image in ``[0, 1]``, shape ``(..., 3, H, W)``.
    """
    _check_channels(lab, "lab")
    lab = lab.clone()
    lab[..., 0, :, :] = lab[..., 0, :, :].clamp(0.0, 100.0)
    # One full-resolution conversion serves both the gamut test and the in-gamut pixels' result.
    rgb = lab_to_rgb(lab, clip=False)
    ok = ((rgb >= -1e-4) & (rgb <= 1.0 + 1e-4)).all(dim=-3)
    if bool(ok.all()):
        return rgb.clamp_(0.0, 1.0)
    # Work on the offending pixels only: (N, 3) -> (N, 3, 1, 1) so the conversions apply.
    lab_last = lab.movedim(-3, -1)
    bad = lab_last[~ok]
    L, ab = bad[:, :1], bad[:, 1:]
    lo = torch.zeros_like(L)
    hi = torch.ones_like(L)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        cand = torch.cat([L, ab * mid], dim=1)[:, :, None, None]
        fits = in_gamut(cand).view(-1, 1)
        lo = torch.where(fits, mid, lo)
        hi = torch.where(fits, hi, mid)
    fixed = lab_to_rgb(torch.cat([L, ab * lo], dim=1)[:, :, None, None])[:, :, 0, 0]  # (N, 3)
    rgb_last = rgb.movedim(-3, -1).clone()
    rgb_last[~ok] = fixed
    return rgb_last.movedim(-1, -3).clamp_(0.0, 1.0)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """Lightness L of an sRGB image.

    Args:
        rgb: shape ``(..., 3, H, W)`` in ``[0, 1]``.

    Returns:
        L, shape ``(..., 1, H, W)`` in ``[0, 100]``.
    """
    _check_channels(rgb, "rgb")
    # L depends on the luminance Y alone: skip X, Z, a and b (rgb_to_lab's L up to float rounding).
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0).pow(2.4), rgb / 12.92)
    y = _matmul_channels(_XYZ_FROM_RGB[1:2], lin) / _WHITE_D65[1].item()
    fy = torch.where(y > 0.008856, y.clamp_min(1e-12).pow(1.0 / 3.0), 7.787 * y + 16.0 / 116.0)
    return 116.0 * fy - 16.0


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """Map L in ``[0, 100]`` to the network input range ``[-1, 1]``."""
    return L / L_SCALE - 1.0


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Map ab in Lab units to the network target scale (``ab / 110``)."""
    return ab / AB_SCALE


def denormalize_ab(ab_n: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize_ab`."""
    return ab_n * AB_SCALE


def ab_bin_centers(grid: float = 10.0, limit: float = AB_SCALE) -> torch.Tensor:
    """Centres of the ab quantisation bins that sRGB can show (see :func:`_ab_bin_centers`); a copy."""
    return _ab_bin_centers(float(grid), float(limit)).clone()


@lru_cache(maxsize=8)
def _ab_bin_centers(grid: float, limit: float) -> torch.Tensor:
    """Centres of the ab quantisation bins that sRGB can show (Zhang et al. 2016).

    A square grid of step ``grid`` over ``[-limit, limit]^2`` keeps the bins whose centre is in
    the sRGB gamut at some lightness (sampled every 1 L unit): 225 bins with the defaults (Zhang et
    al. keep every bin that touches the gamut and count 313).

    Args:
        grid: bin size in ab units.
        limit: the largest |a| or |b| considered.

    Returns:
        Bin centres, shape ``(Q, 2)``, float32, in ab units (row-major over a, then b).
    """
    steps = torch.arange(-limit, limit + 1e-6, grid, dtype=torch.float64)
    a, b = torch.meshgrid(steps, steps, indexing="ij")
    ab = torch.stack([a.reshape(-1), b.reshape(-1)], dim=0)  # (2, N)
    L = torch.linspace(0, 100, 101, dtype=torch.float64)
    lab = torch.cat(
        [L.view(-1, 1).expand(-1, ab.shape[1])[None], ab[:, None, :].expand(-1, L.numel(), -1)], dim=0
    )  # (3, nL, N)
    ok = in_gamut(lab, tol=0.0).any(dim=0)
    return ab[:, ok].T.contiguous().float()
