"""Merge strategies: turn expert probabilities into blend weights, and blend the experts' ab.

A strategy maps expert probabilities ``(B, E, h, w)`` (and the L image as a guide) to weights of
the same shape that are non-negative and sum to 1 at every pixel. ``blend`` mixes the experts'
ab with them. Nothing here knows what an expert or a class is; a strategy that treats one channel
as the photo's background (``context``) is told its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .._registry import Registry
from .filters import box_filter, guided_coefficients, guided_filter, resize_rows

__all__ = [
    "MERGES",
    "MergeStrategy",
    "HardMerge",
    "SoftMerge",
    "FeatherMerge",
    "GuidedMerge",
    "ContextMerge",
    "create_merge",
    "list_merges",
    "blend",
    "weight_region",
    "upsample_ab",
    "normalize_weights",
    "drop_minor_experts",
]


def _check(probs: torch.Tensor, guide: torch.Tensor) -> None:
    if probs.dim() != 4:
        raise ValueError(f"expert probabilities must have shape (B, E, h, w), got {tuple(probs.shape)}")
    if (
        guide.dim() != 4
        or guide.shape[1] != 1
        or guide.shape[-2:] != probs.shape[-2:]
        or guide.shape[0] != probs.shape[0]
    ):
        raise ValueError(
            f"guide must have shape ({probs.shape[0]}, 1, {probs.shape[2]}, {probs.shape[3]}), got {tuple(guide.shape)}"
        )


def one_hot_argmax(probs: torch.Tensor) -> torch.Tensor:
    """Hard assignment: 1 for the most probable expert at each pixel, else 0."""
    return F.one_hot(probs.argmax(dim=1), probs.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)


def normalize_weights(w: torch.Tensor, min_weight: float = 0.0) -> torch.Tensor:
    """Clamp to ``>= 0``, drop weights below ``min_weight``, and rescale to sum to 1 over dim 1.

    Pixels where everything was dropped fall back to the largest original weight.
    """
    w = w.clamp_min(0)
    fallback = one_hot_argmax(w)  # before the drop: the pixel's largest weight, not expert 0
    if min_weight > 0:
        w = torch.where(w >= min_weight, w, torch.zeros_like(w))
    total = w.sum(dim=1, keepdim=True)
    return torch.where(total > 0, w / total.clamp_min(1e-12), fallback)


@dataclass(frozen=True)
class MergeStrategy:
    """Base class; subclasses implement :meth:`weights`. Instances are frozen configs."""

    name = "base"

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Blend weights.

        Args:
            probs: expert probabilities, shape ``(B, E, h, w)``, summing to 1 over E.
            guide: L scaled to ``[0, 1]``, shape ``(B, 1, h, w)``.
            background: index of the expert that colours everything no other expert owns (the
                routing table's default), or ``None``; only ``context`` uses it.
            experts: the experts' names in the order of ``probs``' channels, or ``None``; only
                ``context`` with ``subjects`` uses them.

        Returns:
            Weights, shape ``(B, E, h, w)``, non-negative, summing to 1 over E.
        """
        raise NotImplementedError

    def __call__(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        _check(probs, guide)
        if background is not None and not 0 <= background < probs.shape[1]:
            raise ValueError(f"background expert index {background} is outside 0..{probs.shape[1] - 1}")
        if experts is not None and len(experts) != probs.shape[1]:
            raise ValueError(f"{len(experts)} expert names for {probs.shape[1]} expert channels")
        return self.weights(probs, guide, background, experts)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name": ..., **params}``."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.__dataclass_fields__}}


@dataclass(frozen=True)
class HardMerge(MergeStrategy):
    """Every pixel takes the ab of its most probable expert (the baseline; seams are sharp)."""

    name = "hard"

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        return one_hot_argmax(probs)


@dataclass(frozen=True)
class SoftMerge(MergeStrategy):
    """Weights are the expert probabilities themselves, small ones dropped so idle experts skip.

    ``min_weight`` drops an expert at the pixels where its weight is small. ``min_share`` drops it
    from the whole photo when its share of the photo (its mean probability over the pixels) is
    below that: an expert that holds only a few stray pixels is then not run on the photo for them,
    and its probability goes to the experts that remain, in proportion. The default, 1%, skips a
    third of the expert runs on mixed photos and changed their CIEDE2000 by +0.001 on average
    (``benchmarks/bench_routing.py``, ``docs/experiments.md``); a subject has to be tiny and
    uncertain to fall below it.
    """

    name = "soft"
    min_weight: float = 0.05
    min_share: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.min_share) < 1.0:
            raise ValueError(f"soft merge: min_share must be in [0, 1), got {self.min_share}")

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        if self.min_share > 0:
            probs = drop_minor_experts(probs, self.min_share)
        return normalize_weights(probs, self.min_weight)


def drop_minor_experts(probs: torch.Tensor, min_share: float) -> torch.Tensor:
    """Zero the experts whose share of the photo (mean probability over its pixels) is below ``min_share``.

    Args:
        probs: expert probabilities ``(B, E, h, w)``.
        min_share: in ``[0, 1)``; each photo keeps at least its largest expert.

    Returns:
        Probabilities ``(B, E, h, w)`` with the minor experts' channels zero (not renormalised).
    """
    share = probs.mean(dim=(2, 3))  # (B, E)
    keep = share >= min_share
    keep |= F.one_hot(share.argmax(dim=1), probs.shape[1]).bool()
    return probs * keep[:, :, None, None].to(probs.dtype)


@dataclass(frozen=True)
class FeatherMerge(MergeStrategy):
    """Hard masks blurred over a band of ``width`` pixels centred on each boundary.

    Two box passes of radius ``width/4`` (a tent of support ``width``): pixels farther than
    ``width/2`` from every boundary keep the hard assignment exactly.
    """

    name = "feather"
    width: int = 16

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        r = max(int(self.width) // 4, 0)
        return normalize_weights(box_filter(box_filter(one_hot_argmax(probs), r), r))


@dataclass(frozen=True)
class GuidedMerge(MergeStrategy):
    """Hard masks smoothed by a guided filter on L: transitions snap to the photo's own edges.

    ``radius`` is the window radius (pixels at working resolution), ``eps`` the edge sensitivity
    (guide in ``[0, 1]``).
    """

    name = "guided"
    radius: int = 8
    eps: float = 1e-3

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        return normalize_weights(guided_filter(guide, one_hot_argmax(probs), self.radius, self.eps), 1e-3)


@dataclass(frozen=True)
class ContextMerge(MergeStrategy):
    """Soft routing in which the photo's main subject also colours its surroundings.

    An expert knows its subject's surroundings too (a birds expert has seen branches, water and sky
    behind birds), so the background expert is not always the best one for a photo's background.
    The soft weights are computed first; then the subject expert with the largest share of the photo
    (mean weight over its pixels, the background expert excluded) takes over ``strength`` of the
    background expert's weight at every pixel, provided its share is at least ``min_share``.
    Other subjects keep their own pixels. At ``strength=1`` the background expert is not run at
    all on photos with a subject, so a pixel still costs about one expert.

    ``drop_share`` drops an expert holding less than that share of the photo first, as the soft
    merge's ``min_share`` does (stray pixels do not make an expert run on the whole photo).

    ``subjects`` ("birds" or "birds+animals"; empty = every expert) names the experts that may take
    over: those that learned their subjects' surroundings (trained on every pixel of their photos).
    An expert trained only on its subject's pixels (routing-aware) colours backgrounds poorly.

    ``mode="share"`` instead mixes every expert's photo share into every pixel:
    ``w' = (1 - strength) * w + strength * share`` (every present expert runs on the whole photo).

    Without a background index (no routing default) this is the soft merge.
    """

    name = "context"
    strength: float = 1.0
    min_share: float = 0.05
    min_weight: float = 0.05
    mode: str = "dominant"
    subjects: str = ""
    drop_share: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.subjects, str):
            raise ValueError(f"context merge: subjects must be expert names joined by '+', got {self.subjects!r}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ValueError(f"context merge: strength must be in [0, 1], got {self.strength}")
        if not 0.0 <= float(self.min_share) <= 1.0:
            raise ValueError(f"context merge: min_share must be in [0, 1], got {self.min_share}")
        if not 0.0 <= float(self.drop_share) < 1.0:
            raise ValueError(f"context merge: drop_share must be in [0, 1), got {self.drop_share}")
        if self.mode not in ("dominant", "share"):
            raise ValueError(f"context merge: mode must be 'dominant' or 'share', got {self.mode!r}")

    def weights(
        self, probs: torch.Tensor, guide: torch.Tensor, background: int | None = None,
        experts: Sequence[str] | None = None,
    ) -> torch.Tensor:
        w = SoftMerge(min_weight=self.min_weight, min_share=self.drop_share).weights(probs, guide)  # soft first
        if background is None or self.strength == 0 or probs.shape[1] < 2:
            return w
        share = w.mean(dim=(2, 3))  # (B, E): each expert's part of the photo
        if self.mode == "share":
            mixed = (1 - self.strength) * w + self.strength * share[:, :, None, None]
            return normalize_weights(mixed, self.min_weight)
        subject = share.clone()
        subject[:, background] = -1.0
        top_share, top = subject.max(dim=1)  # (B,): the photo's main subject expert
        takes_over = top_share >= self.min_share
        if self.subjects:  # only if the main subject's expert is one of the named ones
            if experts is None:
                raise ValueError("context merge with subjects needs the experts' names")
            allowed = torch.tensor([n in self.subjects.split("+") for n in experts], device=w.device)
            takes_over &= allowed[top]
        moved = self.strength * w[:, background] * takes_over.to(w.dtype)[:, None, None]
        w = w.clone()
        w[:, background] -= moved
        w.scatter_add_(1, top[:, None, None, None].expand(-1, 1, *w.shape[-2:]), moved[:, None])
        return w.clamp_min_(0)


#: The merge strategies by name (the name each class carries).
MERGES: Registry[type[MergeStrategy]] = Registry("merge strategy")
for _cls in (HardMerge, SoftMerge, FeatherMerge, GuidedMerge, ContextMerge):
    MERGES.register(_cls.name, _cls)
del _cls


def list_merges() -> list[str]:
    """Names of the merge strategies."""
    return MERGES.names()


def create_merge(name: str, **params: Any) -> MergeStrategy:
    """Build a merge strategy by name, or from a spec ``"name:key=value,key=value"``.

    The spec form is what the command line takes (``--merge context:strength=0.75``); its values
    are read as numbers where they look like numbers.

    Raises:
        UnknownNameError: (a ``KeyError`` and a ``ValueError``) for an unknown name; the message
            lists the choices.
        ValueError: for an unknown parameter or a malformed spec.
    """
    if ":" in name:
        name, spec = name.split(":", 1)
        for item in filter(None, (x.strip() for x in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"bad merge parameter {item!r}; write name:key=value,key=value")
            params[key.strip()] = _number_or_text(value.strip())
    cls = MERGES.get(name)
    try:
        return cls(**params)
    except TypeError as e:
        raise ValueError(f"bad parameters for merge {name!r}: {e}") from None


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def weight_region(
    weights: torch.Tensor, margin: int, stride: int = 32, max_fraction: float = 0.8
) -> tuple[int, int, int, int] | None:
    """The rows and columns an expert must see to colour every pixel it has weight on.

    The bounding box of ``weights > 0`` (over the whole batch), widened by ``margin`` pixels of
    context on each side and snapped outwards to multiples of ``stride``, so that a network with
    that output stride sees the crop on the same grid as the whole image and its output inside the
    box matches the whole-image output up to the margin's effect.

    Args:
        weights: one expert's blend weights ``(B, h, w)``.
        margin: context in pixels around the weighted pixels.
        stride: the network's total stride (32 for the experts' encoders).
        max_fraction: above this fraction of the image, cropping saves too little: ``None``.

    Returns:
        ``(top, bottom, left, right)`` (exclusive ends), or ``None`` for the whole image (also when
        no pixel has weight).
    """
    if weights.dim() != 3:
        raise ValueError(f"weights must have shape (B, h, w), got {tuple(weights.shape)}")
    h, w = weights.shape[-2:]
    on = weights > 0
    rows = torch.nonzero(on.any(dim=0).any(dim=1)).flatten()
    cols = torch.nonzero(on.any(dim=0).any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    top = max(0, (int(rows[0]) - margin) // stride * stride)
    left = max(0, (int(cols[0]) - margin) // stride * stride)
    bottom = min(h, -(-(int(rows[-1]) + 1 + margin) // stride) * stride)
    right = min(w, -(-(int(cols[-1]) + 1 + margin) // stride) * stride)
    if (bottom - top) * (right - left) > max_fraction * h * w:
        return None
    return top, bottom, left, right


def blend(ab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of the experts' chroma.

    Args:
        ab: per-expert ab, shape ``(B, E, 2, h, w)``.
        weights: shape ``(B, E, h, w)``, summing to 1 over E.

    Returns:
        Merged ab, shape ``(B, 2, h, w)``.
    """
    if ab.dim() != 5 or ab.shape[2] != 2 or ab.shape[:2] != weights.shape[:2] or ab.shape[-2:] != weights.shape[-2:]:
        raise ValueError(
            f"ab {tuple(ab.shape)} and weights {tuple(weights.shape)} do not match (B, E, 2, h, w) / (B, E, h, w)"
        )
    return (ab * weights.unsqueeze(2)).sum(dim=1)


def upsample_ab(
    ab_small: torch.Tensor,
    L_small: torch.Tensor,
    L_full: torch.Tensor,
    mode: str = "guided",
    radius: int = 2,
    eps: float = 1e-3,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Bring chroma from working resolution to the photo's full resolution.

    Args:
        ab_small: ``(B, 2, h, w)``.
        L_small: ``(B, 1, h, w)`` in ``[0, 100]``.
        L_full: ``(B, 1, H, W)`` in ``[0, 100]``.
        mode: ``"guided"`` (chroma edges follow full-resolution L) or ``"bilinear"``.
        rows: only full-resolution rows ``(r0, r1)``, so large photos can be finished in strips;
            ``None``: all rows.

    Returns:
        ab, shape ``(B, 2, H, W)`` (``(B, 2, r1 - r0, W)`` with ``rows``).
    """
    if mode not in ("guided", "bilinear"):
        raise ValueError(f"unknown upsample mode {mode!r}; choose 'guided' or 'bilinear'")
    size = tuple(L_full.shape[-2:])
    if ab_small.shape[-2:] == size:
        return ab_small if rows is None else ab_small[..., rows[0] : rows[1], :]
    if mode == "bilinear":
        return resize_rows(ab_small, size, rows)
    # Guided upsampling (filters.guided_upsample), applied to the requested rows of the guide only.
    a, b = guided_coefficients(L_small / 100.0, ab_small, radius, eps)
    guide = L_full if rows is None else L_full[..., rows[0] : rows[1], :]
    return resize_rows(a, size, rows) * (guide / 100.0) + resize_rows(b, size, rows)
