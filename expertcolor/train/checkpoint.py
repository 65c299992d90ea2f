"""Training checkpoints: atomic writes, loading, the global RNG state, and which options a resumed run may change.

A checkpoint (``OUT/checkpoint.pt``) holds tensors, dicts, lists and numbers only, so it loads with
``torch.load(weights_only=True)``. Its layout (unchanged since resume was introduced; runs in
progress depend on it)::

    {"model": state_dict, "optimizer": state_dict, "scheduler": state_dict, "scaler": state_dict,
     "state": {"epoch", "step_in_epoch", "global_step", "images_seen", "train_time", "history",
               "loss_sum", "loss_n"},
     "rng": rng_state(), "extra": {name: tensor}, "criterion": state_dict, "world_size": int,
     "args": recorded_args(args)}

``args`` is missing from checkpoints written before options were recorded: :func:`resume_changes`
then compares with the run's ``args.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..modeling import atomic_write, stale_temp_files

__all__ = [
    "CHECKPOINT_NAME",
    "RESUME_MUST_MATCH",
    "RESUME_MAY_CHANGE",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "remove_stale_checkpoint_temps",
    "recorded_args",
    "resume_changes",
]

CHECKPOINT_NAME = "checkpoint.pt"
#: Options a resumed run must share with the checkpoint's run, and why.
_MUST_MATCH_WHY = {
    "batch_size": "the position in the epoch counts batches of that size",
    "chroma_boost": "the loss and its bin prior were built for it",
}
RESUME_MUST_MATCH = tuple(_MUST_MATCH_WHY)
#: Options that may change on resume (with a warning: the run is then no longer exact).
RESUME_MAY_CHANGE = ("lr", "weight_decay", "warmup_steps", "epochs", "seed", "resolution", "max_images",
                     "colorfulness_weight")

logger = logging.getLogger(__name__)


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch, Python, numpy, CUDA when present) as tensors / plain lists (safe for
    ``weights_only`` loading)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only on as many devices as were saved)."""
    torch.set_rng_state(state["torch"].cpu())
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst[0], np.asarray(npst[1], dtype=np.uint32), npst[2], npst[3], npst[4]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """``torch.save`` atomically (a kill mid-write leaves the previous checkpoint intact).

    Raises:
        OSError: naming the file when it cannot be written (torch reports a full disk as a bare
            ``RuntimeError``); the previous checkpoint is then still intact.
    """
    try:
        atomic_write(path, lambda tmp: torch.save(obj, tmp))
    except (OSError, RuntimeError) as e:
        raise OSError(
            f"could not write checkpoint {path}: {e}. The disk may be full; "
            "the previous checkpoint (if any) is intact"
        ) from e


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def remove_stale_checkpoint_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that a kill during :func:`save_checkpoint` left beside ``path``.

    Only files named like :func:`~expertcolor.modeling.atomic_write`'s temporaries for this very
    checkpoint (``.checkpoint.pt.<8 characters>.tmp``) are touched. Returns the deleted paths.
    """
    removed = []
    for p in stale_temp_files(path):
        try:
            p.unlink()
        except FileNotFoundError:
            continue
        removed.append(p)
    if removed:
        logger.warning("removed %d stale temporary checkpoint file(s) in %s", len(removed), Path(path).parent)
    return removed


def recorded_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options a checkpoint records for :func:`resume_changes`: those of :data:`RESUME_MUST_MATCH`
    and :data:`RESUME_MAY_CHANGE` that ``args`` has (``--chroma-boost`` and ``--colorfulness-weight`` are
    train-expert's only)."""
    return {k: getattr(args, k) for k in (*RESUME_MUST_MATCH, *RESUME_MAY_CHANGE) if hasattr(args, k)}


def resume_changes(
    old: dict[str, Any], args: argparse.Namespace, checkpoint: str | os.PathLike
) -> dict[str, tuple[Any, Any]]:
    """Compare the options of the checkpoint's run (``old``) with this run's before anything is restored.

    A changed :data:`RESUME_MUST_MATCH` option is refused; other changes are logged as warnings.
    Options missing from ``old`` are not compared.

    Args:
        old: the checkpoint's ``args`` entry, or the previous run's ``args.json``.
        args: this run's options.
        checkpoint: the checkpoint's path, for messages.

    Returns:
        ``{option: (old value, new value)}`` for every option that changed.

    Raises:
        ValueError: naming the option and both values when one of :data:`RESUME_MUST_MATCH` differs.
    """
    changed: dict[str, tuple[Any, Any]] = {}
    for key in (*RESUME_MUST_MATCH, *RESUME_MAY_CHANGE):
        if key in old and old[key] != getattr(args, key, None):
            changed[key] = (old[key], getattr(args, key, None))
    for key in RESUME_MUST_MATCH:
        if key in changed:
            was, now = changed[key]
            option = "--" + key.replace("_", "-")
            raise ValueError(
                f"--resume: {checkpoint} was written with {option} {was}, this run has {option} {now}; "
                f"resume with {option} {was} ({_MUST_MATCH_WHY[key]}) "
                "or start a new run in another --out"
            )
    for key, (was, now) in changed.items():
        logger.warning("--resume: --%s changed from %s to %s; training continues with %s, "
                       "but no longer exactly as the interrupted run would have", key.replace("_", "-"),
                       was, now, now)
    return changed
