"""Pick the experts' decoding (temperature, prior correction) on their own validation photos, not on mixed/.

For each (temperature, prior correction) pair, each expert colours N validation photos of its own
domain, spread evenly over the sorted folder (so every class is in), and the script prints mean
CIEDE2000, PSNR and the colourfulness ratio to the ground truth, per expert and averaged (and
no colour's PSNR and CIEDE2000 on the same photos).

The shipped prior correction is the largest on the grid at which every expert keeps at least half
of the ground truth's colourfulness (CF ratio >= 0.5) at the shipped temperature: past that,
CIEDE2000 falls further but the photos turn grey. The script prints that pick for each temperature.

    python tools/tune_decoding.py --model MODEL_DIR --data ../shared/data [--n 100] \
        [--temperatures 0.5] [--prior-corrections 0 0.25 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..colorizer import ExpertColorizer
from .domains import link_validation_photos
from .loop import evaluate

__all__ = ["pick_prior_correction", "get_args_parser", "main"]


def pick_prior_correction(rows: list[dict], temperature: float, min_cf_ratio: float = 0.5) -> float | None:
    """The largest prior correction at which every expert keeps ``min_cf_ratio`` of the true colourfulness.

    Args:
        rows: one dict per (temperature, prior correction, expert) with keys ``T``,
            ``prior_correction``, ``expert`` and ``cf_ratio``.
        temperature: the temperature the experts ship with.
        min_cf_ratio: colourfulness floor, as a fraction of the ground truth's.

    Returns:
        The chosen prior correction, or None when no value on the grid keeps every expert above the floor.
    """
    ok = {}
    for r in rows:
        if r["T"] == temperature:
            a = r["prior_correction"]
            ok[a] = ok.get(a, True) and r["cf_ratio"] >= min_cf_ratio
    passing = [a for a, good in ok.items() if good]
    return max(passing) if passing else None


def get_args_parser() -> argparse.ArgumentParser:
    """Arguments of the decoding grid (``tools/tune_decoding.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory whose experts are decoded")
    p.add_argument("--data", required=True, help="the shared data folder (each domain's validation photos)")
    p.add_argument("--n", type=int, default=100, help="validation photos per expert (default 100)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.5], metavar="T",
                   help="annealed-mean temperatures to try (default 0.5)")
    p.add_argument("--prior-corrections", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0], metavar="A",
                   help="prior corrections to try, 0 vivid as trained ... 1 calibrated (default 0 0.25 0.5 0.75 1)")
    p.add_argument("--min-cf-ratio", type=float, default=0.5, help="colourfulness floor of the selection rule")
    return p


def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Score every (temperature, prior correction) on each expert's photos; print the rows, the means
    and the pick of :func:`pick_prior_correction` for each temperature.

    Returns:
        One row per (temperature, prior correction, expert): ``T``, ``prior_correction``, ``expert``,
        ``images``, ``psnr``, ``ciede2000``, ``cf_ratio``.
    """
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    data = Path(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {name: link_validation_photos(data, name, args.n, Path(tmp) / name) for name in colorizer.experts}
        for name in colorizer.experts:  # the no-colour floor on the same photos
            o = evaluate(colorizer, folders[name], variants=["gray"], progress=False)["results"]["gray"]["overall"]
            print(json.dumps({"expert": name, "gray_psnr": o["psnr"], "gray_ciede2000": o["ciede2000"]}), flush=True)
        for t in args.temperatures:
            for a in args.prior_corrections:
                for name, expert in colorizer.experts.items():
                    # Expert.config written from outside until Expert has a method for decoding settings.
                    expert.with_decoding(temperature=t)
                    expert.with_prior_correction(a)
                    r = evaluate(colorizer, folders[name], variants=[f"expert:{name}"], progress=False)
                    o = r["results"][f"expert:{name}"]["overall"]
                    rows.append({"T": t, "prior_correction": a, "expert": name, "images": o["images"],
                                 "psnr": o["psnr"], "ciede2000": o["ciede2000"], "cf_ratio": o["cf_ratio"]})
                    print(json.dumps(rows[-1]), flush=True)
    print("| T | prior correction | expert | images | PSNR | ΔE00 | CF ratio |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['T']} | {r['prior_correction']} | {r['expert']} | {r['images']} | {r['psnr']:.2f} | "
              f"{r['ciede2000']:.2f} | {r['cf_ratio']:.2f} |")
    print("\nMean over experts:\n| T | prior correction | PSNR | ΔE00 | CF ratio |\n|---|---|---|---|---|")
    for t in args.temperatures:
        for a in args.prior_corrections:
            sel = [r for r in rows if r["T"] == t and r["prior_correction"] == a]
            mean = {k: float(np.mean([r[k] for r in sel])) for k in ("psnr", "ciede2000", "cf_ratio")}
            print(f"| {t} | {a} | {mean['psnr']:.2f} | {mean['ciede2000']:.2f} | {mean['cf_ratio']:.2f} |")
    for t in args.temperatures:
        pick = pick_prior_correction(rows, t, args.min_cf_ratio)
        print(f"\nT {t}: largest prior correction keeping every expert at CF ratio >= {args.min_cf_ratio}: "
              + ("none on the grid" if pick is None else str(pick)))
    return rows
