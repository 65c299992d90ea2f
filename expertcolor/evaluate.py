"""Evaluate colorization against colour photos, and render routing maps for inspection.

Each colour photo is reduced to its lightness L, colorized by one or more *variants*, and compared
with its true colours (8-bit RGB at full resolution):

* ``"routed"``: the colorizer itself (segmentation-routed experts, merged);
* ``"expert:<name>"``: one of the colorizer's experts colouring the whole photo (same working
  resolution, chroma upsampling and gamut mapping as the routed model);
* ``"generalist"``: an extra expert directory (trained on everything) colouring the whole photo;
* ``"gray"``: ``ab = 0`` (the photo's own lightness, no colour) — the floor to beat.

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

import json
import math
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from . import metrics as M
from .color import lab_to_rgb, lab_to_rgb_gamut
from .colorizer import ColorizationResult, ExpertColorizer
from .datasets import list_images as _list_images
from .datasets.base import MIN_CHROMA, mean_chroma
from .experts import Expert
from .io import decode_inputs, encode_output, open_image
from .merge import upsample_ab
from .segmentation import RoutingTable, Segmenter

__all__ = [
    "GROUP_NAMES",
    "IMAGE_EXTENSIONS",
    "default_generalist_dir",
    "single_expert_colorizer",
    "resolve_variants",
    "build_variants",
    "gray_rgb",
    "list_images",
    "image_metrics",
    "evaluate",
    "build_report",
    "Sample",
    "load_sample",
    "to_markdown",
    "write_report",
    "expert_color",
    "expert_rgb",
    "routing_overlay",
    "resize_L",
    "label_font",
    "percent",
    "group_name",
    "aggregate",
]

#: Names of the routing groups in the ground-truth masks (``mixed/groups``).
GROUP_NAMES: dict[int, str] = {0: "background", 1: "person", 2: "bird", 3: "animal"}

#: File extensions taken as images when listing folders.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")

Variant = Callable[[np.ndarray], np.ndarray]


# -- variants -----------------------------------------------------------------------------------------
def default_generalist_dir() -> Path | None:
    """``expertcolor/pretrained/generalist`` inside the installed package, when it holds an expert."""
    path = Path(__file__).resolve().parent / "pretrained" / "generalist"
    return path if (path / "config.json").is_file() else None


class _WholeImageSegmenter(Segmenter):
    """A segmenter with one category covering every pixel (routes a whole photo to one expert)."""

    categories = ("all",)

    def __init__(self) -> None:
        super().__init__()

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Probability 1 for the single category: ``(B, 1, H, W)``."""
        self._check_input(L)
        return torch.ones_like(L)


def single_expert_colorizer(expert: Expert, like: ExpertColorizer) -> ExpertColorizer:
    """A colorizer in which ``expert`` colours every pixel.

    It shares ``like``'s working size, chroma upsampling, device and batch size, so the only
    difference from the routed model is the routing (no segmenter runs).
    """
    name = expert.name
    routing = RoutingTable({}, default=name, categories=_WholeImageSegmenter.categories, experts=[name])
    return ExpertColorizer(
        {name: expert},
        _WholeImageSegmenter(),
        routing,
        merge="hard",
        working_size=like.working_size,
        upsample=like.upsample,
        device=like.device,
        batch_size=like.batch_size,
    )


def resolve_variants(
    spec: str | Sequence[str] | None, expert_names: Iterable[str], generalist_available: bool
) -> list[str]:
    """Expand a variant list: ``"experts"`` becomes ``expert:<name>`` for every expert.

    A comma-separated string (the CLI's ``--compare``) lists variants compared *with* the routed
    model, so ``"routed"`` comes first; ``None`` means ``routed`` plus ``generalist`` (when one is
    available), ``experts`` and ``gray``. A list or tuple is taken as given (``["gray"]`` evaluates
    only the gray floor).

    Raises:
        ValueError: for an unknown variant or expert, or ``generalist`` without a generalist.
    """
    names = list(expert_names)
    out: list[str] = []
    if spec is None:
        items = ["routed", *(["generalist"] if generalist_available else []), "experts", "gray"]
    elif isinstance(spec, str):
        items = ["routed", *(s.strip() for s in spec.split(",") if s.strip())]
    else:
        items = list(spec)
    if not items:
        raise ValueError("no variants to evaluate")
    for item in items:
        if item == "experts":
            new = [f"expert:{n}" for n in names]
        elif item.startswith("expert:"):
            if item.split(":", 1)[1] not in names:
                raise ValueError(f"unknown expert in {item!r}; the model has {names}")
            new = [item]
        elif item == "generalist":
            if not generalist_available:
                raise ValueError(
                    "variant 'generalist' needs a generalist expert directory (--generalist DIR); "
                    "none is bundled with this installation"
                )
            new = [item]
        elif item in ("routed", "gray"):
            new = [item]
        else:
            raise ValueError(f"unknown variant {item!r}; use routed, gray, generalist, experts or expert:<name>")
        out += [v for v in new if v not in out]
    return out


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    """The ``ab = 0`` rendering of an image: its own lightness as neutral gray, ``(H, W, 3)`` uint8."""
    decoded = decode_inputs(np.ascontiguousarray(M.to_uint8(rgb)))[0]
    L = decoded.L
    lab = torch.cat([L, torch.zeros(1, 2, *L.shape[-2:], dtype=L.dtype)], dim=1)
    return encode_output(lab_to_rgb(lab), decoded)


def build_variants(
    colorizer: ExpertColorizer,
    variants: Sequence[str],
    generalist: str | os.PathLike | Expert | None = None,
    saturation: float = 1.0,
    prior_correction: float | None = None,
) -> dict[str, Variant]:
    """Functions ``rgb (H, W, 3) uint8 -> colorized rgb (H, W, 3) uint8`` for each variant name.

    ``prior_correction`` (when not ``None``) is set on the generalist; the experts keep the
    colorizer's own setting.

    Raises:
        ValueError: for an unknown variant, or ``generalist`` without a generalist.
    """

    def run_with(c: ExpertColorizer) -> Variant:
        return lambda rgb: c.colorize(rgb, saturation=saturation)

    out: dict[str, Variant] = {}
    for v in variants:
        if v == "routed":
            out[v] = run_with(colorizer)
        elif v == "gray":
            out[v] = gray_rgb
        elif v.startswith("expert:"):
            name = v.split(":", 1)[1]
            if name not in colorizer.experts:
                raise ValueError(f"unknown expert {name!r}; the model has {list(colorizer.experts)}")
            out[v] = run_with(single_expert_colorizer(colorizer.experts[name], colorizer))
        elif v == "generalist":
            if generalist is None:
                raise ValueError("variant 'generalist' needs a generalist expert (directory)")
            expert = generalist if isinstance(generalist, Expert) else Expert.from_pretrained(generalist)
            if prior_correction is not None and expert.config.head == "classification":
                expert.with_prior_correction(prior_correction)
            out[v] = run_with(single_expert_colorizer(expert, colorizer))
        else:
            raise ValueError(f"unknown variant {v!r}")
    return out


# -- per-image metrics --------------------------------------------------------------------------------
def list_images(directory: str | os.PathLike) -> list[Path]:
    """Image files below ``directory`` (recursive, sorted, hidden files skipped).

    Raises:
        NotADirectoryError: if ``directory`` is not a folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"image folder not found: {directory}")
    return _list_images(directory, extensions=IMAGE_EXTENSIONS)


def _load_groups(groups_dir: Path | None, image: Path, images_dir: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if groups_dir is None:
        return None
    rel = image.relative_to(images_dir).with_suffix(".png")
    path = groups_dir / rel
    if not path.is_file():
        return None
    with Image.open(path) as im:
        groups = np.asarray(im)
    if groups.ndim != 2:
        raise ValueError(f"{path}: group mask must be a single-channel label image, got shape {groups.shape}")
    if groups.shape != shape:
        raise ValueError(f"{path}: mask size {groups.shape[::-1]} differs from the photo's {shape[::-1]}")
    return groups


def group_name(value: int) -> str:
    """Display name of a group id (``group<k>`` for ids outside :data:`GROUP_NAMES`)."""
    return GROUP_NAMES.get(int(value), f"group{int(value)}")


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


# -- aggregation --------------------------------------------------------------------------------------
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
    """Set-level summary of one variant from its per-image records (see the module docstring)."""
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


def _group_order(name: str) -> tuple[int, str]:
    ids = {v: k for k, v in GROUP_NAMES.items()}
    return (ids.get(name, 1000), name)


# -- the evaluation loop ------------------------------------------------------------------------------
@dataclass
class Sample:
    name: str
    rgb: np.ndarray
    groups: np.ndarray | None
    lab: np.ndarray
    band: np.ndarray | None


def load_sample(path: Path, images_dir: Path, groups_dir: Path | None, band_width: int) -> Sample:
    """A photo with its group mask (``None`` without one), boundary band and CIELAB, for the metrics."""
    rgb = np.asarray(open_image(path).convert("RGB"))
    groups = _load_groups(groups_dir, path, images_dir, rgb.shape[:2])
    band = M.boundary_band(groups, band_width) if groups is not None else None
    return Sample(path.relative_to(images_dir).as_posix(), rgb, groups, M.rgb_to_lab(rgb), band)


def evaluate(
    colorizer: ExpertColorizer,
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike | None = None,
    variants: str | Sequence[str] | None = ("routed", "gray"),
    generalist: str | os.PathLike | Expert | None = None,
    band_width: int = 8,
    max_images: int | None = None,
    saturation: float = 1.0,
    progress: bool | None = None,
    prior_correction: float | None = None,
) -> dict[str, Any]:
    """Colorize the L of every colour photo in ``images_dir`` and compare with the true colours.

    Args:
        colorizer: the routed model (also supplies the experts for ``expert:<name>`` variants).
        images_dir: folder of colour photos (searched recursively).
        groups_dir: folder of group masks ``<relative path>.png`` (0 background, 1 person, 2 bird,
            3 animal, 255 ignore); photos without a mask get overall metrics only.
        variants: a list of names (see module docstring; ``"experts"`` expands to every expert), or a
            comma-separated string of variants to compare with ``"routed"`` (see
            :func:`resolve_variants`); ``None``: routed, generalist (when available), experts, gray.
        generalist: expert directory (or :class:`Expert`) for the ``generalist`` variant; default
            :func:`default_generalist_dir`.
        band_width: boundary band half-width in pixels.
        max_images: evaluate only the first N photos (sorted by path).
        saturation: chroma multiplier for the model variants.
        progress: show a progress bar (``None``: only on a terminal).
        prior_correction: decode the generalist with this ``prior_correction`` (pass the value
            the routed model's experts use, so both decode alike); ``None``: its own.

    Returns:
        ``{"images_dir", "groups_dir", "variants": [...], "aggregation": {...},
        "results": {variant: {"overall", "groups", "boundary"}}, "per_image": {variant: {image: {...}}},
        "grayscale_photos": [image, ...]}``; the last lists the photos without colour (their metrics
        reward no colour; :func:`to_markdown` warns about them).

    Raises:
        NotADirectoryError: if a folder is missing.
        ValueError: for no images, unknown variants or mismatched masks.
    """
    images_dir = Path(images_dir)
    groups_path = Path(groups_dir) if groups_dir is not None else None
    if groups_path is not None and not groups_path.is_dir():
        raise NotADirectoryError(f"group mask folder not found: {groups_path}")
    paths = list_images(images_dir)[:max_images]
    if not paths:
        raise ValueError(f"no images found in {images_dir}")
    if generalist is None:
        generalist = default_generalist_dir()
    names = resolve_variants(variants, colorizer.experts, generalist is not None)
    runners = build_variants(colorizer, names, generalist, saturation, prior_correction)
    per_image: dict[str, dict[str, Any]] = {v: {} for v in names}
    grayscale: list[str] = []
    for path in tqdm(paths, desc="evaluate", unit="img", disable=None if progress is None else not progress):
        s = load_sample(path, images_dir, groups_path, band_width)
        if mean_chroma(Image.fromarray(s.rgb)) < MIN_CHROMA:  # the rule training skips them by
            grayscale.append(s.name)
        for v, run in runners.items():
            out = np.asarray(run(s.rgb))[..., :3]
            per_image[v][s.name] = image_metrics(out, s.rgb, s.groups, band_width, lab_gt=s.lab, band=s.band)
    report = build_report(per_image, images_dir, groups_path, repr(colorizer), band_width)
    # A black-and-white "ground truth" has no colour to compare with: it rewards no colour.
    report["grayscale_photos"] = grayscale
    return report


def build_report(
    per_image: Mapping[str, Mapping[str, Any]],
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike | None,
    model: str,
    band_width: int = 8,
) -> dict[str, Any]:
    """The report :func:`evaluate` returns, from per-image metrics ``{variant: {image: image_metrics}}``.

    For callers that colorize the photos their own way (``tools/oracle_routing.py``) but report
    them like :func:`evaluate`.
    """
    names = list(per_image)
    return {
        "images_dir": str(images_dir),
        "groups_dir": str(groups_dir) if groups_dir is not None else None,
        "model": model,
        "variants": names,
        "aggregation": {
            "psnr": "per image, mean over images (per group: over images containing the group)",
            "ssim": "per image, mean over images (per group: mean of the SSIM map over the group's pixels)",
            "ciede2000": "overall: mean over images of per-image mean; groups/band/interior: pixel mean over the set",
            "ciede2000_pixel": "pixel mean over all pixels of the set",
            "colorfulness": "Hasler & Suesstrunk 2003, mean over images; delta_cf = mean(output - gt); "
            "cf_ratio = mean(output) / mean(gt)",
            "band": f"pixels within {band_width} px of a pixel of another group (255 counts as a group, "
            "ignored pixels excluded); interior = the other non-ignored pixels",
        },
        "results": {v: aggregate(per_image[v], band_width) for v in names},
        "per_image": per_image,
    }


# -- routing accuracy ---------------------------------------------------------------------------------
#: Ground-truth group of each default expert (0 background/other, 1 person, 2 bird, 3 animal).
EXPERT_GROUPS: dict[str, int] = {"faces": 1, "birds": 2, "animals": 3}


def _category_groups(colorizer: ExpertColorizer) -> np.ndarray:
    """Group of each segmentation category under the colorizer's routing table."""
    table = colorizer.routing
    return np.array([EXPERT_GROUPS.get(table.expert_for(c), 0) for c in table.categories], dtype=np.int64)


def _iou_table(conf: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return {
        "pixel_acc": float(inter.sum() / max(conf.sum(), 1)),
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else None,
    }


def evaluate_routing(
    colorizer: ExpertColorizer,
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike,
    teacher_dir: str | os.PathLike | None = None,
    voc_dir: str | os.PathLike | None = None,
    max_images: int | None = None,
) -> dict[str, Any]:
    """How well the colorizer's segmenter routes, on grayscale input, against ground-truth groups.

    The segmenter sees only L (at the colorizer's working size); its argmax category is mapped to a
    routing group through the routing table (faces -> person, birds -> bird, animals -> animal, other
    experts -> background/other) and upsampled (nearest) to full resolution. IoU per group is pooled
    over all pixels of the set; 255 in a mask is ignored.

    Args:
        colorizer: supplies the segmenter, routing table and working size.
        images_dir: colour photos (only their L is used).
        groups_dir: group masks ``<name>.png`` (0 background, 1 person, 2 bird, 3 animal, 255 ignore).
        teacher_dir: optional reference label maps (VOC ids, e.g. a colour teacher run on grayscale
            input) scored the same way.
        voc_dir: optional VOC-21 ground truth, for the segmenter's VOC mIoU (classes present in the set).

    Returns:
        ``{"images", "segmenter": {...}, "teacher": {...}?, "segmenter_voc": {...}?}`` with
        ``pixel_acc``, per-group ``iou`` and ``miou``.
    """
    images_dir, groups_dir = Path(images_dir), Path(groups_dir)
    cat_groups = _category_groups(colorizer)
    n_cat = len(cat_groups)
    conf = {"segmenter": np.zeros((4, 4), np.int64)}
    if teacher_dir is not None:
        conf["teacher"] = np.zeros((4, 4), np.int64)
    voc_conf = np.zeros((n_cat, n_cat), np.int64)
    used = 0
    for path in list_images(images_dir)[:max_images]:
        rel = path.relative_to(images_dir).with_suffix(".png")
        if not (groups_dir / rel).is_file():
            continue
        d = decode_inputs(path)[0]
        gt = np.asarray(Image.open(groups_dir / rel)).astype(np.int64)
        L = d.L.to(colorizer.device)
        with torch.inference_mode():
            small = resize_L(L, colorizer.working_size)
            probs = colorizer.segment(small)
            labels = (
                torch.nn.functional.interpolate(
                    probs.argmax(1, keepdim=True).float(), size=L.shape[-2:], mode="nearest"
                )[0, 0]
                .long()
                .cpu()
                .numpy()
            )
        valid = gt != 255
        preds = {"segmenter": cat_groups[labels]}
        if teacher_dir is not None:
            teacher = np.asarray(Image.open(Path(teacher_dir) / rel)).astype(np.int64)
            preds["teacher"] = cat_groups[np.clip(teacher, 0, n_cat - 1)]
        for k, pred in preds.items():
            conf[k] += np.bincount(4 * gt[valid] + pred[valid], minlength=16).reshape(4, 4)
        if voc_dir is not None and (Path(voc_dir) / rel).is_file():
            voc = np.asarray(Image.open(Path(voc_dir) / rel)).astype(np.int64)
            ok = voc != 255
            voc_conf += np.bincount(n_cat * voc[ok] + labels[ok], minlength=n_cat * n_cat).reshape(n_cat, n_cat)
        used += 1
    if used == 0:
        raise ValueError(f"no image in {images_dir} has a group mask in {groups_dir}")
    out: dict[str, Any] = {"images": used}
    out.update({k: _iou_table(c, list(GROUP_NAMES.values())) for k, c in conf.items()})
    if voc_dir is not None:
        present = voc_conf.sum(1) > 0  # classes that occur in the ground truth
        names = [c for c, p in zip(colorizer.segmenter.categories, present) if p]
        sub = voc_conf[np.ix_(present, present)]
        out["segmenter_voc"] = _iou_table(sub, names)
    return out


def routing_markdown(routing: Mapping[str, Any]) -> str:
    """Markdown table of :func:`evaluate_routing` results."""
    lines = [
        f"## Routing groups on grayscale input ({routing['images']} images, IoU pooled over pixels)",
        "",
        "| labels | pixel acc | mIoU | " + " | ".join(GROUP_NAMES.values()) + " |",
        "|---|---|---|" + "---|" * len(GROUP_NAMES),
    ]
    for k in ("segmenter", "teacher"):
        if k in routing:
            r = routing[k]
            ious = " | ".join(_fmt(r["iou"][g], 3) for g in GROUP_NAMES.values())
            lines.append(f"| {k} | {_fmt(r['pixel_acc'], 3)} | {_fmt(r['miou'], 3)} | {ious} |")
    if "segmenter_voc" in routing:
        lines += ["", f"Segmenter VOC mIoU over the classes present: {_fmt(routing['segmenter_voc']['miou'], 3)}"]
    return "\n".join(lines) + "\n"


# -- reports ------------------------------------------------------------------------------------------
def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return "inf" if math.isinf(x) else f"{x:.{digits}f}"
    return str(x)


def to_markdown(report: Mapping[str, Any]) -> str:
    """Markdown tables (overall, per group, boundary band) of an :func:`evaluate` report."""
    res = report["results"]
    lines = [
        f"# Colorization evaluation: `{report.get('images_dir', '')}`",
        "",
        "PSNR/SSIM on 8-bit RGB at full resolution, mean over images. ΔE00 = CIEDE2000: overall = mean "
        "over images of per-image means (pixel-pooled in brackets); per group and band = pixel mean over the "
        "set. CF = colourfulness (Hasler & Süsstrunk), ΔCF = output − ground truth.",
        "",
        "| variant | images | PSNR ↑ | SSIM ↑ | ΔE00 ↓ | CF | CF (GT) | ΔCF | CF ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    gray = report.get("grayscale_photos") or []
    if gray:
        n = next(iter(res.values()))["overall"]["images"]
        shown = ", ".join(f"`{g}`" for g in gray[:5]) + (", ..." if len(gray) > 5 else "")
        lines[4:4] = [f"**Warning:** {len(gray)} of {n} photos are grayscale ({shown}): with no true colours to "
                      "compare with, they reward no colour. Evaluate on colour photos.", ""]
    for v, r in res.items():
        o = r["overall"]
        lines.append(
            f"| {v} | {o['images']} | {_fmt(o['psnr'])} | {_fmt(o['ssim'], 3)} | {_fmt(o['ciede2000'])} "
            f"({_fmt(o['ciede2000_pixel'])}) | {_fmt(o['colorfulness'], 1)} | {_fmt(o['colorfulness_gt'], 1)} | "
            f"{_fmt(o['delta_cf'], 1)} | {_fmt(o['cf_ratio'])} |"
        )
    if any("groups" in r for r in res.values()):
        lines += [
            "",
            "## Per group (ground-truth masks)",
            "",
            "| variant | group | images | pixels | PSNR ↑ | SSIM ↑ | ΔE00 ↓ | CF | CF (GT) | ΔCF |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for v, r in res.items():
            for g, s in r.get("groups", {}).items():
                lines.append(
                    f"| {v} | {g} | {s['images']} | {s['pixels']} | {_fmt(s['psnr'])} | {_fmt(s['ssim'], 3)} | "
                    f"{_fmt(s['ciede2000'])} | {_fmt(s['colorfulness'], 1)} | {_fmt(s['colorfulness_gt'], 1)} | "
                    f"{_fmt(s['delta_cf'], 1)} |"
                )
        width = next((r["boundary"]["width"] for r in res.values() if "boundary" in r), 8)
        lines += [
            "",
            f"## Group boundaries (band = within {width} px of another group)",
            "",
            "| variant | ΔE00 band ↓ | ΔE00 interior ↓ | band / interior |",
            "|---|---|---|---|",
        ]
        for v, r in res.items():
            if "boundary" in r:
                b = r["boundary"]
                band, interior = _fmt(b["band"]["ciede2000"]), _fmt(b["interior"]["ciede2000"])
                lines.append(f"| {v} | {band} | {interior} | {_fmt(b['ratio'], 3)} |")
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    """Replace NaN / infinity by ``None`` (strict JSON) and numpy scalars by Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``report.json`` (NaN/inf as ``null``) and ``report.md`` into ``out_dir``.

    Returns:
        The two paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md = to_markdown(report)
    if "routing" in report:
        md += "\n" + routing_markdown(report["routing"])
    md_path.write_text(md, encoding="utf-8")
    return json_path, md_path


# -- visual inspection: expert colours, expert outputs, routing maps ---------------------------------
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
        result: a :class:`ColorizationResult` (``expert_ab`` holds the experts that ran).
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
        result: a :class:`ColorizationResult`.
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
    """Downscale ``(1, 1, H, W)`` lightness so its long side is at most ``max_side`` (antialiased)."""
    h, w = L.shape[-2:]
    scale = max_side / max(h, w)
    if scale >= 1:
        return L
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(L, size=size, mode="bilinear", align_corners=False, antialias=True)
