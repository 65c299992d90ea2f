"""Training losses, chosen by name: :func:`create_loss` / :func:`list_losses`.

Colorization losses on the expert's raw output (``Expert.raw``: 1/4 resolution for FPN):

* ``soft_ce`` / ``ce`` (:class:`SoftEncodedCELoss`, classification head): Zhang et al. 2016,
  "Colorful Image Colorization". The ab target is area-pooled to the logits' size, soft-encoded on
  its ``k = 5`` nearest bins with Gaussian weights (``sigma = 5`` ab units; ``ce``: one-hot on the
  nearest bin), and each pixel's cross-entropy is weighted by the rarity of its nearest bin (class
  rebalancing: ``w ∝ ((1-λ) p̃ + λ/Q)^-1`` with the smoothed empirical bin prior ``p̃``, normalised so
  ``E_p̃[w] = 1``). Rare saturated colours then weigh as much as the common desaturated ones, which
  counters grey/brown averaging.
* ``mse`` / ``smooth_l1`` (:class:`RegressionLoss`, regression head): on ``ab / 110``.

Both take the target as ``ab (B, 2, H, W)``, or as ``(B, 3, H, W)`` whose third channel is a per-pixel
weight in ``[0, 1]`` (routing-aware training, ``train-expert --route-labels``): the loss is then the
weighted mean over pixels, so pixels routed to another expert (weight 0) teach this one nothing.

Wrappers: :class:`ChromaBoostLoss` saturates the targets before a loss (``train-expert --chroma-boost``);
:class:`ColorfulnessLoss` adds a penalty on photos decoded duller than their targets
(``--colorfulness-weight``); :class:`DistillationLoss` adds a pull toward a teacher's bin distribution
(``--distill-from``).

The segmenter's loss: ``seg_ce`` (:class:`SegLoss`), cross-entropy over label maps with
``ignore_index=255`` and optional class weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import Registry
from ..color import AB_SCALE
from ..datasets.segmentation import IGNORE_INDEX
from ..experts.model import annealed_mean

__all__ = [
    "LOSSES",
    "create_loss",
    "list_losses",
    "loss_head",
    "SoftEncodedCELoss",
    "DistillationLoss",
    "ChromaBoostLoss",
    "ColorfulnessLoss",
    "innermost_loss",
    "boost_chroma",
    "RegressionLoss",
    "SegLoss",
    "pool_target",
    "split_pixel_weights",
    "estimate_bin_prior",
    "rebalance_weights",
]

#: Loss name -> constructor; :func:`loss_head` says which output each one trains.
LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss")
#: The outputs a loss can train: the expert's heads and the segmenter's scores.
HEADS: tuple[str, ...] = ("classification", "regression", "segmentation")
_HEAD_OF: dict[str, str] = {}
REGRESSION_KINDS: tuple[str, ...] = ("mse", "smooth_l1")


def _register(name: str, head: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a loss constructor under ``name`` for outputs of kind ``head``."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {list(HEADS)}")

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        LOSSES.register(name, fn)
        _HEAD_OF[name] = head
        return fn

    return add


def list_losses(head: str | None = None) -> list[str]:
    """The registered loss names (sorted), or only those training outputs of kind ``head``.

    Raises:
        ValueError: if ``head`` is not one of :data:`HEADS`.
    """
    if head is not None and head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {list(HEADS)}")
    return [n for n in LOSSES.names() if head is None or _HEAD_OF[n] == head]


def loss_head(name: str) -> str:
    """The kind of output loss ``name`` trains (one of :data:`HEADS`).

    Raises:
        KeyError: if ``name`` is not registered; the message lists the choices.
    """
    LOSSES.get(name)
    return _HEAD_OF[name]


def create_loss(name: str, **kwargs) -> nn.Module:
    """A new loss module by name; ``kwargs`` go to its constructor.

    ``soft_ce`` / ``ce``: ``centers`` (bin centres ``(Q, 2)``, normalised units), ``prior`` (``(Q,)``
    or None), ``lam``; ``mse`` / ``smooth_l1``: ``beta`` (smooth_l1 only); ``seg_ce``: ``weight``
    (class weights ``(C,)`` or None).

    Raises:
        KeyError: if ``name`` is not registered; the message lists the choices.
    """
    return LOSSES.create(name, **kwargs)


def pool_target(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-pool ab ``(B, 2, H, W)`` (Lab units) to ``size`` (the raw output size)."""
    if tuple(ab.shape[-2:]) == tuple(size):
        return ab
    return F.adaptive_avg_pool2d(ab, size)


def split_pixel_weights(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, 2, H, W)`` -> ``(ab, None)``; ``(B, 3, H, W)`` -> ``(ab, weight (B, 1, H, W))``.

    Raises:
        ValueError: for any other channel count.
    """
    if target.dim() != 4 or target.shape[1] not in (2, 3):
        raise ValueError(f"target must be ab (B, 2, H, W) or ab + weight (B, 3, H, W), got {tuple(target.shape)}")
    if target.shape[1] == 2:
        return target, None
    return target[:, :2], target[:, 2:]


def _check_boost(factor: float) -> None:
    if not (factor > 0 and factor < float("inf")):
        raise ValueError(f"chroma boost factor must be positive and finite, got {factor}")


def boost_chroma(target: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale the ab channels of a target by ``factor`` (more saturated for ``factor > 1``), leaving
    L's hue angles and any per-pixel weight channel as they are.

    Args:
        target: ab ``(B, 2, H, W)`` in Lab units, or ab + weight ``(B, 3, H, W)``.
        factor: chroma multiplier, > 0 (1 returns ``target`` itself).

    Raises:
        ValueError: for a factor that is not positive and finite, or a target of another shape.
    """
    _check_boost(factor)
    ab, weight = split_pixel_weights(target)
    if factor == 1:
        return target
    ab = ab * factor
    return ab if weight is None else torch.cat([ab, weight], dim=1)


def _weighted_mean(per_pixel: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_pixel (B, h, w)``, weighted by ``weight (B, 1, H, W)`` area-pooled to ``(h, w)``;
    0 (with a gradient) when no pixel has weight."""
    if weight is None:
        return per_pixel.mean()
    w = pool_target(weight.float(), per_pixel.shape[-2:])[:, 0]
    return (per_pixel * w).sum() / w.sum().clamp_min(1e-6)


def _sq_dist(ab: torch.Tensor, centers_ab: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(B, h, w, Q)`` of ab ``(B, 2, h, w)`` to bin centres ``(Q, 2)`` (ab units).

    Bins last: searches along the contiguous last dimension (top-k, argmin) are several times
    faster on CPU than along dim 1 of a ``(B, Q, h, w)`` tensor.
    """
    a = ab.permute(0, 2, 3, 1)
    c = centers_ab.to(a.dtype)
    return (a.pow(2).sum(-1, keepdim=True) + c.pow(2).sum(1) - 2 * a @ c.T).clamp_min(0)


def soft_encode_sparse(
    ab: torch.Tensor, centers_ab: torch.Tensor, k: int = 5, sigma: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest bins of each pixel and their Gaussian weights.

    Args:
        ab: ``(B, 2, h, w)`` in ab units.
        centers_ab: ``(Q, 2)`` bin centres in ab units.

    Returns:
        ``(index, weight)``, each ``(B, k, h, w)``: bins sorted by distance (index 0 is the nearest),
        weights summing to 1 over k.
    """
    dk, ik = _sq_dist(ab.float(), centers_ab).topk(k, dim=-1, largest=False)
    return ik.permute(0, 3, 1, 2), torch.softmax(-dk / (2 * sigma**2), dim=-1).permute(0, 3, 1, 2)


def soft_encode(
    ab: torch.Tensor, centers_ab: torch.Tensor, k: int = 5, sigma: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-encode ab on the ``k`` nearest bins.

    Args:
        ab: ``(B, 2, h, w)`` in ab units.
        centers_ab: ``(Q, 2)`` bin centres in ab units.

    Returns:
        ``(target, nearest)``: target distribution ``(B, Q, h, w)`` summing to 1 over Q, and the
        index of the nearest bin ``(B, h, w)``.
    """
    ik, wk = soft_encode_sparse(ab, centers_ab, k, sigma)
    q = centers_ab.shape[0]
    target = torch.zeros(ab.shape[0], q, *ab.shape[2:], dtype=wk.dtype, device=ab.device).scatter_(1, ik, wk)
    return target, ik[:, 0]


@torch.no_grad()
def estimate_bin_prior(
    ab_batches: Iterable[torch.Tensor], centers_ab: torch.Tensor, sigma: float = 5.0
) -> torch.Tensor:
    """Empirical distribution of nearest bins over ab maps, smoothed with a Gaussian in ab space.

    Args:
        ab_batches: ab tensors ``(B, 2, h, w)`` in ab units, or ``(B, 3, h, w)`` with per-pixel
            weights (each pixel counts with its weight).
        centers_ab: ``(Q, 2)``.
        sigma: smoothing in ab units (Zhang et al.: 5).

    Returns:
        ``(Q,)`` probabilities.
    """
    q = centers_ab.shape[0]
    counts = torch.zeros(q, dtype=torch.float64)
    for target in ab_batches:
        ab, weight = split_pixel_weights(target)
        nearest = _sq_dist(ab.float(), centers_ab).argmin(-1)
        w = None if weight is None else weight[:, 0].flatten().double()
        counts += torch.bincount(nearest.flatten(), weights=w, minlength=q).double().cpu()
    if counts.sum() == 0:
        return torch.full((q,), 1.0 / q)
    p = counts / counts.sum()
    c = centers_ab.double().cpu()
    kernel = torch.exp(-torch.cdist(c, c).pow(2) / (2 * sigma**2))
    p = kernel @ p
    return (p / p.sum()).float()


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Per-bin weights ``∝ ((1-λ) prior + λ/Q)^-1``, normalised so ``sum(prior * w) = 1``."""
    q = prior.numel()
    w = 1.0 / ((1 - lam) * prior + lam / q)
    return (w / (prior * w).sum()).float()


class SoftEncodedCELoss(nn.Module):
    """Soft-encoded, class-rebalanced cross-entropy for the classification head.

    Args:
        centers: bin centres ``(Q, 2)`` in normalised units (``Expert.bin_centers``, ab/110).
        prior: empirical bin prior ``(Q,)``; ``None`` = uniform (no rebalancing).
        lam: mixing with uniform (0.5 as Zhang et al.; 1 disables rebalancing).
        k, sigma: soft encoding (nearest bins, Gaussian width in ab units).
        soft: ``False`` gives plain one-hot CE on the nearest bin ("ce").

    Forward:
        logits ``(B, Q, h, w)`` and ab ``(B, 2, H, W)`` in Lab units (or ab + per-pixel weight,
        ``(B, 3, H, W)``) -> scalar loss.
    """

    def __init__(
        self,
        centers: torch.Tensor,
        prior: torch.Tensor | None = None,
        lam: float = 0.5,
        k: int = 5,
        sigma: float = 5.0,
        soft: bool = True,
    ) -> None:
        super().__init__()
        q = centers.shape[0]
        self.register_buffer("centers_ab", centers.detach().float() * AB_SCALE)
        prior = torch.full((q,), 1.0 / q) if prior is None else prior.float()
        self.register_buffer("prior", prior)
        self.register_buffer("weights", rebalance_weights(prior, lam))
        self.k, self.sigma, self.soft, self.lam = k, sigma, soft, lam

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ab, pixel_weight = split_pixel_weights(target)
        target_ab = pool_target(ab, logits.shape[-2:])
        logp = F.log_softmax(logits.float(), dim=1)
        if self.soft:
            idx, wk = soft_encode_sparse(target_ab, self.centers_ab, self.k, self.sigma)
            ce = -(wk * logp.gather(1, idx)).sum(1)  # = -sum_q target_q log p_q, target sparse
            nearest = idx[:, 0]
        else:
            nearest = _sq_dist(target_ab.float(), self.centers_ab).argmin(-1)
            ce = F.nll_loss(logp, nearest, reduction="none")
        return _weighted_mean(ce * self.weights[nearest], pixel_weight)


class RegressionLoss(nn.Module):
    """``mse`` or ``smooth_l1`` between raw ``ab/110`` ``(B, 2, h, w)`` and the area-pooled target."""

    def __init__(self, kind: str = "mse", beta: float = 0.05) -> None:
        super().__init__()
        if kind not in REGRESSION_KINDS:
            raise ValueError(f"regression loss must be one of {REGRESSION_KINDS}, got {kind!r}")
        self.kind, self.beta = kind, beta

    def forward(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ab, pixel_weight = split_pixel_weights(target)
        ab = pool_target(ab, raw.shape[-2:]) / AB_SCALE
        if self.kind == "mse":
            per = F.mse_loss(raw.float(), ab, reduction="none")
        else:
            per = F.smooth_l1_loss(raw.float(), ab, beta=self.beta, reduction="none")
        return _weighted_mean(per.mean(1), pixel_weight)


class SegLoss(nn.Module):
    """Cross-entropy with ``ignore_index=255`` and optional class weights ``(C,)``.

    Forward:
        logits ``(B, C, h, w)`` and class ids ``(B, H, W)`` int64 -> scalar loss. When the decoder
        predicts at reduced resolution, each cell is compared with the label at its centre.
    """

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight if weight is not None else torch.empty(0))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.weight if self.weight.numel() else None
        if logits.shape[-2:] != target.shape[-2:]:
            target = F.interpolate(target[:, None].float(), size=logits.shape[-2:], mode="nearest")[:, 0].long()
        return F.cross_entropy(logits.float(), target, weight=w, ignore_index=IGNORE_INDEX)


@_register("soft_ce", "classification")
def _soft_ce(centers: torch.Tensor, prior: torch.Tensor | None = None, lam: float = 0.5) -> SoftEncodedCELoss:
    """Soft-encoded, class-rebalanced cross-entropy (the classification head's default)."""
    return SoftEncodedCELoss(centers, prior, lam=lam, soft=True)


@_register("ce", "classification")
def _ce(centers: torch.Tensor, prior: torch.Tensor | None = None, lam: float = 0.5) -> SoftEncodedCELoss:
    """Class-rebalanced one-hot cross-entropy on the nearest bin."""
    return SoftEncodedCELoss(centers, prior, lam=lam, soft=False)


@_register("mse", "regression")
def _mse() -> RegressionLoss:
    """Mean squared error on ab/110 (the regression head's default)."""
    return RegressionLoss("mse")


@_register("smooth_l1", "regression")
def _smooth_l1(beta: float = 0.05) -> RegressionLoss:
    """Smooth L1 on ab/110."""
    return RegressionLoss("smooth_l1", beta=beta)


@_register("seg_ce", "segmentation")
def _seg_ce(weight: torch.Tensor | None = None) -> SegLoss:
    """The segmenter's cross-entropy (255 ignored, optional class weights)."""
    return SegLoss(weight)


class DistillationLoss(nn.Module):
    """A loss plus a pull toward a teacher's bin distribution, so an expert that specialises keeps
    what its generalist start knew about colours it sees rarely now.

    Args:
        base: the loss on the targets (e.g. :class:`SoftEncodedCELoss`).
        bins: the student's number of bins ``Q``.
        weight: weight of ``KL(teacher || student)``, averaged over pixels.

    Forward:
        logits ``(B, 2Q, h, w)``: the student's ``Q`` channels, then the teacher's (as
        :class:`~expertcolor.train.expert.DistilledExpert` gives them in training), and the target
        -> scalar loss.
    """

    def __init__(self, base: nn.Module, bins: int, weight: float) -> None:
        super().__init__()
        self.base, self.bins, self.weight = base, int(bins), float(weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] != 2 * self.bins:
            raise ValueError(f"distillation expects {2 * self.bins} channels (expert + teacher), got {logits.shape[1]}")
        student, teacher = logits[:, : self.bins], logits[:, self.bins :]
        log_s = F.log_softmax(student.float(), dim=1)
        log_t = F.log_softmax(teacher.float(), dim=1)
        kl = (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()
        return self.base(student, target) + self.weight * kl


class ChromaBoostLoss(nn.Module):
    """A loss whose targets' chroma is multiplied by ``factor`` first (DDColor trains on targets
    saturated by 1.2): the expert learns more saturated colours than the photos hold, which trades
    some accuracy for colourfulness at the source instead of at decoding.

    Args:
        base: the loss on the (boosted) targets.
        factor: chroma multiplier, > 0.

    Forward:
        the base loss's prediction and target (``(B, 2, H, W)`` or ``(B, 3, H, W)``) -> scalar loss.
    """

    def __init__(self, base: nn.Module, factor: float) -> None:
        super().__init__()
        _check_boost(factor)
        self.base, self.factor = base, float(factor)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.base(pred, boost_chroma(target, self.factor))


def innermost_loss(loss: nn.Module) -> nn.Module:
    """The loss inside any wrappers (:class:`ChromaBoostLoss`, :class:`ColorfulnessLoss`,
    :class:`DistillationLoss`: each holds the loss it wraps as ``base``)."""
    while hasattr(loss, "base"):
        loss = loss.base
    return loss


class ColorfulnessLoss(nn.Module):
    """A classification loss plus a penalty on each photo whose decoded colours are duller than its
    target's: ``weight * mean_b relu(C(target_b) - C(pred_b)) / 110``, with ``C`` a photo's mean chroma
    ``sqrt(a^2 + b^2)`` in ab units (over its weighted pixels under routing-aware training).

    The prediction is decoded as the shipped experts decode it (annealed mean at ``temperature``
    after ``prior_correction`` of the rebalancing weights), so the penalty is differentiable and aims
    at what users see. It is one-sided and per photo: a photo as colourful as its target costs
    nothing, and the network chooses where to add the colour; the loss keeps it to plausible hues.

    Args:
        base: the classification loss (a :class:`SoftEncodedCELoss`, possibly inside
            :class:`ChromaBoostLoss`); its rebalancing weights serve the decoding.
        weight: the penalty's weight, >= 0.
        temperature: annealed-mean temperature in ``(0, 1]``.
        prior_correction: ``alpha`` of the decoding's prior correction, in ``[0, 1]``.

    Forward:
        logits ``(B, Q, h, w)`` and the target (``(B, 2, H, W)`` ab in Lab units, or ab + per-pixel
        weight ``(B, 3, H, W)``) -> scalar loss.
    """

    def __init__(self, base: nn.Module, weight: float, *, temperature: float, prior_correction: float) -> None:
        super().__init__()
        if not weight >= 0:
            raise ValueError(f"colourfulness weight must be >= 0, got {weight}")
        if not 0 < temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {temperature}")
        if not 0 <= prior_correction <= 1:
            raise ValueError(f"prior correction must be in [0, 1], got {prior_correction}")
        self.base = base
        if not isinstance(self.ce, SoftEncodedCELoss):
            raise ValueError("the colourfulness term decodes bin logits: it needs soft_ce or ce (classification)")
        self.weight, self.temperature = float(weight), float(temperature)
        self.prior_correction = float(prior_correction)

    @property
    def ce(self) -> nn.Module:
        """The innermost loss (:func:`innermost_loss`): its bins and weights decode the logits. A property,
        so its tensors are not a second time in the state dict."""
        return innermost_loss(self.base)

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """ab ``(B, 2, h, w)`` in Lab units, decoded from bin logits ``(B, Q, h, w)`` as ``Expert.decode`` does."""
        ce = self.ce
        return annealed_mean(logits, ce.centers_ab, self.temperature, ce.weights.log(), self.prior_correction)

    def deficit(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per photo ``(B,)``: how much duller the decoded prediction is than the target, in ab/110."""
        ab, pixel_weight = split_pixel_weights(target)
        size = logits.shape[-2:]
        true_c = pool_target(ab.float(), size).pow(2).sum(1).add(1e-6).sqrt()
        pred_c = self.decode(logits).pow(2).sum(1).add(1e-6).sqrt()
        if pixel_weight is None:
            w = torch.ones_like(true_c)
        else:
            w = pool_target(pixel_weight.float(), size)[:, 0]
        n = w.sum((1, 2)).clamp_min(1e-6)
        return F.relu(((true_c - pred_c) * w).sum((1, 2)) / n) / AB_SCALE

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.base(logits, target)
        if self.weight == 0:
            return loss
        return loss + self.weight * self.deficit(logits, target).mean()
