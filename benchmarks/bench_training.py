"""Training throughput of the default expert, data loading included.

Measures images/s of full training steps (decode + augment + Lab in DataLoader workers, forward,
soft-encoded rebalanced CE, backward, AdamW) of ``create_expert()`` (default architecture,
classification head) at 128x128, on a synthetic JPEG folder made in a temporary directory (or
``--root``). Prints the median over several timed windows after warm-up.

    python benchmarks/bench_training.py                 # CPU (and CUDA when present)
    python benchmarks/bench_training.py --device cpu --workers 1 --threads 2
    python benchmarks/bench_training.py --threads 2 --cache both --rounds 3   # decode-once cache vs files

``--cache both`` alternates uncached and cached runs (``--rounds`` pairs, cache built once before
timing) and prints both medians and their ratio: the machine's noise hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from expertcolor import create_expert
from expertcolor.color import normalize_l
from expertcolor.datasets import ImageFolder
from expertcolor.datasets.cache import build_lab_cache
from expertcolor.train.losses import create_loss


def make_folder(root: Path, n: int, size: tuple[int, int] = (200, 160)) -> Path:
    """``n`` synthetic colour JPEGs (smooth gradients + noise, ``size`` = (w, h))."""
    rng = np.random.default_rng(0)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        c = rng.uniform(0.2, 1.0, 3)
        img = np.stack([c[0] * x / w, c[1] * y / h, c[2] * (0.5 + 0.5 * np.sin(x / (3 + i % 7)))], axis=2)
        img = np.clip(img * 255 + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i:04d}.jpg", quality=90)
    return root


def bench(root: Path, device: str, args: argparse.Namespace, cache_dir: Path | None = None) -> float:
    """Median images/s over ``args.windows`` windows of ``args.window_steps`` steps (from the
    decode-once cache in ``cache_dir`` when given)."""
    dev = torch.device(device)
    ds = ImageFolder(root, "train", val_fraction=0.0, resolution=args.resolution)
    if cache_dir is not None:
        ds.use_cache(build_lab_cache(ds, cache_dir))
    torch.manual_seed(0)
    expert = create_expert().to(dev).to(memory_format=torch.channels_last)  # as the Trainer does
    expert.train()
    loss_fn = create_loss("soft_ce", centers=expert.bin_centers.cpu()).to(dev)
    opt = torch.optim.AdamW(expert.parameters(), lr=1e-3)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)
    steps = args.warmup + args.windows * args.window_steps
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0)).tolist()
    order = (order * (steps * args.batch_size // len(order) + 1))[: steps * args.batch_size]
    batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    loader = DataLoader(ds, batch_sampler=batches, num_workers=args.workers, pin_memory=dev.type == "cuda",
                        prefetch_factor=4 if args.workers else None, persistent_workers=False)
    rates, t0 = [], None
    for step, (L, ab) in enumerate(loader):
        if step == args.warmup or (t0 is not None and (step - args.warmup) % args.window_steps == 0):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            now = time.perf_counter()
            if t0 is not None and step > args.warmup:
                rates.append(args.window_steps * args.batch_size / (now - t0))
            t0 = now
        L = L.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        ab = ab.to(dev, non_blocking=True)
        with amp:
            raw = expert.raw(normalize_l(L))
        loss = loss_fn(raw.float(), ab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    rates.append(args.window_steps * args.batch_size / (time.perf_counter() - t0))
    print(f"  windows (images/s): {', '.join(f'{r:.1f}' for r in rates)}")
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=None, help="folder of images (default: synthetic JPEGs)")
    p.add_argument("--device", action="append", default=None, help="cpu / cuda (repeatable; default: cpu + cuda)")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers (default %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads in the main process")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--window-steps", type=int, default=4)
    p.add_argument("--images", type=int, default=256, help="synthetic images to generate")
    p.add_argument("--cache", choices=("off", "on", "both"), default="off",
                   help="draw items from the decode-once cache (both: alternate, --rounds pairs)")
    p.add_argument("--rounds", type=int, default=1, help="repetitions (pairs with --cache both)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or make_folder(Path(tmp), args.images)
        cache_dir = Path(tmp) / "cache"
        if args.cache != "off":
            t0 = time.perf_counter()
            ds = ImageFolder(root, "train", val_fraction=0.0, resolution=args.resolution)
            build_lab_cache(ds, cache_dir)
            print(f"cache of {len(ds)} photos built in {time.perf_counter() - t0:.1f} s")
        variants = {"off": [None], "on": [cache_dir], "both": [None, cache_dir]}[args.cache]
        for dev in devices:
            print(f"{dev}: batch {args.batch_size}, {args.resolution}^2, workers {args.workers}, "
                  f"threads {torch.get_num_threads()}")
            rates: dict[str, list[float]] = {"files": [], "cache": []}
            for r in range(args.rounds):
                for cd in variants:
                    name = "files" if cd is None else "cache"
                    rates[name].append(bench(root, dev, args, cd))
                    print(f"{dev}: round {r + 1} {name}: {rates[name][-1]:.1f} images/s")
            med = {k: statistics.median(v) for k, v in rates.items() if v}
            for k, v in med.items():
                print(f"{dev}: median {v:.1f} images/s from {k} (training step incl. data loading)")
            if len(med) == 2:
                print(f"{dev}: cache / files = {med['cache'] / med['files']:.2f}")


if __name__ == "__main__":
    main()
