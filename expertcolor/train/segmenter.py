"""``expertcolor train-segmenter``: distil a colour teacher's labels into a grayscale segmenter.

Trains :class:`expertcolor.segmentation.GraySegmenter` (1-channel L input) on image + label-map
pairs (:mod:`expertcolor.datasets.segmentation`: label roots mirroring image roots) with
cross-entropy (``ignore_index=255``, optional class weights, class-balanced sampling and
oversampling of subjects inside scenes) and reports mIoU over VOC-21 and over the 4 routing
groups (:data:`~expertcolor.segmentation.categories.ROUTING_GROUPS`) on held-out labels after
every epoch — and on whole photos with ground-truth labels (``--mixed-images``) when given.

Usage (also ``python -m expertcolor.train.segmenter ...`` and ``python -m expertcolor.train segmenter ...``)::

    expertcolor train-segmenter --images photos/ --labels labels/ --epochs 20 \\
        --init-encoder mobilenet_v2_imagenet_bnstats.safetensors --out runs/segmenter
    expertcolor train-segmenter --images faces/ birds/ --labels seg/faces/ seg/birds/ --val-split layout \\
        --mixed-images coco/images --mixed-labels coco/voc --out runs/seg   # several roots, their own splits

The result is ``OUT/segmenter/`` (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..argtypes import positive_int, unit_float
from ..color import rgb_to_lab
from ..datasets import Augment, SegmentationPairs, check_usable, skip_stats
from ..datasets.base import rgb_uint8_to_tensor
from ..datasets.segmentation import SPLIT_RULES, find_pairs, segmentation_pairs
from ..files import open_label_map, read_label_map
from ..modeling import WEIGHTS_NAME, sha256_file
from ..segmentation import VOC_CATEGORIES, GraySegmenter, SegmenterConfig
from ..segmentation.categories import ROUTING_GROUPS, VOC_TO_GROUP
from .command import TrainingRun, run_module, run_training
from .distributed import DistInfo, all_reduce_sum, shard_indices
from .losses import SegLoss, create_loss
from .metrics import confusion_matrix, group_confusion, iou_from_confusion
from .options import add_common_args, command_line, resolved_args
from .sampling import cap_dataset

LIGHT_FPN = {"decoder_pyramid_channels": 128, "decoder_segmentation_channels": 64, "upsampling": 1}
# A subject "in a scene" for --scene-oversample: it covers this share of the labelled pixels (not the whole frame,
# as in a face crop, and not a speck).
SCENE_FRACTION = (0.01, 0.5)
#: Names of the routing groups in metric keys (``val_iou_other``, ``val_iou_person``...).
_GROUP_KEYS = ("other", *ROUTING_GROUPS[1:])

__all__ = ["get_args_parser", "main", "build", "build_pairs", "class_weights", "image_weights", "SegLoss"]

logger = logging.getLogger(__name__)


class _Removed(argparse.Action):
    """A removed option: using it is a usage error that says what replaces it."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="*", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.replacement = replacement

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        raise argparse.ArgumentError(self, f"was removed: {self.replacement}")


_DATA_REMOVED = ("the library no longer knows one data layout; name each images root and the labels root that "
                 "mirrors it: --images A B --labels LA LB (with --val-split layout for their own train/val "
                 "folders, --mixed-images/--mixed-labels for whole-photo evaluation); tools/train_defaults.sh "
                 "spells out the former --data layout this way")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Options of ``train-segmenter``."""
    p = argparse.ArgumentParser(
        prog="expertcolor train-segmenter",
        description="Train the grayscale segmenter (L -> VOC-21) from image + label pairs.",
        add_help=add_help,
    )
    d = p.add_argument_group("data: labels roots mirroring images roots")
    d.add_argument("--images", nargs="+", default=None, metavar="DIR",
                   help="images root(s); several roots train on their union")
    d.add_argument("--labels", nargs="+", default=None, metavar="DIR",
                   help="per --images root, the labels root mirroring it (<rel>/<stem>.png, 8-bit class ids, "
                        "255 = ignore)")
    d.add_argument("--val-images", nargs="+", default=None, metavar="DIR",
                   help="held-out images root(s); every --images pair then trains (default: held out by --val-split)")
    d.add_argument("--val-labels", nargs="+", default=None, metavar="DIR",
                   help="per --val-images root, its labels root")
    d.add_argument("--val-split", choices=SPLIT_RULES, default="seeded",
                   help="which pairs of each --images root are held out: 'seeded': a seeded --val-fraction; "
                        "'layout': the root's own split where it has one (train/ beside val/ or test/ subfolders, "
                        "or a CUB-200-2011 tree's train_test_split.txt), seeded otherwise (default %(default)s)")
    d.add_argument("--val-fraction", type=float, default=0.1)
    d.add_argument("--split-seed", type=int, default=0)
    d.add_argument("--mixed-images", default=None, metavar="DIR",
                   help="whole photos with ground-truth labels (e.g. COCO photos mixing several subjects), scored "
                        "after every epoch at --mixed-size (metrics mixed_*)")
    d.add_argument("--mixed-labels", default=None, metavar="DIR", help="labels root mirroring --mixed-images")
    d.add_argument("--no-mixed", action="store_true", help="skip the --mixed-images evaluation")
    d.add_argument("--mixed-size", type=positive_int, default=320, help="long side for the mixed evaluation")
    for option in ("--data", "--domains", "--extras"):
        d.add_argument(option, action=_Removed, replacement=_DATA_REMOVED)
    m = p.add_argument_group("model and loss")
    m.add_argument("--arch", default="fpn", help="smp architecture (default %(default)s)")
    m.add_argument("--encoder", default="mobilenet_v2", help="smp encoder (default %(default)s)")
    m.add_argument("--mosaic", type=unit_float, default=0.5,
                   help="probability of a 2x2 mosaic training sample (several small subjects; default %(default)s)")
    m.add_argument("--paste", type=unit_float, default=0.0,
                   help="probability of pasting 1-3 subjects cut out of other samples (by their labels) onto a "
                        "training sample, at 20-70%% of its side: whole people/animals inside scenes "
                        "(default %(default)s)")
    m.add_argument("--model-kwargs", type=json.loads, default=None, metavar="JSON",
                   help="smp keyword arguments (default for fpn: a light decoder predicting at 1/4 resolution, "
                   f"{json.dumps(LIGHT_FPN)})")
    m.add_argument("--class-weights", choices=("none", "sqrt_inv"), default="sqrt_inv",
                   help="CE class weights from pixel frequencies: (f/median)^-1/2, clipped to [0.25, 4]")
    m.add_argument("--balanced-sampling", action="store_true",
                   help="draw images with probability ∝ rarity^1/2 of the rarest routing group they contain")
    m.add_argument("--scene-oversample", nargs="+", type=_group_factor, default=None, metavar="GROUP=K",
                   help="draw label maps in which GROUP (person, bird or animal) covers "
                        f"{SCENE_FRACTION[0]:.0%}%-{SCENE_FRACTION[1]:.0%}% of the frame K times as often: "
                        "subjects inside scenes, like the photos the colorizer routes (e.g. person=3)")
    m.add_argument("--init-from", type=str, default=None, metavar="DIR",
                   help="fine-tune: start from a trained GraySegmenter directory (its arch, encoder and decoder "
                        "options replace --arch/--encoder/--model-kwargs)")
    add_common_args(p, resolution=160, batch_size=16, lr=1e-3)
    return p


def _init_segmenter(args: argparse.Namespace) -> GraySegmenter:
    """The segmenter named by ``--init-from``; its architecture options replace the command line's."""
    directory = Path(args.init_from)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"--init-from {directory}: not a segmenter directory (no config.json)")
    init = GraySegmenter.from_pretrained(directory)
    if tuple(init.config.categories) != tuple(VOC_CATEGORIES):
        raise ValueError(f"--init-from {directory}: predicts {len(init.config.categories)} categories, "
                         f"training uses the {len(VOC_CATEGORIES)} VOC categories")
    args.arch, args.encoder, args.model_kwargs = init.config.arch, init.config.encoder, dict(init.config.model_kwargs)
    return init


def build_pairs(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training and held-out ``(image, label)`` pairs from ``--images`` / ``--labels`` (and ``--val-*``).

    Raises:
        ValueError: for missing or mismatched roots, or roots without pairs.
        FileNotFoundError: for a root that does not exist.
    """
    if not (args.images and args.labels):
        raise ValueError("train-segmenter needs --images and --labels (one labels root per images root)")
    if args.val_images or args.val_labels:
        if not (args.val_images and args.val_labels):
            raise ValueError("--val-images and --val-labels go together")
        return (segmentation_pairs(args.images, args.labels, None),
                segmentation_pairs(args.val_images, args.val_labels, None))
    kw = dict(rule=args.val_split, val_fraction=args.val_fraction, split_seed=args.split_seed)
    return (segmentation_pairs(args.images, args.labels, "train", **kw),
            segmentation_pairs(args.images, args.labels, "val", **kw))


def class_weights(label_paths: list[str], num_classes: int, max_labels: int = 1000, seed: int = 0) -> torch.Tensor:
    """CE weights ``(C,)``: ``(f_c / median f)^-1/2`` clipped to ``[0.25, 4]`` from pixel frequencies
    over a seeded sample of label maps; classes never seen get weight 1."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(label_paths))[:max_labels]
    counts = np.zeros(num_classes, dtype=np.float64)
    for i in pick:
        lb = read_label_map(label_paths[i]).ravel()
        counts += np.bincount(lb[lb < num_classes], minlength=num_classes)[:num_classes]
    f = counts / max(counts.sum(), 1.0)
    present = f > 0
    w = np.ones(num_classes)
    if present.any():
        w[present] = np.clip((f[present] / np.median(f[present])) ** -0.5, 0.25, 4.0)
    return torch.tensor(w, dtype=torch.float32)


def _group_factor(text: str) -> tuple[str, float]:
    """``"person=3"`` -> ``("person", 3.0)`` for ``--scene-oversample``."""
    name, sep, value = text.partition("=")
    subjects = ROUTING_GROUPS[1:]
    if not sep or name not in subjects:
        raise argparse.ArgumentTypeError(f"expected GROUP=K with GROUP one of {', '.join(subjects)}, got {text!r}")
    try:
        k = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be a number") from None
    if not 0 < k < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: K must be positive and finite")
    return name, k


def group_fractions(label_paths: list[str]) -> np.ndarray:
    """``(N, 4)``: the share of each routing group among each label map's labelled (not ignored) pixels."""
    lut = np.full(256, len(ROUTING_GROUPS), dtype=np.int64)  # unknown ids and ignore -> a dropped extra bin
    lut[: len(VOC_TO_GROUP)] = VOC_TO_GROUP
    out = np.zeros((len(label_paths), len(ROUTING_GROUPS)))
    for i, p in enumerate(label_paths):
        counts = np.bincount(lut[read_label_map(p)].ravel(), minlength=len(ROUTING_GROUPS) + 1)[: len(ROUTING_GROUPS)]
        out[i] = counts / max(counts.sum(), 1)
    return out


def image_weights(label_paths: list[str], *, balanced: bool = True,
                  scene_oversample: dict[str, float] | None = None) -> torch.Tensor:
    """Per-image draw weights ``(N,)``.

    Args:
        label_paths: VOC-id label maps, one per training image.
        balanced: weight ``(1 / images containing g)^1/2`` for the rarest routing group ``g`` present
            (background/other counts only for images with nothing else); otherwise 1.
        scene_oversample: ``{group: K}``; images where that group covers a ``SCENE_FRACTION`` share of
            the labelled pixels get K times the weight (the largest K when several groups qualify).
    """
    frac = group_fractions(label_paths)
    present = frac > 0
    present[:, 0] = ~present[:, 1:].any(1)  # background/other counts only for images with no subject
    w = np.ones(len(label_paths))
    if balanced:
        freq = present.sum(0)
        w = np.array([max((1.0 / freq[g]) ** 0.5 for g in np.flatnonzero(row)) for row in present])
    if scene_oversample:
        lo, hi = SCENE_FRACTION
        boost = np.ones(len(label_paths))
        for name, k in scene_oversample.items():
            g = ROUTING_GROUPS.index(name)
            in_scene = (frac[:, g] >= lo) & (frac[:, g] <= hi)
            boost[in_scene] = np.maximum(boost[in_scene], k)
        w = w * boost
    return torch.tensor(w, dtype=torch.float64)


class LogitsSegmenter(nn.Module):
    """``L -> GraySegmenter.raw`` (scores at the decoder's stride) — the module DDP wraps."""

    def __init__(self, segmenter: GraySegmenter) -> None:
        super().__init__()
        self.segmenter = segmenter

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return self.segmenter.raw(L)


def _iou_report(conf: torch.Tensor, prefix: str) -> dict[str, float]:
    iou, miou = iou_from_confusion(conf)
    giou, gmiou = iou_from_confusion(group_confusion(conf, VOC_TO_GROUP))
    out = {f"{prefix}miou_voc": miou, f"{prefix}miou_groups": gmiou,
           f"{prefix}pixel_acc": float(conf.diag().sum() / conf.sum().clamp_min(1))}
    for name, v in zip(_GROUP_KEYS, giou.tolist()):
        out[f"{prefix}iou_{name}"] = v
    return out


def _mixed_items(pairs: list[tuple[str, str]], long_side: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(L (1,1,h,w), label (h,w) int64)`` of whole photos and their labels, long side ``long_side``."""
    items = []
    for img_path, lbl_path in pairs:
        with Image.open(img_path) as im:
            img = im.convert("RGB")
        lbl = open_label_map(lbl_path)
        s = long_side / max(img.size)
        size = (max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s)))
        L = rgb_to_lab(rgb_uint8_to_tensor(img.resize(size, Image.BILINEAR)))[:1][None]
        items.append((L, torch.from_numpy(np.asarray(lbl.resize(size, Image.NEAREST), dtype=np.int64).copy())))
    return items


def mixed_pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``--mixed-images`` / ``--mixed-labels`` pairs (none without them or with ``--no-mixed``).

    Raises:
        ValueError: if only one of the two is given.
    """
    if bool(args.mixed_images) != bool(args.mixed_labels):
        raise ValueError("--mixed-images and --mixed-labels go together")
    if not args.mixed_images or args.no_mixed:
        return []
    return find_pairs(args.mixed_images, args.mixed_labels)


def make_evaluator(args: argparse.Namespace, val_set: Dataset, dist: DistInfo, num_classes: int) -> Any:
    """A function ``(LogitsSegmenter) -> metrics``: ``val_*`` on the held-out pairs (crops as
    in training), ``mixed_*`` on the whole ``--mixed-images`` photos when given."""
    idx = shard_indices(len(val_set), dist, args.max_val_images)
    loader = DataLoader(Subset(val_set, idx), batch_size=args.batch_size, num_workers=args.workers)
    mixed = _mixed_items(mixed_pairs(args)[dist.rank :: dist.world_size], args.mixed_size)

    def evaluate(model: LogitsSegmenter) -> dict[str, float]:
        conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        for L, lbl in loader:
            pred = model.segmenter.logits(L.to(dist.device)).argmax(1).cpu()
            conf += confusion_matrix(pred, lbl, num_classes)
        out = _iou_report(_reduce_conf(conf, dist), "val_")
        if mixed:
            conf = torch.zeros_like(conf)
            for L, lbl in mixed:
                pred = model.segmenter.logits(L.to(dist.device)).argmax(1)[0].cpu()
                conf += confusion_matrix(pred, lbl, num_classes)
            out.update(_iou_report(_reduce_conf(conf, dist), "mixed_"))
        return out

    return evaluate


def _reduce_conf(conf: torch.Tensor, dist: DistInfo) -> torch.Tensor:
    """A confusion matrix summed over ranks (exact: counts stay far below 2^53 in float64)."""
    return all_reduce_sum(conf.double(), dist).long()


def build(args: argparse.Namespace, dist: DistInfo) -> TrainingRun:
    """Data, segmenter, loss and evaluation of ``train-segmenter`` (resolves ``--arch``, ``--encoder``
    and ``--model-kwargs`` from ``--init-from`` or the defaults, in ``args``).

    Raises:
        ValueError: for bad data or option combinations.
        FileNotFoundError: for a missing root or ``--init-from`` directory.
    """
    train_pairs, val_pairs = build_pairs(args)
    train_set = SegmentationPairs(train_pairs, args.resolution, Augment(), args.seed, name="segmentation train",
                                  mosaic=args.mosaic, paste=args.paste)
    val_set = SegmentationPairs(val_pairs, args.resolution, Augment(enabled=False), args.seed,
                                name="segmentation val")
    train_set = cap_dataset(train_set, args.max_images, args.seed)
    check_usable(train_set)  # no usable photo fails now, not inside a DataLoader worker
    check_usable(val_set)
    train_labels = [train_pairs[i][1] for i in (train_set.indices if isinstance(train_set, Subset)
                                                else range(len(train_pairs)))]
    torch.manual_seed(args.seed)
    init = _init_segmenter(args) if args.init_from else None
    if args.model_kwargs is None:
        # 1/4-resolution output trains ~1.5x faster on CPU (46 vs 30 images/s at 160^2, measured).
        args.model_kwargs = dict(LIGHT_FPN) if args.arch == "fpn" else {}
    config = SegmenterConfig(arch=args.arch, encoder=args.encoder, resolution=args.resolution,
                             categories=VOC_CATEGORIES, model_kwargs=args.model_kwargs)
    seg = GraySegmenter(config)
    if init is not None:
        seg.load_state_dict(init.state_dict())
    elif args.init_encoder:
        seg.load_encoder(args.init_encoder)
    n_cls = len(VOC_CATEGORIES)
    weight = class_weights(train_labels, n_cls, seed=args.seed) if args.class_weights == "sqrt_inv" else None
    scene_oversample = dict(args.scene_oversample or ())
    sample_w = None
    if args.balanced_sampling or scene_oversample:
        sample_w = image_weights(train_labels, balanced=args.balanced_sampling, scene_oversample=scene_oversample)

    def save(result: dict[str, Any], wall_time_s: float) -> dict[str, Any]:
        final = result["history"][-1] if result["history"] else {}
        seg.config = SegmenterConfig(**{
            **{f: getattr(config, f) for f in ("arch", "encoder", "categories", "resolution", "input_norm",
                                               "model_kwargs")},
            "provenance": {
                "data": {"images": args.images, "labels": args.labels},
                "command": command_line(),
                "args": {k: v for k, v in resolved_args(args).items() if k != "command"},
                "init_encoder": Path(args.init_encoder).name if args.init_encoder else None,
                "init_from": None if init is None else {
                    "dir": str(args.init_from),
                    "sha256": sha256_file(Path(args.init_from) / WEIGHTS_NAME),  # the path may change later
                    **{k: init.config.provenance.get(k) for k in ("command", "images_seen")}},
                "epochs": args.epochs,
                "images_seen": result["images_seen"],
                "steps": result["global_step"],
                "train_time_s": round(result["train_time"], 1),
                "wall_time_s": round(wall_time_s, 1),
                "class_weights": args.class_weights,
                "balanced_sampling": bool(args.balanced_sampling),
                "scene_oversample": scene_oversample,
                "seed": args.seed,
                "skipped_train_files": skip_stats(train_set),
                "val_metrics": {k: v for k, v in final.items() if k.startswith(("val_", "mixed_"))},
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        })
        out_dir = seg.save_pretrained(Path(args.out) / "segmenter")
        logger.info("segmenter written to %s", out_dir)
        return {"segmenter_dir": str(out_dir)}

    return TrainingRun(
        model=LogitsSegmenter(seg), criterion=create_loss("seg_ce", weight=weight), train_set=train_set,
        evaluate=make_evaluator(args, val_set, dist, n_cls), save=save, sample_weights=sample_w,
        description=f"train-segmenter: {len(train_set)} train / {len(val_set)} val pairs",
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Train a grayscale segmenter as described by ``args`` (from :func:`get_args_parser`).

    Returns:
        The final training state plus ``segmenter_dir`` when the run finished.
    """
    return run_training(args, build)


if __name__ == "__main__":
    import sys

    run_module(sys.modules[__name__])
