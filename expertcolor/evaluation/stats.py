"""How sure is a difference between two evaluated variants? A paired bootstrap over photos.

Reads the ``report.json`` that ``expertcolor evaluate`` writes and, for two variants (from one report
or two), resamples the photos both have with replacement and reports the mean per-photo difference
``A - B`` with its percentile interval, and on how many photos A is better. Several reports for one
side (one per training seed) are averaged per photo first, so the interval is that of the seed means;
``--group`` compares the per-photo means inside one ground-truth group::

    python tools/paired_bootstrap.py eval/main/report.json --a routed --b generalist
    python tools/paired_bootstrap.py new/report.json --a routed --b routed --b-report old/report.json
    python tools/paired_bootstrap.py eval/main/report.json --a routed --b gray --metric psnr
    python tools/paired_bootstrap.py s0.json s1.json s2.json --a routed --b generalist \
        --b-report g0.json g1.json g2.json --group person
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LOWER_IS_BETTER", "per_photo", "seed_mean", "paired_bootstrap", "get_args_parser", "main"]

#: Per-photo metrics the bootstrap compares, and whether a lower value is better.
LOWER_IS_BETTER = {"ciede2000": True, "psnr": False, "ssim": False}


def get_args_parser() -> argparse.ArgumentParser:
    """Arguments of the paired bootstrap (``tools/paired_bootstrap.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, nargs="+",
                   help="report.json of expertcolor evaluate holding variant A (several: averaged per photo)")
    p.add_argument("--a", required=True, help="variant A, e.g. routed")
    p.add_argument("--b", required=True, help="variant B, e.g. generalist, gray, expert:places")
    p.add_argument("--b-report", type=Path, nargs="+", default=None,
                   help="report.json holding B (several: averaged per photo; default: the reports holding A)")
    p.add_argument("--group", default=None, help="compare inside this group only (background, person, bird, animal)")
    p.add_argument("--metric", default="ciede2000", choices=sorted(LOWER_IS_BETTER), help="per-photo metric")
    p.add_argument("--n", type=int, default=10000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95, help="interval coverage")
    return p


def per_photo(report: dict[str, Any], variant: str, metric: str, group: str | None = None) -> dict[str, float]:
    """``{photo: value}`` of ``metric`` for ``variant``, over the whole photo or inside ``group``.

    Raises:
        KeyError: naming the variants the report has, when ``variant`` is not among them.
    """
    per_image = report.get("per_image", {})
    if variant not in per_image:
        raise KeyError(f"variant {variant!r} not in the report; it has {sorted(per_image)}")
    out = {}
    for name, v in per_image[variant].items():
        if group is not None:
            v = v.get("groups", {}).get(group, {})
        if v.get(metric) is not None:
            out[name] = float(v[metric])
    return out


def seed_mean(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per photo, the mean over several runs (seeds) of one variant, on the photos every run has."""
    names = set.intersection(*(set(r) for r in runs))
    return {k: float(np.mean([r[k] for r in runs])) for k in names}


def paired_bootstrap(
    a: dict[str, float], b: dict[str, float], lower_is_better: bool, n: int = 10000, seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Mean of ``a - b`` over the photos both have, its bootstrap interval, and A's wins.

    Args:
        a, b: ``{photo: value}`` of the two variants.
        lower_is_better: whether A wins a photo with the lower value.
        n: bootstrap resamples.
        seed: random seed of the resampling.
        level: interval coverage.

    Returns:
        ``{"photos", "mean_diff", "lo", "hi", "a_better"}``.

    Raises:
        ValueError: when the two share no photo.
    """
    names = sorted(set(a) & set(b))
    if not names:
        raise ValueError("the two variants share no photo")
    d = np.array([a[k] - b[k] for k in names])
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    wins = int((d < 0).sum() if lower_is_better else (d > 0).sum())
    return {"photos": len(d), "mean_diff": float(d.mean()), "lo": float(lo), "hi": float(hi), "a_better": wins}


def main(args: argparse.Namespace) -> dict[str, float]:
    """Compare ``args.a`` with ``args.b`` and print the difference with its interval.

    Raises:
        KeyError: for a variant missing from a report.
        ValueError: when the variants share no photo.
        FileNotFoundError: for a missing report.
    """
    reports = [json.loads(p.read_text()) for p in args.report]
    others = [json.loads(p.read_text()) for p in args.b_report] if args.b_report else reports
    a = seed_mean([per_photo(r, args.a, args.metric, args.group) for r in reports])
    b = seed_mean([per_photo(r, args.b, args.metric, args.group) for r in others])
    r = paired_bootstrap(a, b, LOWER_IS_BETTER[args.metric], args.n, args.seed, args.level)
    where = f" in {args.group}" if args.group else ""
    runs = f" (runs: {len(reports)} vs {len(others)})" if len(reports) > 1 or len(others) > 1 else ""
    print(f"{args.metric}{where} {args.a} - {args.b}{runs}: {r['mean_diff']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}] "
          f"({args.level:.0%} bootstrap over {r['photos']} photos, {args.n} resamples); "
          f"{args.a} better on {r['a_better']} of {r['photos']}")
    return r
