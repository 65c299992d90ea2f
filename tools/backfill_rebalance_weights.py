"""Store the training's class-rebalancing weights in experts trained before they were saved.

``train-expert`` now writes the per-bin rebalancing weights of its loss into the expert, so that
decoding can undo them (``prior_correction``). Experts trained earlier lack them; their run folder
still holds the loss's state in ``checkpoint.pt``. This copies it into ``<run>/expert`` (weights
are otherwise unchanged, in their stored dtype)::

    python tools/backfill_rebalance_weights.py runs/places_plus runs/faces_w3_ft ...

The checkpoint is read with ``torch.load(weights_only=True)`` (:func:`expertcolor.train.checkpoint.load_checkpoint`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from expertcolor import Expert
from expertcolor.train.checkpoint import CHECKPOINT_NAME, load_checkpoint


def backfill(run: Path) -> str:
    """Copy ``criterion.weights`` from ``run/checkpoint.pt`` into ``run/expert``; returns a summary."""
    ckpt, expert_dir = run / CHECKPOINT_NAME, run / "expert"
    if not ckpt.is_file() or not (expert_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run}: needs checkpoint.pt and expert/ (a finished train-expert run)")
    state = load_checkpoint(ckpt)
    weights = state.get("criterion", {}).get("weights")
    if weights is None:
        raise ValueError(f"{ckpt}: no loss weights (regression head, or not a train-expert checkpoint)")
    expert = Expert.from_pretrained(expert_dir)
    stored = {t.dtype for t in _stored_tensors(expert_dir)}
    expert.set_rebalance_weights(weights)
    expert.save_pretrained(expert_dir, dtype=torch.float16 if stored == {torch.float16} else None)
    w = expert.rebalance_log_weights.exp()
    return f"{run}: stored rebalancing weights (min {float(w.min()):.3f}, max {float(w.max()):.3f})"


def _stored_tensors(directory: Path) -> list[torch.Tensor]:
    from safetensors.torch import load_file

    return [t for t in load_file(str(directory / "model.safetensors")).values() if t.is_floating_point()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="train-expert output folders")
    args = p.parse_args(argv)
    for run in args.runs:
        try:
            print(backfill(run))
        except (FileNotFoundError, ValueError) as e:
            print(f"backfill: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
