"""Evaluation reports: the report dictionary, its Markdown tables, and ``report.json``/``report.md`` on disk."""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..modeling import write_json
from ..segmentation.categories import ROUTING_GROUPS
from .scores import aggregate

__all__ = ["build_report", "to_markdown", "routing_markdown", "write_report", "write_args"]


def build_report(
    per_image: Mapping[str, Mapping[str, Any]],
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike | None,
    model: str,
    band_width: int = 8,
) -> dict[str, Any]:
    """The report :func:`~expertcolor.evaluation.evaluate` returns, from per-image metrics
    ``{variant: {image: image_metrics}}``, for callers that colorize photos their own way."""
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


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return "inf" if math.isinf(x) else f"{x:.{digits}f}"
    return str(x)


def to_markdown(report: Mapping[str, Any]) -> str:
    """Markdown tables (overall, per group, boundary band) of an evaluation report."""
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


def routing_markdown(routing: Mapping[str, Any]) -> str:
    """Markdown table of :func:`~expertcolor.evaluation.routing.evaluate_routing` results."""
    lines = [
        f"## Routing groups on grayscale input ({routing['images']} images, IoU pooled over pixels)",
        "",
        "| labels | pixel acc | mIoU | " + " | ".join(ROUTING_GROUPS) + " |",
        "|---|---|---|" + "---|" * len(ROUTING_GROUPS),
    ]
    for k in ("segmenter", "teacher"):
        if k in routing:
            r = routing[k]
            ious = " | ".join(_fmt(r["iou"][g], 3) for g in ROUTING_GROUPS)
            lines.append(f"| {k} | {_fmt(r['pixel_acc'], 3)} | {_fmt(r['miou'], 3)} | {ious} |")
    if "segmenter_voc" in routing:
        lines += ["", f"Segmenter VOC mIoU over the classes present: {_fmt(routing['segmenter_voc']['miou'], 3)}"]
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
    """Write ``report.json`` (NaN/inf as ``null``) and ``report.md`` (with the routing table when the
    report has one) into ``out_dir``.

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


def write_args(args: argparse.Namespace, out_dir: str | os.PathLike) -> Path:
    """Write the resolved command-line arguments (and the command line) to ``out_dir/args.json``."""
    from ..train.options import resolved_args  # the training scripts' record, one format for every run

    path = Path(out_dir) / "args.json"
    write_json(path, resolved_args(args))
    return path
