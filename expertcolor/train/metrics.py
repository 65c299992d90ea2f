"""Validation metrics, batched in torch.

Colour: ab MSE (Lab units²), PSNR of the RGB reconstructed from the true L and predicted ab against
the RGB of the true Lab, and colourfulness (Hasler & Süsstrunk 2003) of prediction and truth.
Segmentation: a confusion matrix, mIoU over VOC-21 and over the 4 routing groups.
"""

from __future__ import annotations

import torch

from ..color import lab_to_rgb
from ..segmentation.categories import ROUTING_GROUPS, VOC_TO_GROUP

__all__ = [
    "colorfulness",
    "color_metrics",
    "confusion_matrix",
    "iou_from_confusion",
    "group_confusion",
    "VOC_TO_GROUP",
    "GROUP_NAMES",
]

#: The routing groups, by id (:data:`expertcolor.segmentation.categories.ROUTING_GROUPS`).
GROUP_NAMES: tuple[str, ...] = ROUTING_GROUPS


def colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk colourfulness per image.

    Args:
        rgb: ``(B, 3, H, W)`` in ``[0, 1]``.

    Returns:
        ``(B,)`` on the 0..255 scale of the paper (≈ 0 grey, > 100 extremely colourful).
    """
    x = rgb.float() * 255.0
    r, g, b = x.unbind(1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = torch.sqrt(rg.var(1, unbiased=False) + yb.var(1, unbiased=False))
    mean = torch.sqrt(rg.mean(1).pow(2) + yb.mean(1).pow(2))
    return std + 0.3 * mean


@torch.no_grad()
def color_metrics(L: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image colour metrics.

    Args:
        L: ``(B, 1, H, W)`` in ``[0, 100]``.
        ab_pred, ab_true: ``(B, 2, H, W)`` in Lab units.

    Returns:
        ``{"ab_mse", "psnr", "colorfulness_pred", "colorfulness_true"}``, each ``(B,)``.
    """
    L, ab_pred, ab_true = L.float(), ab_pred.float(), ab_true.float()
    rgb_p = lab_to_rgb(torch.cat([L, ab_pred], 1))
    rgb_t = lab_to_rgb(torch.cat([L, ab_true], 1))
    mse_rgb = (rgb_p - rgb_t).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return {
        "ab_mse": (ab_pred - ab_true).pow(2).flatten(1).mean(1),
        "psnr": 10.0 * torch.log10(1.0 / mse_rgb),
        "colorfulness_pred": colorfulness(rgb_p),
        "colorfulness_true": colorfulness(rgb_t),
    }


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255
) -> torch.Tensor:
    """``(C, C)`` int64 counts, rows = target, columns = prediction; ignored pixels dropped."""
    keep = target != ignore_index
    t, p = target[keep].long(), pred[keep].long()
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def iou_from_confusion(conf: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per-class IoU (nan where a class never occurs in target or prediction) and their nan-mean.

    The one IoU of the project: segmenter training and evaluation's routing tables both use it.

    Args:
        conf: ``(C, C)`` counts, rows = target, columns = prediction (see :func:`confusion_matrix`).

    Returns:
        ``(C,)`` float64 IoU and the mean over the classes that occur (nan when none does).
    """
    conf = conf.double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))
    valid = ~torch.isnan(iou)
    return iou, float(iou[valid].mean()) if bool(valid.any()) else float("nan")


def group_confusion(conf: torch.Tensor, mapping: tuple[int, ...] = VOC_TO_GROUP) -> torch.Tensor:
    """Fold a VOC-21 confusion matrix into routing groups."""
    m = torch.zeros(conf.shape[0], max(mapping) + 1, dtype=conf.dtype)
    m[torch.arange(conf.shape[0]), torch.tensor(mapping)] = 1
    return m.T @ conf @ m
