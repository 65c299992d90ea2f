"""Time ``import expertcolor`` and one colorize call on CPU (or another device).

Usage::

    python benchmarks/bench_colorize.py [--model DIR] [--size 512] [--repeats 5] [--device cpu]

Prints the median of ``--repeats`` timed calls after one warm-up call. Without ``--model`` it uses
the embedded default weights (random-weight models when none are installed, which time the same).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def import_time() -> float:
    """Seconds for ``import expertcolor`` in a fresh interpreter (median of 3)."""
    code = "import time; t = time.perf_counter(); import expertcolor; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(3)]
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: embedded weights)")
    p.add_argument("--size", type=int, default=512, help="square image side")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    print(f"import expertcolor: {import_time():.2f} s (median of 3 fresh interpreters)")
    import numpy as np
    import torch

    from expertcolor import ExpertColorizer, WeightsNotFoundError, create_expert
    from expertcolor.segmentation import GraySegmenter

    try:
        colorizer = ExpertColorizer.from_pretrained(args.model, device=args.device)
        what = args.model or "embedded default"
    except WeightsNotFoundError:
        experts = [create_expert(name=n) for n in ("animals", "birds", "faces", "places")]
        colorizer = ExpertColorizer(experts, GraySegmenter(), device=args.device)
        what = "random weights (no embedded default installed)"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : args.size, 0 : args.size]
    img = (127 + 60 * np.sin(x / 17.0) + 60 * np.cos(y / 23.0) + rng.normal(0, 5, x.shape)).clip(0, 255)
    img = img.astype(np.uint8)
    colorizer.colorize(img)  # warm-up
    times = []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        colorizer.colorize(img)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    print(
        f"colorize {args.size}x{args.size} on {args.device} ({what}, working size {colorizer.working_size}): "
        f"median {statistics.median(times) * 1000:.0f} ms over {args.repeats} runs "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}), torch threads {torch.get_num_threads()}"
    )


if __name__ == "__main__":
    main()
