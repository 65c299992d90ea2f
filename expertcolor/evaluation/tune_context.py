"""Choose the context merge on validation photos: how much should a photo's main subject colour its surroundings?

For each domain's validation photos (the ones ``tune_decoding.py`` and ``in_domain.py`` use) the
segmenter and every expert run once per photo; then every merge on the grid is applied to the cached
outputs and finished exactly as ``ExpertColorizer.colorize`` finishes a photo (guided upsampling,
gamut mapping), and scored against the true colours (mean CIEDE2000 per photo, colourfulness ratio).
The domain's expert alone on the whole photo and the generalist are scored beside them. Prints one
table per domain with the per-photo difference to ``soft`` and its 95% bootstrap interval::

    python tools/tune_context.py --model MODEL_DIR --data ../shared/data --out eval/context [--n 200]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..argtypes import positive_int
from ..colorizer import ExpertColorizer, _resize
from ..experts import Expert
from ..io import DecodedImage, decode_inputs, encode_output, open_image
from ..merge import blend, create_merge
from .domains import validation_photos
from .report import write_args
from .stats import paired_bootstrap
from .variants import default_generalist_dir

__all__ = ["GRID", "run_domain", "get_args_parser", "main"]

#: The grid: (label, merge name, parameters).
GRID: list[tuple[str, str, dict]] = [
    ("soft", "soft", {}),
    *[(f"dominant c={c}", "context", {"strength": c}) for c in (0.25, 0.5, 0.75, 1.0)],
    ("dominant c=1 min_share=0.15", "context", {"strength": 1.0, "min_share": 0.15}),
    *[(f"share c={c}", "context", {"strength": c, "mode": "share"}) for c in (0.5, 1.0)],
]


def get_args_parser() -> argparse.ArgumentParser:
    """Arguments of the context-merge grid (``tools/tune_context.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded one)")
    p.add_argument("--generalist", default=None, help="generalist expert directory (default: the bundled one)")
    p.add_argument("--data", required=True, type=Path, help="the shared data folder")
    p.add_argument("--out", required=True, type=Path, help="folder for results.json (created)")
    p.add_argument("--n", type=positive_int, default=200, help="validation photos per domain")
    p.add_argument("--domains", nargs="+", default=["birds", "animals", "faces", "places"])
    return p


def _score(
    colorizer: ExpertColorizer, ab: torch.Tensor, small: torch.Tensor, decoded: DecodedImage, gt: np.ndarray
) -> tuple[float, float]:
    """Mean CIEDE2000 and colourfulness of working-resolution ``ab`` finished as ``colorize`` finishes it."""
    rgb = encode_output(colorizer._full_resolution_rgb(ab, small, decoded.L), decoded)
    out = np.asarray(rgb)[..., :3]
    return float(metrics.ciede2000_map(out, gt).mean()), metrics.colorfulness(out)


@torch.no_grad()
def run_domain(colorizer: ExpertColorizer, generalist: Expert, data: Path, domain: str, n: int) -> dict[str, Any]:
    """Every merge on :data:`GRID`, the domain's expert alone, the generalist and no colour on ``n``
    validation photos of ``domain``.

    Returns:
        ``{label: {"ciede2000", "cf_ratio", "experts_run", "diff_vs_soft", "per_photo"}}``.
    """
    names = list(colorizer.routing.experts)
    bg = names.index(colorizer.routing.default)
    merges = [(label, create_merge(name, **params)) for label, name, params in GRID]
    scores: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in GRID}
    scores |= {"expert alone": [], "generalist": [], "gray": []}
    cf_true, active = [], {label: [] for label, _, _ in GRID}
    for path in validation_photos(data, domain, n):
        gt = np.asarray(open_image(path).convert("RGB"))  # read once: the truth, and its L (as evaluate does)
        decoded = decode_inputs(gt)[0]
        cf_true.append(metrics.colorfulness(gt))
        small = _resize(decoded.L, colorizer.working_shape(*decoded.L.shape[-2:]))
        routed = colorizer.routing(colorizer.segment(small))
        ab_all = torch.stack([colorizer.experts[e](small) for e in names], dim=1)
        for label, merge in merges:
            w = merge(routed, small / 100.0, background=bg, experts=names)
            scores[label].append(_score(colorizer, blend(ab_all, w), small, decoded, gt))
            active[label].append(int((w.flatten(2) > 0).any(-1).sum()))
        own = domain if domain in names else colorizer.routing.default
        scores["expert alone"].append(_score(colorizer, ab_all[:, names.index(own)], small, decoded, gt))
        scores["generalist"].append(_score(colorizer, generalist(small), small, decoded, gt))
        scores["gray"].append(_score(colorizer, torch.zeros_like(ab_all[:, 0]), small, decoded, gt))
    mean_true = float(np.mean(cf_true))
    rows = {}
    soft = {i: s[0] for i, s in enumerate(scores["soft"])}
    for label, s in scores.items():
        de = {i: v[0] for i, v in enumerate(s)}
        rows[label] = {
            "ciede2000": float(np.mean(list(de.values()))),
            "cf_ratio": float(np.mean([v[1] for v in s]) / max(mean_true, 1e-9)),
            "experts_run": float(np.mean(active[label])) if label in active else None,
            "diff_vs_soft": paired_bootstrap(de, soft, True) if label != "soft" else None,
            "per_photo": [v[0] for v in s],
        }
    return rows


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Score the grid on every domain; print one table per domain and write ``args.out/results.json``
    (and ``args.json``)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    colorizer = ExpertColorizer.from_pretrained(args.model) if args.model else ExpertColorizer.from_pretrained()
    generalist = Expert.from_pretrained(args.generalist or default_generalist_dir()).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    write_args(args, args.out)
    results = {}
    for domain in args.domains:
        rows = run_domain(colorizer, generalist, args.data, domain, args.n)
        results[domain] = rows
        print(f"\n{domain} ({len(rows['soft']['per_photo'])} photos)\n| merge | ΔE00 | CF ratio | experts run | "
              "− soft (95%) |\n|---|---|---|---|---|")
        for label, r in rows.items():
            d = r["diff_vs_soft"]
            diff = f"{d['mean_diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]" if d else ""
            run = f"{r['experts_run']:.2f}" if r["experts_run"] is not None else ""
            print(f"| {label} | {r['ciede2000']:.3f} | {r['cf_ratio']:.3f} | {run} | {diff} |", flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    return results
