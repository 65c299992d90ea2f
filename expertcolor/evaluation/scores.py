"""Scores of colorized photos against their true colours: per photo, per group, and over a set.

Aggregation (also written into every report under ``"aggregation"``):

* overall PSNR, SSIM and CIEDE2000 are computed per image and **averaged over images**
  (``ciede2000`` = mean over images of the per-image mean ΔE00); ``ciede2000_pixel`` pools all
  pixels of the set. On the shared ``mixed/`` set the gray variant gives PSNR 22.62 dB and
  ``ciede2000`` 10.59 (pooled: 10.23).
* per group (pixels of group g in the ground-truth masks, 255 ignored): PSNR and SSIM (mean of
  the SSIM map over the group's pixels) are averaged over the images that contain the group;
  ``ciede2000`` **pools the group's pixels over the set** (``ciede2000_image_mean`` averages per
  image).
* boundary band (pixels within ``band_width`` px of a pixel of another group) vs interior (the other
  non-ignored pixels): pooled pixel means of ΔE00, and their ratio band / interior.
* colourfulness (Hasler & Süsstrunk 2003): mean over images of the output's and of the ground
  truth's; ``delta_cf`` = mean of (output - ground truth); ``cf_ratio`` = mean output / mean GT.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M
from ..segmentation.categories import ROUTING_GROUPS

__all__ = ["group_name", "image_metrics", "aggregate"]


def group_name(value: int) -> str:
    """Display name of a group id in the ground-truth masks (``group<k>`` outside :data:`ROUTING_GROUPS`)."""
    value = int(value)
    return ROUTING_GROUPS[value] if 0 <= value < len(ROUTING_GROUPS) else f"group{value}"


def _group_order(name: str) -> tuple[int, str]:
    return (ROUTING_GROUPS.index(name) if name in ROUTING_GROUPS else 1000, name)


def image_metrics(
    out: np.ndarray,
    gt: np.ndarray,
    groups: np.ndarray | None = None,
    band_width: int = 8,
    lab_gt: np.ndarray | None = None,
    band: np.ndarray | None = None,
) -> dict[str, Any]:
    """All metrics of one colorized image against its ground truth.

    Args:
        out, gt: ``(H, W, 3)`` uint8 RGB.
        groups: optional ``(H, W)`` group ids (255 ignored).
        band_width: boundary band half-width in pixels.
        lab_gt: precomputed ``rgb2lab(gt)``.
        band: precomputed ``boundary_band(groups, band_width)``.

    Returns:
        ``{"psnr", "ssim", "ciede2000", "pixels", "colorfulness", "colorfulness_gt", "delta_cf"}``
        and, with ``groups``, ``"groups": {name: {...same keys...}}``, ``"band"`` and
        ``"interior"`` (``{"ciede2000", "pixels"}``). ``ciede2000`` is the pixel mean.
    """
    out, gt = M.to_uint8(out), M.to_uint8(gt)
    de = M.ciede2000_map(out, gt, lab_b=lab_gt)
    smap = M.ssim_map(out, gt)
    rec: dict[str, Any] = _region(out, gt, de, smap, None)
    rec["ssim"] = M.ssim(out, gt, smap=smap)  # skimage's value (border cropped)
    if groups is None:
        return rec
    valid = groups != M.IGNORE
    rec["groups"] = {group_name(g): _region(out, gt, de, smap, groups == g) for g in np.unique(groups[valid])}
    band = M.boundary_band(groups, band_width) if band is None else band
    rec["band"] = _de_region(de, band & valid)
    rec["interior"] = _de_region(de, ~band & valid)
    return rec


def _de_region(de: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    n = int(mask.sum())
    return {"ciede2000": float(de[mask].mean()) if n else float("nan"), "pixels": n}


def _region(
    out: np.ndarray, gt: np.ndarray, de: np.ndarray, smap: np.ndarray, mask: np.ndarray | None
) -> dict[str, Any]:
    cf, cf_gt = M.colorfulness(out, mask), M.colorfulness(gt, mask)
    return {
        "psnr": M.psnr(out, gt, mask),
        "ssim": M.ssim(out, gt, mask, smap=smap) if mask is not None else float("nan"),
        "ciede2000": float(de.mean() if mask is None else de[mask].mean()),
        "pixels": int(de.size if mask is None else mask.sum()),
        "colorfulness": cf,
        "colorfulness_gt": cf_gt,
        "delta_cf": cf - cf_gt,
    }


def _mean(values: Iterable[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _pooled(records: Sequence[Mapping[str, Any]]) -> float:
    n = sum(r["pixels"] for r in records)
    return float(sum(r["ciede2000"] * r["pixels"] for r in records if r["pixels"]) / n) if n else float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else float("nan")


def _summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    cf = _mean(r["colorfulness"] for r in records)
    cf_gt = _mean(r["colorfulness_gt"] for r in records)
    return {
        "images": len(records),
        "pixels": int(sum(r["pixels"] for r in records)),
        "psnr": _mean(r["psnr"] for r in records),
        "ssim": _mean(r["ssim"] for r in records),
        "ciede2000": _pooled(records),
        "ciede2000_image_mean": _mean(r["ciede2000"] for r in records),
        "colorfulness": cf,
        "colorfulness_gt": cf_gt,
        "delta_cf": _mean(r["delta_cf"] for r in records),
        "cf_ratio": _ratio(cf, cf_gt),
    }


def aggregate(per_image: Mapping[str, Mapping[str, Any]], band_width: int = 8) -> dict[str, Any]:
    """Set-level summary of one variant from its per-image records (see the module docstring).

    Args:
        per_image: ``{image: image_metrics(...)}``.
        band_width: the band width the records were scored with (reported, not used).

    Returns:
        ``{"overall": {...}}`` plus, when some records have groups, ``"groups": {name: {...}}`` and
        ``"boundary": {"width", "images", "band", "interior", "ratio"}``.
    """
    recs = list(per_image.values())
    overall = _summary(recs)
    # Overall ΔE00 is the mean over images of per-image means (the published convention); the
    # pooled pixel mean is kept beside it.
    overall["ciede2000_pixel"] = overall["ciede2000"]
    overall["ciede2000"] = overall.pop("ciede2000_image_mean")
    report: dict[str, Any] = {"overall": overall}
    with_groups = [r for r in recs if "groups" in r]
    if not with_groups:
        return report
    names = sorted({g for r in with_groups for g in r["groups"]}, key=_group_order)
    report["groups"] = {g: _summary([r["groups"][g] for r in with_groups if g in r["groups"]]) for g in names}
    band = _pooled([r["band"] for r in with_groups])
    interior = _pooled([r["interior"] for r in with_groups])
    report["boundary"] = {
        "width": band_width,
        "images": len(with_groups),
        "band": {"ciede2000": band, "pixels": sum(r["band"]["pixels"] for r in with_groups)},
        "interior": {"ciede2000": interior, "pixels": sum(r["interior"]["pixels"] for r in with_groups)},
        "ratio": _ratio(band, interior),
    }
    return report
