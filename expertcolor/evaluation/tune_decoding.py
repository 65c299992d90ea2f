"""Pick the experts' decoding (temperature, prior correction) on their own validation photos, not on mixed/.

For each (temperature, prior correction) pair, each expert colours N validation photos of its own
domain, spread evenly over the sorted folder (so every class is in), and the script prints mean
CIEDE2000, PSNR and the colourfulness ratio to the ground truth, per expert and averaged (and
no colour's PSNR and CIEDE2000 on the same photos).

Each photo's bin logits are computed once and decoded at every grid cell: the network's forward was
about half of a cell's cost, the rest is decoding, upsampling and the full-resolution metrics.

The shipped prior correction is the largest on the grid at which every expert keeps at least half
of the ground truth's colourfulness (CF ratio >= 0.5) at the shipped temperature: past that,
CIEDE2000 falls further but the photos turn grey. The script prints that pick for each temperature.

    python tools/tune_decoding.py --model MODEL_DIR --data ../shared/data [--n 100] \
        [--temperatures 0.5] [--prior-corrections 0 0.25 0.5 0.75 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..colorizer import ExpertColorizer
from ..experts import Expert
from .domains import link_validation_photos
from .loop import evaluate, list_photos, load_eval_photo
from .scores import aggregate, image_metrics
from .variants import single_expert_colorizer

__all__ = ["pick_prior_correction", "score_decodings", "get_args_parser", "main"]


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


@contextlib.contextmanager
def _logits_once(expert: Expert) -> Iterator[None]:
    """Within the block, :meth:`Expert.raw` returns its last output again when given the same input:
    a photo decoded at several settings runs the network once."""
    compute = expert.raw
    last: list[torch.Tensor] = []  # [input, output] of the last call

    def raw(x: torch.Tensor) -> torch.Tensor:
        if not (last and last[0].shape == x.shape and torch.equal(last[0], x)):
            last[:] = [x.clone(), compute(x)]
        return last[1]

    expert.raw = raw  # an instance attribute shadows the method
    try:
        yield
    finally:
        del expert.raw


def score_decodings(
    colorizer: ExpertColorizer, name: str, images_dir: str | Path, grid: Sequence[tuple[float, float]]
) -> dict[tuple[float, float], dict[str, Any]]:
    """Overall metrics of expert ``name`` colouring every photo of ``images_dir`` alone, at each decoding.

    Each photo is read once and its logits computed once; the expert is left decoding as before.

    Args:
        colorizer: the model whose expert is scored (its working size and upsampling are used).
        name: the expert.
        images_dir: the photos (searched recursively).
        grid: ``(temperature, prior correction)`` pairs.

    Returns:
        ``{(temperature, prior correction): overall}``, ``overall`` as in
        :func:`~expertcolor.evaluation.evaluate`'s ``results[variant]["overall"]``.
    """
    expert = colorizer.experts[name]
    before = (float(expert.config.temperature), float(expert.config.prior_correction))
    single = single_expert_colorizer(expert, colorizer)
    per_image: dict[tuple[float, float], dict[str, Any]] = {cell: {} for cell in grid}
    images_dir = Path(images_dir)
    try:
        with _logits_once(expert):
            for path in list_photos(images_dir):
                photo = load_eval_photo(path, images_dir, None, 8)
                for t, a in grid:
                    expert.with_decoding(temperature=t, prior_correction=a)
                    out = np.asarray(single.colorize(photo.rgb))[..., :3]
                    per_image[t, a][photo.name] = image_metrics(out, photo.rgb, lab_gt=photo.lab)
    finally:
        expert.with_decoding(*before)
    return {cell: aggregate(records)["overall"] for cell, records in per_image.items()}


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
        grid = [(t, a) for t in args.temperatures for a in args.prior_corrections]
        for name in colorizer.experts:
            scores = score_decodings(colorizer, name, folders[name], grid)
            for t, a in grid:
                o = scores[t, a]
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
