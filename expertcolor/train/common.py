"""The training loop shared by ``train-expert`` and ``train-segmenter``.

What it gives both scripts:

* a seeded per-epoch permutation (or weighted draw), sharded over ``torchrun`` ranks like
  ``DistributedSampler``; resuming skips the batches already done in the interrupted epoch;
* augmentation seeded by ``(seed, epoch, index)`` in the datasets, a DataLoader with its own
  generator (it never touches the global RNG), and the global RNG state in every checkpoint — so a
  resumed run continues exactly where the killed one was;
* AdamW with linear warm-up + cosine decay per step, channels_last, AMP (bf16 / fp16) on CUDA;
* atomic checkpoints (``checkpoint.pt``: tensors, dicts, lists and numbers only, loadable with
  ``torch.load(weights_only=True)``) every ``--save-every`` steps and at every epoch end;
* ``--resume`` refuses another ``--batch-size`` than the checkpoint's and warns about other changed
  options (recorded under ``resumes`` in ``args.json``); temporaries of checkpoints killed
  mid-write are removed at start, and a failed write (a full disk) is an ``OSError`` naming the file;
* ``args.json`` and ``metrics.jsonl`` (one line per epoch) in ``--out``; only rank 0 writes;
* tqdm progress with the loss and images/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..argtypes import nonnegative_float, nonnegative_int, positive_int
from ..datasets import set_epoch, skip_stats
from ..modeling import atomic_write, read_json, stale_temp_files, write_json

__all__ = [
    "DistInfo",
    "setup_distributed",
    "epoch_batches",
    "add_common_args",
    "rng_state",
    "set_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "remove_stale_checkpoint_temps",
    "Trainer",
    "all_reduce_sum",
    "CHECKPOINT_NAME",
]

CHECKPOINT_NAME = "checkpoint.pt"
#: Options a resumed run must share with the checkpoint's run: the position inside an epoch counts
#: batches of this size, so another size would skip or repeat images.
RESUME_MUST_MATCH = ("batch_size",)
#: Options that may change on resume (with a warning: the run is then no longer exact).
RESUME_MAY_CHANGE = ("lr", "weight_decay", "warmup_steps", "epochs", "seed", "resolution", "max_images")

logger = logging.getLogger(__name__)


# -- distributed ---------------------------------------------------------------------------------------
@dataclass
class DistInfo:
    """Where this process runs: rank / world size (1 without ``torchrun``) and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistInfo:
    """Read ``torchrun``'s environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick a device.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default: CUDA when available. Under
            ``torchrun`` each process uses ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} requested but CUDA is not available")
        if world > 1 or dev.index is None:
            dev = torch.device("cuda", local if world > 1 else 0)
        torch.cuda.set_device(dev)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def all_reduce_sum(t: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (a no-op in a single process)."""
    if dist.distributed:
        backend = tdist.get_backend()
        x = t.to(dist.device) if backend == "nccl" else t.cpu()
        tdist.all_reduce(x)
        return x.to(t.device)
    return t


def epoch_batches(
    n: int,
    batch_size: int,
    epoch: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    weights: torch.Tensor | None = None,
) -> list[list[int]]:
    """This rank's batches of dataset indices for ``epoch`` (a pure function of its arguments).

    A seeded permutation (or, with ``weights``, a seeded draw of ``n`` indices with replacement),
    padded to a multiple of ``world_size`` and dealt round-robin as ``DistributedSampler`` does,
    then cut into full batches (the last partial batch is dropped unless it is the only one).
    """
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    if weights is not None:
        order = torch.multinomial(weights.double(), n, replacement=True, generator=g).tolist()
    else:
        order = torch.randperm(n, generator=g).tolist()
    pad = (-len(order)) % world_size
    order = order + order[:pad]
    shard = order[rank::world_size]
    if len(shard) < batch_size:
        return [shard] if shard else []
    return [shard[i : i + batch_size] for i in range(0, len(shard) - batch_size + 1, batch_size)]


# -- RNG and checkpoints -------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Global RNG states as tensors / plain lists (safe for ``weights_only`` loading)."""
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
    """Restore what :func:`rng_state` returned."""
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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


# -- arguments -----------------------------------------------------------------------------------------
def add_common_args(parser: argparse.ArgumentParser, resolution: int, batch_size: int, lr: float) -> None:
    """Options shared by both training scripts."""
    g = parser.add_argument_group("training")
    g.add_argument("--resolution", type=positive_int, default=resolution,
                   help="square training crop side (default %(default)s)")
    g.add_argument("--epochs", type=positive_int, default=10)
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="per process (default %(default)s)")
    g.add_argument("--lr", type=nonnegative_float, default=lr, help="peak AdamW learning rate (default %(default)s)")
    g.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    g.add_argument("--warmup-steps", type=nonnegative_int, default=None,
                   help="linear warm-up (default: 3%% of steps, <= 300)")
    g.add_argument("--workers", type=nonnegative_int, default=2,
                   help="DataLoader worker processes (default %(default)s)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--init-encoder", type=str, default=None, metavar="PATH",
                   help="ImageNet checkpoint for the encoder, e.g. mobilenet_v2_imagenet_bnstats.safetensors")
    g.add_argument("--max-images", type=positive_int, default=None,
                   help="use at most this many training images (seeded pick)")
    g.add_argument("--max-val-images", type=positive_int, default=512, help="validate on at most this many images")
    g.add_argument("--out", type=str, required=True, metavar="DIR", help="output directory")
    g.add_argument("--resume", action="store_true", help=f"continue from DIR/{CHECKPOINT_NAME}")
    g.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    g.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision on CUDA (auto: bf16 where supported, else fp16); CPU always fp32")
    g.add_argument("--save-every", type=positive_int, default=200, help="checkpoint every N steps (and every epoch)")
    g.add_argument("--stop-after-steps", type=positive_int, default=None,
                   help="debugging: checkpoint and stop after this global step, as if killed")
    g.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads in the main process")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def cap_dataset(ds: Dataset, max_images: int | None, seed: int) -> Dataset:
    """A seeded subset of at most ``max_images`` items (``ds`` itself when no cap applies)."""
    if max_images is None or max_images >= len(ds):
        return ds
    if max_images < 1:
        raise ValueError(f"--max-images must be >= 1, got {max_images}")
    idx = sorted(torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed)).tolist()[:max_images])
    return torch.utils.data.Subset(ds, idx)


def command_line() -> str:
    """This process's command line (``python -m expertcolor.train`` for the module entry)."""
    import shlex

    prog = os.path.basename(sys.argv[0])
    if prog == "__main__.py":
        prog = "python -m expertcolor.train"
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def resolved_args(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments as JSON, plus the command line."""
    d = {k: v for k, v in vars(args).items() if not callable(v)}
    d["command"] = command_line()
    return json.loads(json.dumps(d, default=str))


# -- the loop ------------------------------------------------------------------------------------------
class _StopRequestedError(Exception):
    pass


class Trainer:
    """Runs epochs of ``criterion(model(x), y)`` with evaluation, checkpoints and resume.

    Args:
        args: parsed options (see :func:`add_common_args`).
        model: the module trained (its ``forward(x)`` gives what ``criterion`` scores); wrapped in
            DistributedDataParallel under ``torchrun``.
        criterion: ``loss = criterion(output, target)``.
        train_set: yields ``(x, target)``.
        evaluate: called after each epoch with the unwrapped model in eval mode; returns metrics
            (every rank calls it; it must reduce over ranks itself).
        dist: from :func:`setup_distributed`.
        extra_state: tensors saved in (and restored from) the checkpoint, e.g. a loss's bin prior.
        sample_weights: optional per-item weights for a weighted draw instead of a permutation.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        model: nn.Module,
        criterion: nn.Module,
        train_set: Dataset,
        evaluate: Callable[[nn.Module], dict[str, float]],
        dist: DistInfo,
        extra_state: dict[str, torch.Tensor] | None = None,
        sample_weights: torch.Tensor | None = None,
    ) -> None:
        self.args, self.dist = args, dist
        self.out = Path(args.out)
        self.model = model.to(dist.device)
        self.cuda = dist.device.type == "cuda"
        # channels_last on every device: oneDNN's convolutions are faster in NHWC on CPU too
        # (measured: +20-35% images/s for the default expert on 2 AVX2 cores).
        self.model = self.model.to(memory_format=torch.channels_last)
        self.criterion = criterion.to(dist.device)
        self.train_set = train_set
        self.evaluate = evaluate
        self.extra_state = extra_state or {}
        self.sample_weights = sample_weights
        self.steps_per_epoch = len(epoch_batches(len(train_set), args.batch_size, 0, args.seed, dist.rank,
                                                 dist.world_size, sample_weights))
        if self.steps_per_epoch == 0:
            raise ValueError("the training set is empty")
        self.total_steps = self.steps_per_epoch * args.epochs
        self.amp_dtype = self._amp_dtype()
        self.ddp = (
            nn.parallel.DistributedDataParallel(self.model, device_ids=[dist.device.index] if self.cuda else None)
            if dist.distributed
            else self.model
        )
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (no_decay if p.dim() <= 1 else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=args.lr,
        )
        warm = args.warmup_steps if args.warmup_steps is not None else min(300, max(1, self.total_steps * 3 // 100))
        self.warmup = max(0, int(warm))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.resume_changes: dict[str, tuple[Any, Any]] = {}
        self.state: dict[str, Any] = {
            "epoch": 0, "step_in_epoch": 0, "global_step": 0, "images_seen": 0, "train_time": 0.0, "history": [],
        }

    # -- helpers -----------------------------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        if not self.cuda or self.args.amp == "off":
            return None
        if self.args.amp == "fp16":
            return torch.float16
        if self.args.amp == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16

    def _lr_factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        t = (step - self.warmup) / max(1, self.total_steps - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_NAME

    def checkpoint(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "state": dict(self.state),
            "rng": rng_state(),
            "extra": dict(self.extra_state),
            "criterion": self.criterion.state_dict(),
            "world_size": self.dist.world_size,
            "args": {k: getattr(self.args, k, None) for k in (*RESUME_MUST_MATCH, *RESUME_MAY_CHANGE)},
        }

    def save(self) -> None:
        if self.dist.is_main:
            save_checkpoint(self.checkpoint_path, self.checkpoint())
        if self.dist.distributed:
            tdist.barrier()

    def restore(self) -> bool:
        """Load ``checkpoint.pt`` if it exists; returns whether it did."""
        if not self.checkpoint_path.is_file():
            return False
        ck = load_checkpoint(self.checkpoint_path, "cpu")
        if ck.get("world_size", 1) != self.dist.world_size:
            raise ValueError(
                f"{self.checkpoint_path} was written with {ck.get('world_size')} processes; resume with the same number"
            )
        self.resume_changes = self._check_resume_args(ck)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.state.update(ck["state"])
        if "criterion" in ck:
            self.criterion.load_state_dict(ck["criterion"])
        for k, v in ck.get("extra", {}).items():
            if k in self.extra_state:
                self.extra_state[k].copy_(v)
        set_rng_state(ck["rng"])
        return True

    def _previous_args(self) -> dict[str, Any]:
        """``args.json`` of the run that wrote the checkpoint (``{}`` when missing or unreadable)."""
        try:
            return read_json(self.out / "args.json")
        except (OSError, ValueError):
            return {}

    def _check_resume_args(self, ck: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """Compare the options of the checkpoint's run with this one's before anything is restored.

        Checkpoints record the options of :data:`RESUME_MUST_MATCH` and :data:`RESUME_MAY_CHANGE`
        (older ones fall back on ``args.json``). A changed batch size is refused; other changes are
        logged as warnings and returned as ``{option: (old, new)}``.

        Raises:
            ValueError: naming the option and both values when one of :data:`RESUME_MUST_MATCH` differs.
        """
        old = ck.get("args")
        if not isinstance(old, dict):
            old = self._previous_args()
        changed: dict[str, tuple[Any, Any]] = {}
        for key in (*RESUME_MUST_MATCH, *RESUME_MAY_CHANGE):
            if key in old and old[key] != getattr(self.args, key, None):
                changed[key] = (old[key], getattr(self.args, key, None))
        for key in RESUME_MUST_MATCH:
            if key in changed:
                was, now = changed[key]
                option = "--" + key.replace("_", "-")
                raise ValueError(
                    f"--resume: {self.checkpoint_path} was written with {option} {was}, this run has {option} {now}; "
                    f"resume with {option} {was} (the position in the epoch counts batches of that size) "
                    "or start a new run in another --out"
                )
        for key, (was, now) in changed.items():
            logger.warning("--resume: --%s changed from %s to %s; training continues with %s, "
                           "but no longer exactly as the interrupted run would have", key.replace("_", "-"),
                           was, now, now)
        return changed

    def _write_metrics(self) -> None:
        if not self.dist.is_main:
            return
        text = "".join(json.dumps(rec) + "\n" for rec in self.state["history"])

        def _w(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        atomic_write(self.out / "metrics.jsonl", _w)

    # -- training ------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``args.epochs`` (or ``--stop-after-steps``); returns the final state.

        The returned dict holds ``epoch``, ``global_step``, ``images_seen``, ``train_time``,
        ``history`` (per-epoch records) and ``stopped`` (True when stopped early).
        """
        args, dist = self.args, self.dist
        if dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            remove_stale_checkpoint_temps(self.checkpoint_path)  # left by kills mid-save
        previous = self._previous_args()
        record = resolved_args(args)
        if args.resume and self.restore():
            if dist.is_main:
                logger.info(f"resumed from {self.checkpoint_path} at epoch {self.state['epoch']}, "
                            f"step {self.state['step_in_epoch']}/{self.steps_per_epoch}")
            # args.json holds this run's options; each resume adds what it changed.
            resume = {"epoch": self.state["epoch"], "step_in_epoch": self.state["step_in_epoch"],
                      "global_step": self.state["global_step"],
                      "changed": {k: {"old": a, "new": b} for k, (a, b) in self.resume_changes.items()}}
            earlier = previous.get("resumes")
            record["resumes"] = [*(earlier if isinstance(earlier, list) else []),
                                 json.loads(json.dumps(resume, default=str))]
        else:
            torch.manual_seed(args.seed + dist.rank)
        if dist.is_main:
            write_json(self.out / "args.json", record)
        try:
            while self.state["epoch"] < args.epochs:
                self._train_epoch()
                self._end_epoch()
        except _StopRequestedError:
            return {**self.state, "stopped": True}
        return {**self.state, "stopped": False}

    def _loader(self, epoch: int, start: int) -> DataLoader:
        set_epoch(self.train_set, epoch)
        batches = epoch_batches(len(self.train_set), self.args.batch_size, epoch, self.args.seed,
                                self.dist.rank, self.dist.world_size, self.sample_weights)[start:]
        return DataLoader(
            self.train_set,
            batch_sampler=batches,
            num_workers=self.args.workers,
            pin_memory=self.cuda,
            generator=torch.Generator().manual_seed(self.args.seed + epoch),
            prefetch_factor=4 if self.args.workers > 0 else None,
        )

    def _train_epoch(self) -> None:
        args, dist, st = self.args, self.dist, self.state
        epoch, start = st["epoch"], st["step_in_epoch"]
        loader = self._loader(epoch, start)
        self.ddp.train()
        bar = None
        if dist.is_main and not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(total=self.steps_per_epoch, initial=start, desc=f"epoch {epoch + 1}/{args.epochs}",
                       dynamic_ncols=True, file=sys.stderr)
        st.setdefault("loss_sum", 0.0)
        st.setdefault("loss_n", 0)
        epoch_t0 = step_t0 = time.perf_counter()
        seen, ema = 0, None
        autocast = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext())
        for x, y in loader:
            x = x.to(dist.device, non_blocking=True)
            y = y.to(dist.device, non_blocking=True)
            if x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                out = self.ddp(x)
            loss = self.criterion(out.float(), y)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at step {st['global_step']}; lower --lr?")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            li = float(loss.detach())
            now = time.perf_counter()
            st["train_time"] += now - step_t0
            step_t0 = now
            st["step_in_epoch"] += 1
            st["global_step"] += 1
            st["images_seen"] += len(x) * dist.world_size
            st["loss_sum"] += li
            st["loss_n"] += 1
            seen += len(x) * dist.world_size
            ema = li if ema is None else 0.95 * ema + 0.05 * li
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{ema:.4f}", img_s=f"{seen / max(now - epoch_t0, 1e-9):.1f}",
                                lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if args.save_every and st["global_step"] % args.save_every == 0:
                self.save()
            if args.stop_after_steps is not None and st["global_step"] >= args.stop_after_steps:
                if bar is not None:
                    bar.close()
                self.save()
                raise _StopRequestedError
        if bar is not None:
            bar.close()

    def _end_epoch(self) -> None:
        st, dist = self.state, self.dist
        model = self.model
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            metrics = self.evaluate(model)
        eval_time = time.perf_counter() - t0
        skips = skip_stats(self.train_set)
        if dist.distributed:
            t = all_reduce_sum(torch.tensor([skips["unreadable"], skips["grayscale"]], dtype=torch.float64), dist)
            skips = {"unreadable": int(t[0]), "grayscale": int(t[1])}
        rec = {
            "epoch": st["epoch"] + 1,
            "global_step": st["global_step"],
            "images_seen": st["images_seen"],
            "train_loss": st.get("loss_sum", 0.0) / max(1, st.get("loss_n", 0)),
            "lr": self.scheduler.get_last_lr()[0],
            "train_time_s": round(st["train_time"], 2),
            "eval_time_s": round(eval_time, 2),
            "skipped_train_files": skips,
            **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
        }
        st["history"] = [*st["history"], rec]
        st["epoch"] += 1
        st["step_in_epoch"] = 0
        st["loss_sum"], st["loss_n"] = 0.0, 0
        if dist.is_main:
            shown = {k: v for k, v in rec.items() if k not in ("skipped_train_files",)}
            logger.info("epoch " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in shown.items()))
        self.save()
        self._write_metrics()


def shard_indices(n: int, dist: DistInfo, limit: int | None = None) -> list[int]:
    """Evaluation indices of this rank: ``limit`` items spread evenly over the set (all by default).

    Evenly spaced, not the first ``limit``: validation sets built from several sources are ordered by
    source, and their first items would all come from one domain.
    """
    m = n if limit is None else min(n, limit)
    picked = [i * n // m for i in range(m)]
    return picked[dist.rank :: dist.world_size]


def mean_metrics(sums: dict[str, float], count: float) -> dict[str, float]:
    """Divide summed metrics by the item count."""
    return {k: v / max(count, 1.0) for k, v in sums.items()}


def reduce_dict(values: dict[str, float], dist: DistInfo) -> dict[str, float]:
    """Sum a flat dict of floats over ranks."""
    keys = sorted(values)
    t = all_reduce_sum(torch.tensor([values[k] for k in keys], dtype=torch.float64), dist)
    return dict(zip(keys, t.tolist()))


def cleanup_distributed(dist: DistInfo) -> None:
    """Destroy the process group if this run created one."""
    if dist.distributed and tdist.is_initialized():
        tdist.destroy_process_group()


def collect_names(values: Sequence[str] | None) -> list[str]:
    """Split comma-separated and repeated option values: ``["a,b", "c"] -> ["a", "b", "c"]``."""
    out: list[str] = []
    for v in values or []:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return out
