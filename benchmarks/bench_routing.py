"""What routing costs: the routed colorizer against one expert, and against the networks alone.

For every photo of a folder (default: ``../shared/data/mixed/images``; synthetic photos without it),
in interleaved rounds, times one ``colorize`` call of:

* ``routed``: the model as loaded (segmenter, routing, merge, the experts that get pixels, finishing);
* ``routed_whole``: the same with every active expert run on the whole photo (``crop_margin=None``);
* ``single``: the same pipeline with one expert (the same segmenter; every pixel routed to it);
* ``networks``: the segmenter and that expert's forward passes alone, at the working size;
* with ``--merge SPEC ...``: ``routed[SPEC]`` for each merge spec (``soft:min_share=0.03``);
* with ``--onnx DIR`` (a model directory from ``expertcolor export-onnx``): ``routed_onnx`` and
  ``networks_onnx``, the same with onnxruntime running the networks.

Prints per-variant medians (over photos of the per-photo median over rounds) and the ratios the
speed issue targets, then photos/s of ``expertcolor colorize`` over the folder (``--cli``)::

    python benchmarks/bench_routing.py [--images DIR] [--rounds 3] [--threads 2] [--cli] [--onnx DIR]
        [--merge SPEC ...]

Also prints how many experts each routed variant runs per photo (mean).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from expertcolor import ExpertColorizer, RoutingTable, create_merge
from expertcolor.colorizer import _resize
from expertcolor.io import decode_inputs

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixed" / "images"


def synthetic_photos(n: int = 12) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(n)]


def networks_of(colorizer: ExpertColorizer, expert: str) -> Callable[[np.ndarray], None]:
    """A timing target: ``colorizer``'s segmenter and one expert's forward passes on a photo's L at
    the working size, nothing else."""

    @torch.no_grad()
    def networks(rgb: np.ndarray) -> None:
        L = decode_inputs(rgb)[0].L
        small = _resize(L, colorizer.working_shape(*L.shape[-2:]))
        colorizer.segmenter(small)
        colorizer.experts[expert](small)

    return networks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES if DEFAULT_IMAGES.is_dir() else None)
    p.add_argument("--model", default=None, help="model directory (default: the embedded one)")
    p.add_argument("--expert", default="places", help="the single expert of the comparison")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cli", action="store_true", help="also time `expertcolor colorize` over the folder")
    p.add_argument("--onnx", type=Path, help="an exported model directory: also time the onnxruntime backend")
    p.add_argument("--merge", nargs="+", default=[], metavar="SPEC", help="also time these merge strategies")
    p.add_argument("--crop-margin", type=int, nargs="+", default=[], metavar="N",
                   help="also time the model as loaded (or with the first --merge) at these crop margins")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load = (lambda **kw: ExpertColorizer.from_pretrained(args.model, **kw)) if args.model else (
        lambda **kw: ExpertColorizer.from_pretrained(**kw))
    routed = load()
    whole = load(crop_margin=None)
    single = ExpertColorizer({args.expert: routed.experts[args.expert]}, routed.segmenter,
                             RoutingTable({}, args.expert, routed.segmenter.categories, [args.expert]),
                             merge=routed.merge, working_size=routed.working_size, device="cpu")
    if args.images is not None:
        files = sorted(f for f in args.images.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        photos = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    else:
        photos = synthetic_photos()

    variants = {"routed": routed.colorize, "routed_whole": whole.colorize, "single": single.colorize,
                "networks": networks_of(routed, args.expert)}
    routed_variants = {"routed": routed}
    for spec in args.merge:
        routed_variants[f"routed[{spec}]"] = load(merge=create_merge(spec))
        variants[f"routed[{spec}]"] = routed_variants[f"routed[{spec}]"].colorize
    for margin in args.crop_margin:
        merge = {"merge": create_merge(args.merge[0])} if args.merge else {}
        name = f"routed[{args.merge[0] + ',' if args.merge else ''}margin={margin}]"
        routed_variants[name] = load(crop_margin=margin, **merge)
        variants[name] = routed_variants[name].colorize
    if args.onnx is not None:
        fast = ExpertColorizer.from_pretrained(args.onnx, backend="onnxruntime", device="cpu")
        variants.update(routed_onnx=fast.colorize, networks_onnx=networks_of(fast, args.expert))
    times: dict[str, list[list[float]]] = {v: [[] for _ in photos] for v in variants}
    for rgb in photos[:2]:  # warm-up
        for fn in variants.values():
            fn(rgb)
    for _ in range(args.rounds):
        for i, rgb in enumerate(photos):
            for v, fn in variants.items():
                t0 = time.perf_counter()
                fn(rgb)
                times[v][i].append(time.perf_counter() - t0)
    med = {v: statistics.median(statistics.median(t) for t in ts) for v, ts in times.items()}
    runs = {v: statistics.mean(len(c.colorize(rgb, return_details=True).expert_ab) for rgb in photos)
            for v, c in routed_variants.items()}
    print(f"{len(photos)} photos, {args.rounds} rounds, {args.threads} threads; medians per photo:")
    for v, t in med.items():
        print(f"  {v:13s} {t * 1000:7.1f} ms" + (f"  ({runs[v]:.2f} experts run)" if v in runs else ""))
    print(f"  routed / single      {med['routed'] / med['single']:.2f}  (target <= 1.25)")
    print(f"  routed / networks    {med['routed'] / med['networks']:.2f}  (target <= 2.0)")
    print(f"  routed_whole / routed {med['routed_whole'] / med['routed']:.2f}  (what the crops save)")
    for v in routed_variants:
        if v == "routed":
            continue
        print(f"  {v} / single {med[v] / med['single']:.2f}, / networks {med[v] / med['networks']:.2f}")
    if args.onnx is not None:
        print(f"  routed_onnx / routed   {med['routed_onnx'] / med['routed']:.2f}  (onnxruntime against torch)")
        print(f"  networks_onnx / networks {med['networks_onnx'] / med['networks']:.2f}")
        print(f"  routed_onnx / single   {med['routed_onnx'] / med['single']:.2f}")
        print(f"  routed_onnx / networks {med['routed_onnx'] / med['networks']:.2f}  (target <= 2.0)")
    if args.cli and args.images is not None:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "expertcolor", "colorize", str(args.images), "-o", out,
                            "--threads", str(args.threads)], check=True, capture_output=True)
            dt = time.perf_counter() - t0
        print(f"  expertcolor colorize: {len(photos) / dt:.2f} photos/s ({len(photos)} photos, {dt:.1f} s, "
              "process start and model loading included)")


if __name__ == "__main__":
    main()
