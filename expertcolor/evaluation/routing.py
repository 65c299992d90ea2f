"""Routing accuracy: how well the segmenter, seeing only L, finds the ground-truth routing groups (IoU)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..colorizer import ExpertColorizer
from ..files import read_label_map
from ..io import decode_inputs
from ..segmentation.categories import ROUTING_GROUPS
from ..train.metrics import confusion_matrix, iou_from_confusion
from ..visualize import resize_L
from .loop import list_photos
from .variants import EXPERT_GROUPS

__all__ = ["iou_table", "evaluate_routing"]


def _category_groups(colorizer: ExpertColorizer) -> np.ndarray:
    """Group of each segmentation category under the colorizer's routing table."""
    table = colorizer.routing
    return np.array([EXPERT_GROUPS.get(table.expert_for(c), 0) for c in table.categories], dtype=np.int64)


def iou_table(conf: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Pixel accuracy, per-class IoU and mIoU of a confusion matrix (rows = truth, columns = prediction).

    Args:
        conf: ``(C, C)`` pixel counts.
        names: the ``C`` class names.

    Returns:
        ``{"pixel_acc", "iou": {name: IoU or None}, "miou"}``; a class absent from truth and
        prediction has IoU ``None`` and is left out of the mean (``None`` when every class is absent).
    """
    iou, _ = iou_from_confusion(torch.from_numpy(np.asarray(conf)))
    iou = iou.numpy()
    inter = np.diag(conf).astype(np.float64)
    return {
        "pixel_acc": float(inter.sum() / max(conf.sum(), 1)),
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        # numpy's mean, to the last bit as reports have always had it (torch sums in another order)
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else None,
    }


def evaluate_routing(
    colorizer: ExpertColorizer,
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike,
    teacher_dir: str | os.PathLike | None = None,
    voc_dir: str | os.PathLike | None = None,
    max_images: int | None = None,
) -> dict[str, Any]:
    """How well the colorizer's segmenter routes, on grayscale input, against ground-truth groups.

    The segmenter sees only L (at the colorizer's working size); its argmax category is mapped to a
    routing group through the routing table (faces -> person, birds -> bird, animals -> animal, other
    experts -> background/other) and upsampled (nearest) to full resolution. IoU per group is pooled
    over all pixels of the set; 255 in a mask is ignored.

    Args:
        colorizer: supplies the segmenter, routing table and working size.
        images_dir: colour photos (only their L is used).
        groups_dir: group masks ``<name>.png`` (0 background, 1 person, 2 bird, 3 animal, 255 ignore).
        teacher_dir: optional reference label maps (VOC ids, e.g. a colour teacher run on grayscale
            input) scored the same way.
        voc_dir: optional VOC-21 ground truth, for the segmenter's VOC mIoU (classes present in the set).
        max_images: only the first N photos (sorted by path), as :func:`~expertcolor.evaluation.evaluate`.

    Returns:
        ``{"images", "segmenter": {...}, "teacher": {...}?, "segmenter_voc": {...}?}``, each an
        :func:`iou_table`.

    Raises:
        ValueError: when no photo has a group mask.
    """
    images_dir, groups_dir = Path(images_dir), Path(groups_dir)
    cat_groups = _category_groups(colorizer)
    n_cat, n_groups = len(cat_groups), len(ROUTING_GROUPS)
    conf = {"segmenter": torch.zeros(n_groups, n_groups, dtype=torch.int64)}
    if teacher_dir is not None:
        conf["teacher"] = torch.zeros(n_groups, n_groups, dtype=torch.int64)
    voc_conf = torch.zeros(n_cat, n_cat, dtype=torch.int64)
    used = 0
    for path in list_photos(images_dir)[:max_images]:
        rel = path.relative_to(images_dir).with_suffix(".png")
        if not (groups_dir / rel).is_file():
            continue
        d = decode_inputs(path)[0]
        gt = torch.from_numpy(read_label_map(groups_dir / rel).astype(np.int64))
        L = d.L.to(colorizer.device)
        with torch.inference_mode():
            probs = colorizer.segment(resize_L(L, colorizer.working_size))
            labels = F.interpolate(probs.argmax(1, keepdim=True).float(), size=L.shape[-2:], mode="nearest")
            labels = labels[0, 0].long().cpu().numpy()
        preds = {"segmenter": cat_groups[labels]}
        if teacher_dir is not None:
            teacher = read_label_map(Path(teacher_dir) / rel).astype(np.int64)
            preds["teacher"] = cat_groups[np.clip(teacher, 0, n_cat - 1)]
        for k, pred in preds.items():
            conf[k] += confusion_matrix(torch.from_numpy(pred), gt, n_groups)
        if voc_dir is not None and (Path(voc_dir) / rel).is_file():
            voc = torch.from_numpy(read_label_map(Path(voc_dir) / rel).astype(np.int64))
            voc_conf += confusion_matrix(torch.from_numpy(labels), voc, n_cat)
        used += 1
    if used == 0:
        raise ValueError(f"no image in {images_dir} has a group mask in {groups_dir}")
    out: dict[str, Any] = {"images": used}
    out.update({k: iou_table(c.numpy(), ROUTING_GROUPS) for k, c in conf.items()})
    if voc_dir is not None:
        voc_np = voc_conf.numpy()
        present = voc_np.sum(1) > 0  # classes that occur in the ground truth
        names = [c for c, p in zip(colorizer.segmenter.categories, present) if p]
        out["segmenter_voc"] = iou_table(voc_np[np.ix_(present, present)], names)
    return out
