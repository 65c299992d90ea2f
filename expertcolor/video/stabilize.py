"""Temporal state for video: carry routing probabilities and chroma along the motion; start afresh at cuts.

Per frame (all at working resolution): the previous frame's lightness is aligned to the current one
by a motion estimator (:mod:`.motion`); where the aligned lightness agrees with the current one
(after a global brightness offset, which absorbs the exposure flicker of old film) the previous
frame's class probabilities and chroma are trusted, and each new map becomes
``new + carry * trust * (aligned_previous - new)``: an exponential moving average along the motion
whose memory fades where the alignment fails (occlusions, objects the motion does not explain, the
strip that enters the frame). A frame that the aligned previous one does not explain (mean residual
large against the frame's own contrast) and whose lightness histogram changed is a scene cut:
nothing is carried across it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..merge.filters import box_filter
from .motion import create_motion, warp

logger = logging.getLogger(__name__)

__all__ = ["TemporalConfig", "Alignment", "TemporalSmoother", "histogram_distance"]


@dataclass(frozen=True)
class TemporalConfig:
    """How video frames share their maps.

    Attributes:
        motion: the motion estimator (``"flow"``, ``"affine"``, ``"translation"`` or ``"none"``, or a
            spec such as ``"flow:finest=0"``; see :mod:`expertcolor.video.motion`).
        carry_probs: ``[0, 1)``, weight of the aligned previous class probabilities where the
            alignment is trusted (0: every frame routed on its own).
        carry_ab: ``[0, 1)``, the same for the merged chroma.
        sigma: L difference (after alignment and brightness offset) at which trust falls to ``1/e``.
        cut_residual: a cut needs a mean aligned L difference above this fraction of the frame's
            contrast (mean absolute deviation of L) ...
        cut_histogram: ... and a lightness-histogram distance (:func:`histogram_distance`) above this.
        min_overlap: a frame of which less than this fraction was seen in the previous one starts afresh.
    """

    motion: str = "flow"
    carry_probs: float = 0.8
    carry_ab: float = 0.8
    sigma: float = 8.0
    cut_residual: float = 0.5
    cut_histogram: float = 0.05
    min_overlap: float = 0.3

    def __post_init__(self) -> None:
        for name in ("carry_probs", "carry_ab"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        for name in ("sigma", "cut_residual"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cut_histogram", "min_overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        create_motion(self.motion)  # fails early, listing the estimators, for an unknown name


@dataclass
class Alignment:
    """The previous frame seen from the current one.

    Attributes:
        flow: backward flow ``(1, 2, h, w)`` in working-resolution pixels (see :mod:`.motion`).
        trust: ``(1, 1, h, w)`` in ``[0, 1]``: how far the previous frame's maps hold at each pixel.
        residual: mean aligned L difference over the overlap, relative to the frame's contrast.
        histogram: lightness-histogram distance to the previous frame, ``[0, 1]``.
        overlap: fraction of the frame that the previous one showed.
        cut: whether this frame starts a new shot (then nothing is carried).
    """

    flow: torch.Tensor
    trust: torch.Tensor
    residual: float
    histogram: float
    overlap: float
    cut: bool


def histogram_distance(a: torch.Tensor, b: torch.Tensor, bins: int = 32) -> float:
    """Total-variation distance ``[0, 1]`` between the lightness histograms of two L images in ``[0, 100]``."""
    ha = torch.histc(a.float(), bins=bins, min=0.0, max=100.0)
    hb = torch.histc(b.float(), bins=bins, min=0.0, max=100.0)
    return 0.5 * float((ha / ha.sum().clamp_min(1) - hb / hb.sum().clamp_min(1)).abs().sum())


@dataclass
class TemporalSmoother:
    """The state carried between the frames of one video (working resolution).

    Use per frame: ``alignment = smoother.align(L)``; then ``smoother.carry("probs", probs, alignment)``
    and ``smoother.carry("ab", ab, alignment)`` give the smoothed maps; ``smoother.update(L, probs=...,
    ab=...)`` stores them for the next frame. ``align`` returns ``None`` for the first frame, after a
    cut and when the frame size changes; ``carry`` then returns the map as it is.
    """

    config: TemporalConfig = field(default_factory=TemporalConfig)
    cuts: list[int] = field(default_factory=list)
    frame: int = -1
    _L: torch.Tensor | None = None
    _maps: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._motion = create_motion(self.config.motion)

    def reset(self) -> None:
        """Forget the previous frame (the next one is colorized on its own)."""
        self._L = None
        self._maps.clear()

    def align(self, L: torch.Tensor) -> Alignment | None:
        """Align the previous frame to this one's lightness ``L`` ``(1, 1, h, w)``; detect a cut.

        Returns:
            The alignment, or ``None`` when nothing is to be carried (first frame, a cut, too
            little overlap, another frame size). Cuts are recorded in :attr:`cuts` (frame indices).
        """
        self.frame += 1
        prev = self._L
        if prev is None or prev.shape != L.shape:
            return None
        cfg = self.config
        flow = self._motion(prev, L)
        warped, inside = warp(prev, flow)
        if float(((warped - L).abs() * inside).sum() / inside.sum().clamp_min(1)) > float((prev - L).abs().mean()):
            flow = torch.zeros_like(flow)  # the estimate explains the change worse than no motion does
            warped, inside = prev, torch.ones_like(prev)
        overlap = float(inside.mean())
        hist = histogram_distance(prev, L)
        if overlap < cfg.min_overlap:  # too little in common to carry anything; a cut if the content changed too
            self._restart(cut=hist > cfg.cut_histogram)
            return None
        diff = L - warped
        offset = float(diff[inside > 0].median())  # a global exposure change is no disagreement
        err = (diff - offset).abs()
        contrast = float((L - L.median()).abs().mean()) + 1e-3
        residual = float((err * inside).sum() / inside.sum()) / contrast
        if residual > cfg.cut_residual and hist > cfg.cut_histogram:
            self._restart(cut=True)
            return None
        trust = inside * torch.exp(-((box_filter(err, 1) / cfg.sigma) ** 2))
        return Alignment(flow, trust, residual, hist, overlap, cut=False)

    def _restart(self, cut: bool) -> None:
        if cut:
            self.cuts.append(self.frame)
            logger.debug("scene cut at frame %d", self.frame)
        self.reset()

    def carry(self, name: str, current: torch.Tensor, alignment: Alignment | None) -> torch.Tensor:
        """``current`` ``(1, C, h, w)`` blended with the stored map ``name`` aligned to it (module docstring)."""
        previous = self._maps.get(name)
        weight = {"probs": self.config.carry_probs, "ab": self.config.carry_ab}.get(name, 0.0)
        if alignment is None or previous is None or weight == 0.0 or previous.shape != current.shape:
            return current
        aligned, _ = warp(previous, alignment.flow)
        return current + (weight * alignment.trust) * (aligned - current)

    def update(self, L: torch.Tensor, **maps: torch.Tensor) -> None:
        """Store this frame's lightness and (smoothed) maps for the next frame."""
        self._L = L
        self._maps.update(maps)
