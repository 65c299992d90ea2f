"""Measure video colorization on clips with known colours and motion: accuracy, flicker, cuts; per-frame vs stabilised.

For each clip of ``tools/make_test_clips.py`` the grayscale frames are colorized once per variant,
and compared with the true frames:

* accuracy: mean CIEDE2000 to the true colours (``expertcolor.metrics``), averaged over frames;
* flicker: mean ``|ab_t - ab_{t-1}|`` (Euclidean in the ab plane, CIE Lab of the 8-bit output)
  after warping frame ``t - 1`` onto frame ``t`` by the known camera motion, over the pixels both
  frames show, averaged over the consecutive pairs of each shot (pairs across a cut are left out);
  the true frames' own value is the floor (resampling alone);
* cuts: the frames a variant detected as the first of a shot, against the true cuts.

Usage::

    python tools/eval_video.py [--clips 8] [--variants per-frame stabilized "flow=motion=flow"] [--json out.json]

A variant is ``per-frame``, ``stabilized`` (the default :class:`~expertcolor.video.TemporalConfig`)
or ``label=field=value,field=value`` (fields of ``TemporalConfig``). The first variant is the
reference for ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_test_clips import MOTIONS, Clip, add_clip_args, default_clips  # noqa: E402

from expertcolor import ExpertColorizer  # noqa: E402
from expertcolor import metrics as M  # noqa: E402
from expertcolor.video import FrameColorizer, TemporalConfig  # noqa: E402


def parse_variant(text: str) -> tuple[str, bool | TemporalConfig]:
    """``per-frame`` -> no state; ``stabilized`` -> defaults; ``label=k=v,k=v`` -> TemporalConfig(k=v, ...)."""
    if text == "per-frame":
        return text, False
    if text == "stabilized":
        return text, TemporalConfig()
    label, _, spec = text.partition("=")
    fields: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        try:
            fields[key] = float(value)
        except ValueError:
            fields[key] = value
    return label, TemporalConfig(**fields)


def lab_ab(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` float ab of an 8-bit RGB frame."""
    return M.rgb_to_lab(rgb)[..., 1:]


def pair_flicker(ab: list[np.ndarray], clip: Clip) -> list[float]:
    """Mean ab change of every consecutive pair within a shot, aligned by the known motion."""
    h, w = ab[0].shape[:2]
    out = []
    for t in range(1, len(ab)):
        if clip.shots[t] != clip.shots[t - 1]:
            continue
        q, valid = clip.backward_flow(t)
        qx, qy = q[..., 0], q[..., 1]
        grid = torch.from_numpy(np.stack([2 * qx / (w - 1) - 1, 2 * qy / (h - 1) - 1], -1))[None].float()
        prev = torch.from_numpy(ab[t - 1]).permute(2, 0, 1)[None].float()
        warped = F.grid_sample(prev, grid, mode="bilinear", align_corners=True)[0].permute(1, 2, 0).numpy()
        d = np.linalg.norm(ab[t] - warped, axis=-1)
        out.append(float(d[valid].mean()))
    return out


def gray_input(frames: np.ndarray, grain: float, seed: int) -> list[np.ndarray]:
    """What the colorizer sees: the frames' luminance (ITU-R 601, as PIL's ``convert("L")``), plus
    Gaussian film grain of ``grain`` 8-bit levels."""
    rng = np.random.default_rng(seed)
    gray = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if grain > 0:
        gray = gray + rng.normal(0, grain, size=gray.shape).astype(np.float32)
    return [g for g in np.clip(np.rint(gray), 0, 255).astype(np.uint8)]


def evaluate_clip(colorizer: ExpertColorizer, clip: Clip, stabilize: bool | TemporalConfig, grain: float,
                  seed: int) -> dict[str, Any]:
    step = FrameColorizer(colorizer, stabilize=stabilize)
    t0 = time.perf_counter()
    outs = [step(g) for g in gray_input(clip.frames, grain, seed)]
    seconds = time.perf_counter() - t0
    maps = [M.ciede2000_map(o, f) for o, f in zip(outs, clip.frames)]
    de = [float(m.mean()) for m in maps]
    subject = [float(m[a > 0.5].mean()) for m, a in zip(maps, clip.alpha) if (a > 0.5).any()]
    flick = pair_flicker([lab_ab(o) for o in outs], clip)
    pairs = [t for t in range(1, len(outs)) if clip.shots[t] == clip.shots[t - 1]]
    by_motion: dict[str, list[float]] = {}
    for t, f in zip(pairs, flick):
        by_motion.setdefault(clip.motions[clip.shots[t]], []).append(f)
    return {
        "ciede2000": float(np.mean(de)),
        "ciede2000_subject": float(np.mean(subject)) if subject else None,
        "flicker": float(np.mean(flick)),
        "flicker_by_motion": {k: float(np.mean(v)) for k, v in by_motion.items()},
        "cuts": step.cuts,
        "ms_per_frame": 1000 * seconds / len(outs),
        "parts_ms": step.milliseconds_per_frame(),
    }


def summary(values: Sequence[float]) -> str:
    return f"mean {statistics.fmean(values):.3f} median {statistics.median(values):.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: the embedded default model)")
    add_clip_args(p)
    p.add_argument("--grain", type=float, default=0.0, help="film grain on the input, std in 8-bit levels")
    p.add_argument("--motions", nargs="+", default=list(MOTIONS), choices=MOTIONS, help="camera moves to draw from")
    p.add_argument("--variants", nargs="+", default=["per-frame", "stabilized"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    variants = [parse_variant(v) for v in args.variants]
    clips = default_clips(args.data, args.clips, args.shots, args.frames_per_shot, args.size, args.seed, args.motions)
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in variants}
    floor = []
    for i, clip in enumerate(clips):
        floor.append(float(np.mean(pair_flicker([lab_ab(f) for f in clip.frames], clip))))
        line = [f"{clip.name} {'/'.join(clip.motions):28s} cuts {clip.cuts} truth flicker {floor[-1]:.2f}"]
        for label, stab in variants:
            r = evaluate_clip(colorizer, clip, stab, args.grain, args.seed + i)
            results[label].append(r)
            line.append(f"  {label:>14s}: dE {r['ciede2000']:.2f} flicker {r['flicker']:.2f} cuts {r['cuts']} "
                        f"{r['ms_per_frame']:.0f} ms/frame")
        print("\n".join(line), flush=True)

    ref_label = variants[0][0]
    ref = results[ref_label]
    print(f"\n{len(clips)} clips x {len(clips[0].frames)} frames at {args.size[0]}x{args.size[1]}, grain {args.grain}; "
          f"truth flicker (resampling floor): {summary(floor)}")
    true_cuts = sum(len(c.cuts) for c in clips)
    for label, _ in variants:
        rs = results[label]
        de = [r["ciede2000"] for r in rs]
        fl = [r["flicker"] for r in rs]
        ratio = [r["flicker"] / b["flicker"] for r, b in zip(rs, ref)]
        dde = [r["ciede2000"] - b["ciede2000"] for r, b in zip(rs, ref)]
        hits = sum(len(set(r["cuts"]) & set(c.cuts)) for r, c in zip(rs, clips))
        false = sum(len(set(r["cuts"]) - set(c.cuts)) for r, c in zip(rs, clips))
        parts = {k: statistics.fmean(r["parts_ms"][k] for r in rs) for k in rs[0]["parts_ms"]}
        print(f"{label:>14s}: dE {summary(de)} | flicker {summary(fl)} | flicker / {ref_label} {summary(ratio)} | "
              f"dE - {ref_label} {summary(dde)} | cuts {hits}/{true_cuts} found, {false} false | "
              + " ".join(f"{k} {v:.1f}" for k, v in parts.items()) + " ms/frame")
        motions = sorted({m for r in rs for m in r["flicker_by_motion"]})
        cells = []
        for m in motions:
            mine = [r["flicker_by_motion"][m] for r in rs if m in r["flicker_by_motion"]]
            base = [b["flicker_by_motion"][m] for b in ref if m in b["flicker_by_motion"]]
            cells.append(f"{m} {statistics.fmean(mine):.2f} ({statistics.fmean(mine) / statistics.fmean(base):.2f}x)")
        print(f"{'':>14s}  flicker by camera move: " + ", ".join(cells))
        subj = [(r["ciede2000_subject"], b["ciede2000_subject"]) for r, b in zip(rs, ref) if r["ciede2000_subject"]]
        if subj:
            print(f"{'':>14s}  dE on moving subjects {statistics.fmean(s for s, _ in subj):.3f} "
                  f"({ref_label} {statistics.fmean(b for _, b in subj):.3f})")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "floor": floor,
                                         "clips": [{"name": c.name, "motions": c.motions, "photos": c.photos,
                                                    "cuts": c.cuts} for c in clips],
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
