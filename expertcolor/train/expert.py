"""``expertcolor train-expert``: train a domain expert (L -> ab) on colour photos.

Usage (also ``python -m expertcolor.train.expert ...``, ``python -m expertcolor.train ...`` and
``torchrun --nproc_per_node=N -m expertcolor.train ...``)::

    expertcolor train-expert --name birds --dataset cub --root data/birds --epochs 30 \\
        --init-encoder mobilenet_v2_imagenet_bnstats.safetensors --out runs/birds

The result is ``OUT/expert/`` (``config.json`` + ``model.safetensors``, training provenance in the
config), beside ``OUT/checkpoint.pt``, ``OUT/args.json`` and ``OUT/metrics.jsonl``. Register it in
a model directory with :func:`expertcolor.hub.add_expert_to_model_dir`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from ..argtypes import nonnegative_float, positive_float, positive_int, unit_float
from ..color import normalize_l
from ..datasets import DATASETS, IGNORE_INDEX, MIN_CHROMA, Augment, build_dataset, check_usable, skip_stats
from ..datasets.cache import cache_datasets
from ..experts import DEFAULT_EXPERT_ARCH, Expert, create_expert, list_experts
from ..modeling import WEIGHTS_NAME, sha256_file
from ..segmentation import DEFAULT_ROUTES, VOC_CATEGORIES, RoutingTable
from .checkpoint import CHECKPOINT_NAME
from .command import TrainingRun, run_module, run_training
from .distributed import DistInfo, reduce_dict, shard_indices
from .losses import (
    ChromaBoostLoss,
    ColorfulnessLoss,
    DistillationLoss,
    SoftEncodedCELoss,
    boost_chroma,
    create_loss,
    estimate_bin_prior,
    innermost_loss,
    list_losses,
    pool_target,
)
from .metrics import color_metrics
from .options import add_common_args, collect_names, command_line, resolved_args
from .sampling import cap_dataset

#: (temperature, prior correction) the default models decode with (``expertcolor assemble --temperature 0.5
#: --prior-correction 0.5``): ``--colorfulness-weight`` scores the colours users will see.
SHIPPED_DECODING = (0.5, 0.5)

__all__ = ["get_args_parser", "main", "build", "build_datasets", "sample_weights", "route_weight_table", "RawExpert"]

logger = logging.getLogger(__name__)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Options of ``train-expert``."""
    p = argparse.ArgumentParser(
        prog="expertcolor train-expert", description="Train a colorization expert (L -> ab).", add_help=add_help
    )
    g = p.add_argument_group("expert")
    g.add_argument("--name", default="expert", help="expert name used by routing (e.g. faces, birds, animals, places)")
    g.add_argument("--classes", nargs="*", default=None,
                   help="VOC classes the expert owns (default: from the default routing table for --name)")
    g.add_argument("--arch", default=DEFAULT_EXPERT_ARCH, choices=list_experts())
    g.add_argument("--head", default="classification", choices=("classification", "regression"))
    g.add_argument("--loss", default="auto",
                   choices=("auto", *list_losses("classification"), *list_losses("regression")),
                   help="auto: soft_ce (classification) / mse (regression)")
    g.add_argument("--rebalance-lambda", type=unit_float, default=0.5,
                   help="class rebalancing mix with uniform for soft_ce/ce (1 = no rebalancing)")
    g.add_argument("--chroma-boost", type=positive_float, default=1.0, metavar="F",
                   help="multiply the targets' chroma by F before the loss (DDColor: 1.2): more colourful "
                        "predictions at some cost in accuracy; the bin prior is estimated on the boosted targets "
                        "(default 1: off)")
    g.add_argument("--colorfulness-weight", type=nonnegative_float, default=0.0, metavar="W",
                   help="classification: add W x each photo's chroma deficit (how much duller its prediction, decoded "
                        "at temperature 0.5 and prior correction 0.5 as the defaults ship, is than its target; ab/110) "
                        "to the loss (default 0: off)")
    g.add_argument("--prior-images", type=positive_int, default=500,
                   help="training images used to estimate the ab bin prior")
    g.add_argument("--temperature", type=positive_float, default=None,
                   help="annealed-mean temperature stored in the expert")
    g.add_argument("--distill-from", type=str, default=None, metavar="DIR",
                   help="an expert directory (e.g. the generalist this expert branches from) whose 225-bin "
                        "distribution the expert is pulled toward while it specialises (same ab bins)")
    g.add_argument("--distill-weight", type=nonnegative_float, default=0.5,
                   help="with --distill-from: weight of KL(teacher || expert) next to the loss (default 0.5)")
    g.add_argument("--init-from", type=str, default=None, metavar="DIR",
                   help="fine-tune: start from a trained expert directory (e.g. a places expert); its arch, head "
                        "and ab bins replace --arch/--head, --init-encoder is ignored")
    d = p.add_argument_group("data")
    d.add_argument("--dataset", nargs="+", default=["folder"], choices=DATASETS,
                   help="layout of each --root (one value applies to all roots)")
    d.add_argument("--root", nargs="+", required=True, help="dataset root(s); several roots train on their union")
    d.add_argument("--root-weight", nargs="+", type=positive_float, default=None, metavar="W",
                   help="sampling weight of each --root's images (one per root): oversample a small root, e.g. "
                        "'--root faces people --root-weight 1 3'; epochs keep the union's length")
    d.add_argument("--route-labels", nargs="+", default=None, metavar="DIR",
                   help="routing-aware training: per --root, a folder of label maps mirroring it (VOC class ids, "
                        "e.g. a segmentation teacher's predictions), or 'none' for a root "
                        "whose every pixel is this expert's. The loss then counts only the pixels routing sends to "
                        "this expert (its --classes; the default expert owns every class no other expert does)")
    d.add_argument("--off-route-weight", type=unit_float, default=0.0,
                   help="with --route-labels: loss weight of pixels routed to other experts (0 = none, 1 = all count)")
    d.add_argument("--data-classes", nargs="*", default=None,
                   help="class filter of the data (Animals-10 classes, folder subfolders, Places365 categories)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction for seeded splits")
    d.add_argument("--split-seed", type=int, default=0, help="seed of the seeded splits")
    d.add_argument("--min-chroma", type=nonnegative_float, default=MIN_CHROMA,
                   help="skip images whose mean chroma is below this")
    d.add_argument("--cache-dir", type=str, default=None, metavar="DIR",
                   help="decode every photo once into uint8 Lab at training size in DIR and train from there "
                        "(faster data loading; about 0.2 MB a photo at 128 px; entries are reused by later runs "
                        "on the same photos and settings)")
    add_common_args(p, resolution=128, batch_size=32, lr=1e-3)
    return p


def build_datasets(args: argparse.Namespace) -> tuple[Dataset, Dataset]:
    """Training and validation sets from ``--dataset`` / ``--root`` (a union for several roots)."""
    kinds = list(args.dataset)
    roots = list(args.root)
    if len(kinds) == 1:
        kinds = kinds * len(roots)
    if len(kinds) != len(roots):
        raise ValueError(f"--dataset has {len(kinds)} values but --root has {len(roots)}; give one or one per root")
    data_classes = collect_names(args.data_classes) or None
    train, val = [], []
    for kind, root in zip(kinds, roots):
        common = dict(resolution=args.resolution, seed=args.seed, min_chroma=args.min_chroma,
                      val_fraction=args.val_fraction, split_seed=args.split_seed,
                      classes=data_classes if kind not in ("celeba", "cub") else None)
        train.append(build_dataset(kind, root, "train", augment=Augment(), **common))
        val.append(build_dataset(kind, root, "val", augment=Augment(enabled=False), **common))
    if args.route_labels is not None:
        attach_route_labels(args, train, roots)
    train_set: Dataset = train[0] if len(train) == 1 else ConcatDataset(train)
    val_set: Dataset = val[0] if len(val) == 1 else _interleave(val)
    return cap_dataset(train_set, args.max_images, args.seed), val_set


def route_weight_table(name: str, classes: Sequence[str], off_route_weight: float = 0.0) -> np.ndarray:
    """Per-class-id loss weights ``(256,)`` for routing-aware training of expert ``name``.

    The expert owns ``classes`` (VOC names); with none given, the default expert (places) owns every
    class that the default routing sends nowhere else. Owned ids weigh 1, the other ids
    ``off_route_weight``, the ignore id 255 weighs 0.

    Raises:
        ValueError: if the expert owns no class, or ``off_route_weight`` is outside ``[0, 1]``.
    """
    if not 0.0 <= off_route_weight <= 1.0:
        raise ValueError(f"--off-route-weight must be in [0, 1], got {off_route_weight}")
    routing = RoutingTable()  # the default table decides what the default expert (places) owns
    owned = [i for i, c in enumerate(VOC_CATEGORIES) if (c in classes if classes else routing.expert_for(c) == name)]
    if not owned:
        raise ValueError(f"--route-labels: expert {name!r} owns no VOC class; name its classes with --classes")
    table = np.full(256, off_route_weight, dtype=np.float32)
    table[owned] = 1.0
    table[IGNORE_INDEX] = 0.0
    return table


def attach_route_labels(args: argparse.Namespace, train: Sequence[Any], roots: Sequence[str]) -> None:
    """Give each root's training set the per-pixel loss weights of ``--route-labels``.

    Raises:
        ValueError: if the count of ``--route-labels`` does not match ``--root``.
    """
    labels = list(args.route_labels)
    if len(labels) != len(roots):
        raise ValueError(f"--route-labels has {len(labels)} values but --root has {len(roots)}; give one per root "
                         "('none' for a root whose every pixel counts)")
    table = route_weight_table(args.name, args.classes, args.off_route_weight)
    for ds, root, lbl in zip(train, roots, labels):
        if lbl.lower() == "none":
            ds.with_pixel_weights()
        else:
            ds.with_pixel_weights(table, images_root=root, labels_root=lbl)


def sample_weights(args: argparse.Namespace, train_set: Dataset) -> torch.Tensor | None:
    """Per-item draw weights from ``--root-weight`` (``None``: a plain permutation per epoch).

    Raises:
        ValueError: for a count that does not match ``--root`` or a weight that is not positive.
    """
    if args.root_weight is None:
        return None
    weights = [float(w) for w in args.root_weight]
    if len(weights) != len(args.root):
        raise ValueError(f"--root-weight has {len(weights)} values but --root has {len(args.root)}; give one per root")
    if not all(w > 0 and w < float("inf") for w in weights):
        raise ValueError(f"--root-weight values must be positive, got {weights}")
    base, idx = train_set, None
    if isinstance(base, Subset):  # --max-images
        base, idx = base.dataset, list(base.indices)
    sizes = base.cumulative_sizes if isinstance(base, ConcatDataset) else [len(base)]
    per_item = torch.cat([torch.full((n - m,), w, dtype=torch.float64)
                          for w, n, m in zip(weights, sizes, [0, *sizes[:-1]])])
    return per_item if idx is None else per_item[idx]


def _interleave(sets: Sequence[Dataset]) -> Dataset:
    """Concatenate validation sets in round-robin order, so a --max-val-images cap covers all."""
    cat = ConcatDataset(sets)
    offsets = [0, *cat.cumulative_sizes[:-1]]
    order = [off + i for i in range(max(len(s) for s in sets)) for s, off in zip(sets, offsets) if i < len(s)]
    return Subset(cat, order)


class RawExpert(nn.Module):
    """``L (B,1,H,W) in [0,100] -> Expert.raw`` — the module DDP wraps for training."""

    def __init__(self, expert: Expert) -> None:
        super().__init__()
        self.expert = expert

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.expert.raw(normalize_l(L))


class DistilledExpert(RawExpert):
    """:class:`RawExpert` whose training output also carries a frozen teacher's logits (the channels
    after the expert's), for :class:`~expertcolor.train.losses.DistillationLoss`; in eval mode the
    expert's alone.

    The teacher is not a submodule: checkpoints and the saved expert hold the student only.
    """

    def __init__(self, expert: Expert, teacher: Expert) -> None:
        super().__init__(expert)
        object.__setattr__(self, "teacher", teacher.eval().requires_grad_(False))

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        out = super().forward(L)
        if not self.training:
            return out
        teacher = self.teacher.to(L.device)
        with torch.no_grad():
            target = teacher.raw(normalize_l(L))
        if target.shape != out.shape:
            raise ValueError(f"--distill-from: the teacher's output {tuple(target.shape)} does not match the "
                             f"expert's {tuple(out.shape)}; distil from an expert with the same head and ab bins")
        return torch.cat([out, target.to(out.dtype)], dim=1)


def _load_teacher(args: argparse.Namespace, expert: Expert) -> Expert:
    """The ``--distill-from`` expert, checked against the one being trained."""
    directory = Path(args.distill_from)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"--distill-from {directory}: not an expert directory (no config.json)")
    teacher = Expert.from_pretrained(directory).float()
    if args.head != "classification" or teacher.config.head != "classification":
        raise ValueError("--distill-from needs classification heads (225 ab bins) on both experts")
    same = teacher.bin_centers.shape == expert.bin_centers.shape
    if not same or not torch.allclose(teacher.bin_centers, expert.bin_centers):
        raise ValueError(f"--distill-from {directory}: its ab bins differ from this expert's; distil from an "
                         "expert of the same family (e.g. the generalist it was branched from)")
    return teacher


def _shrink_head(expert: Expert, scale: float = 0.03) -> None:
    """Scale the last conv of the head down (and zero its bias) so a fresh regression head starts
    near neutral ab: with an ImageNet encoder it otherwise starts at ~30x the target's spread and
    needs hundreds of steps to come back."""
    convs = [m for m in expert.net.segmentation_head.modules() if isinstance(m, nn.Conv2d)]
    if convs:
        with torch.no_grad():
            convs[-1].weight.mul_(scale)
            if convs[-1].bias is not None:
                convs[-1].bias.zero_()


def _init_expert(args: argparse.Namespace) -> Expert:
    """A copy of the expert named by ``--init-from``, renamed and re-owned for this run.

    Its architecture, head and ab bins replace the command line's (the weights only fit those);
    name, classes, resolution and (when given) temperature come from the command line.
    """
    directory = Path(args.init_from)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"--init-from {directory}: not an expert directory (no config.json)")
    try:
        init = Expert.from_pretrained(directory)
    except ValueError as e:  # a model or segmenter directory
        hint = " (a model directory holds its experts in experts/<name>)" if (directory / "experts").is_dir() else ""
        raise ValueError(f"--init-from {directory}: {e}{hint}") from None
    base = init.config
    args.arch = base.provenance.get("preset", args.arch)
    args.head = base.head
    config = dataclasses.replace(
        base, name=args.name, classes=tuple(args.classes), resolution=args.resolution,
        temperature=base.temperature if args.temperature is None else args.temperature,
        provenance={
            **{k: base.provenance[k] for k in ("preset", "init_encoder") if k in base.provenance},
            "init_from": {"dir": str(directory), "name": base.name,
                          **{k: base.provenance.get(k) for k in ("command", "images_seen")},
                          # A directory's content can change (a newer default shipped under the same
                          # path): the hash and the lineage's total say which weights this run started from.
                          "sha256": sha256_file(directory / WEIGHTS_NAME),
                          "images_seen_total": lineage_images(base.provenance)},
        },
    )
    expert = Expert(config)
    expert.load_state_dict({k: v.float() for k, v in init.state_dict().items()})
    return expert


def lineage_images(provenance: dict[str, Any]) -> int | None:
    """Images seen by an expert and every run it was fine-tuned from (its training budget), or None.

    Args:
        provenance: an expert's ``config.provenance``, as ``train-expert`` writes it.

    Returns:
        ``images_seen_total`` when recorded; ``images_seen`` for a run that started from an ImageNet
        encoder or from scratch; None when a run's start predates these records (its own start unknown).
    """
    if provenance.get("images_seen_total") is not None:
        return int(provenance["images_seen_total"])
    seen = provenance.get("images_seen")
    if seen is None:
        return None
    parent = provenance.get("init_from")
    if not parent:
        return int(seen)
    before = parent.get("images_seen_total")
    return None if before is None else int(seen) + int(before)


def _default_classes(name: str) -> list[str]:
    return [c for c, e in DEFAULT_ROUTES.items() if e == name]


def build_criterion(args: argparse.Namespace, expert: Expert, train_set: Dataset, estimate_prior: bool) -> nn.Module:
    """The loss for ``--head`` / ``--loss`` (``auto``: ``soft_ce`` / ``mse``, written back to ``args.loss``);
    estimates the ab bin prior for ``soft_ce`` / ``ce`` when ``estimate_prior``.

    Raises:
        ValueError: if the loss does not train the ``--head``.
    """
    loss = args.loss
    if loss == "auto":
        loss = "soft_ce" if args.head == "classification" else "mse"
    if loss not in list_losses(args.head):
        raise ValueError(f"--loss {loss} does not fit --head {args.head}; choose from {list_losses(args.head)}")
    args.loss = loss
    if args.head == "regression":
        if args.colorfulness_weight:
            raise ValueError("--colorfulness-weight decodes bin logits: use it with --head classification")
        criterion = create_loss(loss)
    else:
        prior = None
        if estimate_prior and args.rebalance_lambda < 1.0:
            prior = estimate_prior_from(train_set, expert, args.prior_images, args.batch_size, args.workers,
                                        args.seed, chroma_boost=args.chroma_boost)
        criterion = create_loss(loss, centers=expert.bin_centers, prior=prior, lam=args.rebalance_lambda)
    if args.chroma_boost != 1:
        criterion = ChromaBoostLoss(criterion, args.chroma_boost)
    if args.colorfulness_weight:
        criterion = ColorfulnessLoss(criterion, args.colorfulness_weight, temperature=SHIPPED_DECODING[0],
                                     prior_correction=SHIPPED_DECODING[1])
    return criterion


def estimate_prior_from(
    train_set: Dataset, expert: Expert, n_images: int, batch_size: int, workers: int, seed: int,
    chroma_boost: float = 1.0,
) -> torch.Tensor:
    """The smoothed ab bin prior over ``n_images`` seeded training samples (their chroma multiplied by
    ``chroma_boost``, as the loss will see them), at the raw output size."""
    n = min(n_images, len(train_set))
    idx = sorted(torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed + 7)).tolist()[:n])
    loader = DataLoader(Subset(train_set, idx), batch_size=batch_size, num_workers=workers)
    with torch.no_grad():
        size = expert.raw(torch.zeros(1, 1, expert.config.resolution, expert.config.resolution)).shape[-2:]
    return estimate_bin_prior((pool_target(boost_chroma(ab, chroma_boost), size) for _, ab in loader),
                              expert.bin_centers * 110.0)


def make_evaluator(args: argparse.Namespace, val_set: Dataset, dist) -> Any:
    """A function ``(RawExpert) -> metrics`` over this rank's share of the validation set."""
    idx = shard_indices(len(val_set), dist, args.max_val_images)
    loader = DataLoader(Subset(val_set, idx), batch_size=args.batch_size, num_workers=args.workers)

    def evaluate(model: RawExpert) -> dict[str, float]:
        sums = {"ab_mse": 0.0, "psnr": 0.0, "colorfulness_pred": 0.0, "colorfulness_true": 0.0, "n": 0.0}
        for L, ab in loader:
            L, ab = L.to(dist.device), ab.to(dist.device)
            m = color_metrics(L, model.expert(L), ab)
            for k, v in m.items():
                sums[k] += float(v.sum())
            sums["n"] += len(L)
        sums = reduce_dict(sums, dist)
        n = max(sums.pop("n"), 1.0)
        out = {f"val_{k}": v / n for k, v in sums.items()}
        out["val_colorfulness_ratio"] = out["val_colorfulness_pred"] / max(out["val_colorfulness_true"], 1e-9)
        out["val_images"] = int(n)
        return out

    return evaluate


def _use_caches(args: argparse.Namespace, dist: DistInfo, *sets: Dataset) -> None:
    """Decode-once caches in ``--cache-dir`` of what training and validation draw (the validated
    photos only): rank 0 builds what is missing while the other ranks wait, then they open it."""
    train_set, val_set = sets
    if not dist.is_main and dist.distributed:
        tdist.barrier()
    show = dist.is_main and not args.no_progress
    cache_datasets(train_set, args.cache_dir, progress=show)
    cache_datasets(val_set, args.cache_dir, shard_indices(len(val_set), DistInfo(), args.max_val_images), progress=show)
    if dist.is_main and dist.distributed:
        tdist.barrier()


def build(args: argparse.Namespace, dist: DistInfo) -> TrainingRun:
    """Data, expert, loss and evaluation of ``train-expert`` (resolves ``--classes``, ``--loss``,
    and ``--arch`` / ``--head`` from ``--init-from``, in ``args``).

    Raises:
        ValueError: for --classes that are not VOC categories, and bad data or option combinations.
        FileNotFoundError: for a missing root or ``--init-from`` directory.
    """
    classes = collect_names(args.classes) if args.classes is not None else _default_classes(args.name)
    unknown = [c for c in classes if c not in VOC_CATEGORIES]
    if unknown:
        raise ValueError(f"--classes {unknown} are not VOC categories; choose from {list(VOC_CATEGORIES)}")
    args.classes = classes
    train_set, val_set = build_datasets(args)
    if args.cache_dir:
        _use_caches(args, dist, train_set, val_set)
    check_usable(train_set)  # a root with no usable photo fails now, not inside a DataLoader worker
    check_usable(val_set)
    draw_weights = sample_weights(args, train_set)
    torch.manual_seed(args.seed)
    if args.init_from:
        expert = _init_expert(args)
    else:
        overrides = {"temperature": args.temperature} if args.temperature is not None else {}
        expert = create_expert(args.arch, name=args.name, classes=classes, resolution=args.resolution,
                               init_encoder=args.init_encoder, head=args.head, **overrides)
        if args.head == "regression":
            _shrink_head(expert)
    resuming = bool(args.resume and (Path(args.out) / CHECKPOINT_NAME).is_file())
    criterion = build_criterion(args, expert, train_set, estimate_prior=not resuming)
    model = RawExpert(expert)
    if args.distill_from:
        model = DistilledExpert(expert, _load_teacher(args, expert))
        criterion = DistillationLoss(criterion, expert.bin_centers.shape[0], args.distill_weight)
    base_criterion = innermost_loss(criterion)

    def save(result: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
        final = result["history"][-1] if result["history"] else {}
        if isinstance(base_criterion, SoftEncodedCELoss):  # lets decoding undo the rebalancing
            expert.set_rebalance_weights(base_criterion.weights)
        expert.with_provenance(
            dataset=list(args.dataset),
            root=[str(r) for r in args.root],
            command=command_line(),
            args={k: v for k, v in resolved_args(args).items() if k != "command"},
            epochs=args.epochs,
            images_seen=result["images_seen"],
            images_seen_total=lineage_images({**expert.config.provenance, "images_seen": result["images_seen"]}),
            steps=result["global_step"],
            train_time_s=round(result["train_time"], 1),
            wall_time_s=round(wall_time_s, 1),
            loss=args.loss,
            seed=args.seed,
            resolution=args.resolution,
            skipped_train_files=skip_stats(train_set),
            val_metrics={k: v for k, v in final.items() if k.startswith("val_")},
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        out_dir = expert.save_pretrained(Path(args.out) / "expert")
        logger.info("expert written to %s", out_dir)
        return {"expert_dir": str(out_dir)}

    return TrainingRun(
        model=model, criterion=criterion, train_set=train_set,
        evaluate=make_evaluator(args, val_set, dist), save=save, sample_weights=draw_weights,
        description=f"train-expert {args.name}: {len(train_set)} train / {len(val_set)} val images, loss {args.loss}",
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Train an expert as described by ``args`` (from :func:`get_args_parser`).

    Returns:
        The final training state (``epoch``, ``global_step``, ``images_seen``, ``history``,
        ``stopped``) plus ``expert_dir`` when the run finished.
    """
    return run_training(args, build)


if __name__ == "__main__":
    import sys

    run_module(sys.modules[__name__])
