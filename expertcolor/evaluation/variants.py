"""The variants an evaluation compares: the routed model, one expert alone, the generalist, oracle routing, no colour.

* ``"routed"``: the colorizer itself (segmentation-routed experts, merged);
* ``"expert:<name>"``: one of the colorizer's experts colouring the whole photo (same working
  resolution, chroma upsampling and gamut mapping as the routed model);
* ``"generalist"``: an extra expert directory (trained on everything) colouring the whole photo;
* ``"oracle"``: the colorizer routed by the photo's ground-truth group mask instead of its segmenter
  (:class:`OracleRouting`): what perfect routing would buy;
* ``"gray"``: ``ab = 0`` (the photo's own lightness, no colour) — the floor to beat.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import metrics as M
from ..color import lab_to_rgb
from ..colorizer import ExpertColorizer
from ..experts import Expert
from ..io import decode_inputs, encode_output
from ..segmentation import RoutingTable, Segmenter
from ..segmentation.categories import DEFAULT_ROUTES, VOC_CATEGORIES, VOC_TO_GROUP

__all__ = [
    "EXPERT_GROUPS",
    "Variant",
    "default_generalist_dir",
    "single_expert_colorizer",
    "GroupMaskSegmenter",
    "group_categories",
    "OracleRouting",
    "resolve_variants",
    "gray_rgb",
    "build_variants",
]

#: Ground-truth routing group of each default subject expert (faces 1 person, birds 2 bird, animals
#: 3 animal); every other expert colours group 0, background/other.
EXPERT_GROUPS: dict[str, int] = dict(
    sorted(
        {DEFAULT_ROUTES[c]: g for c, g in zip(VOC_CATEGORIES, VOC_TO_GROUP) if g and c in DEFAULT_ROUTES}.items(),
        key=lambda item: item[1],
    )
)

#: A variant colours one photo: ``(rgb (H, W, 3) uint8, group mask (H, W) or None) -> rgb (H, W, 3) uint8``.
Variant = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


def default_generalist_dir() -> Path | None:
    """``expertcolor/pretrained/generalist`` inside the installed package, when it holds an expert."""
    path = Path(__file__).resolve().parents[1] / "pretrained" / "generalist"
    return path if (path / "config.json").is_file() else None


class _WholeImageSegmenter(Segmenter):
    """A segmenter with one category covering every pixel (routes a whole photo to one expert)."""

    categories = ("all",)

    def __init__(self) -> None:
        super().__init__()

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Probability 1 for the single category: ``(B, 1, H, W)``."""
        self._check_input(L)
        return torch.ones_like(L)


def single_expert_colorizer(expert: Expert, like: ExpertColorizer) -> ExpertColorizer:
    """A colorizer in which ``expert`` colours every pixel.

    It shares ``like``'s working size, chroma upsampling, device and batch size, so the only
    difference from the routed model is the routing (no segmenter runs).
    """
    name = expert.name
    routing = RoutingTable({}, default=name, categories=_WholeImageSegmenter.categories, experts=[name])
    return ExpertColorizer(
        {name: expert},
        _WholeImageSegmenter(),
        routing,
        merge="hard",
        working_size=like.working_size,
        upsample=like.upsample,
        device=like.device,
        batch_size=like.batch_size,
    )


# -- oracle routing -------------------------------------------------------------------------------------
class GroupMaskSegmenter(Segmenter):
    """One-hot probabilities from a ground-truth group mask; the wrapped segmenter where the mask says nothing.

    Set :attr:`mask` (``(H, W)`` group ids at the photo's full resolution) before each photo; it is
    resized (nearest) to the segmenter's input. Pixels whose value is not in ``group_category``
    (255, ignored) and photos without a mask (``mask = None``) get ``inner``'s probabilities.

    Args:
        inner: the model's segmenter.
        group_category: ground-truth group value -> index of the category that routes it.
    """

    def __init__(self, inner: Segmenter, group_category: dict[int, int]) -> None:
        super().__init__()
        self.inner = inner
        self.categories = tuple(inner.categories)
        self.group_category = dict(group_category)
        self.mask: np.ndarray | None = None

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(B, C, h, w)`` for ``L`` ``(B, 1, h, w)`` in ``[0, 100]``."""
        probs = self.inner(L)
        if self.mask is None:
            return probs
        mask = np.asarray(self.mask)
        if mask.ndim != 2:
            raise ValueError(f"a group mask must be (H, W) group ids, got shape {mask.shape}")
        gt = torch.from_numpy(mask.astype(np.int64))[None, None].float()
        gt = F.interpolate(gt, size=L.shape[-2:], mode="nearest")[0, 0].long().to(probs.device)
        onehot = torch.zeros_like(probs)
        for value, c in self.group_category.items():
            onehot[:, c][:, gt == value] = 1.0
        known = torch.isin(gt, torch.tensor(list(self.group_category), device=gt.device))
        return torch.where(known[None, None], onehot, probs)


def group_categories(colorizer: ExpertColorizer) -> dict[int, int]:
    """Each ground-truth group's category index under ``colorizer``'s routing table.

    Group 0 (background/other) takes the first category routed to the default expert; each subject
    group the first category routed to its expert (:data:`EXPERT_GROUPS`).

    Raises:
        ValueError: when no category is routed to the default expert or to one of the subject experts.
    """
    cats = list(colorizer.segmenter.categories)
    table = colorizer.routing
    wanted = {0: table.default, **{g: e for e, g in EXPERT_GROUPS.items()}}
    out: dict[int, int] = {}
    for group, expert in sorted(wanted.items()):
        hits = [i for i, c in enumerate(cats) if table.expert_for(c) == expert]
        if not hits:
            raise ValueError(
                f"oracle routing needs a category routed to expert {expert!r} (for ground-truth group {group}); "
                f"the model routes {sorted(set(map(table.expert_for, cats)))}"
            )
        out[group] = hits[0]
    return out


class OracleRouting:
    """``colorizer`` routed by a photo's ground-truth group mask instead of its segmenter.

    Every pixel of group g goes to the expert of g (0 background/other -> the default expert,
    1 person -> faces, 2 bird -> birds, 3 animal -> animals); the experts, merge, working size and
    finishing are ``colorizer``'s, so the difference to ``"routed"`` is what perfect routing would buy.
    Pixels marked 255 and photos without a mask keep the segmenter's probabilities (one pass: a
    mirrored pass would not match the mask).

    Raises:
        ValueError: when the model routes no category to one of the groups' experts.
    """

    def __init__(self, colorizer: ExpertColorizer) -> None:
        self.segmenter = GroupMaskSegmenter(colorizer.segmenter, group_categories(colorizer))
        self.colorizer = ExpertColorizer(
            colorizer.experts,
            self.segmenter,
            colorizer.routing,
            merge=colorizer.merge,
            working_size=colorizer.working_size,
            upsample=colorizer.upsample,
            device=colorizer.device,
            batch_size=colorizer.batch_size,
            flip_segmentation=False,
            crop_margin=colorizer.crop_margin,
        )

    def colorize(
        self, image: Any, groups: np.ndarray | None, return_details: bool = False, saturation: float = 1.0
    ) -> Any:
        """Colorize one image routed by ``groups`` (``(H, W)`` at the image's size; ``None``: the segmenter).

        Returns what :meth:`ExpertColorizer.colorize` returns for one image.

        Raises:
            TypeError: for a list of images (one mask belongs to one photo).
        """
        if isinstance(image, (list, tuple)):
            raise TypeError("oracle routing colours one photo at a time: each has its own group mask")
        self.segmenter.mask = groups
        try:
            return self.colorizer.colorize(image, return_details=return_details, saturation=saturation)
        finally:
            self.segmenter.mask = None


# -- variant names -> functions ---------------------------------------------------------------------------
def resolve_variants(
    spec: str | Sequence[str] | None, expert_names: Iterable[str], generalist_available: bool
) -> list[str]:
    """Expand a variant list: ``"experts"`` becomes ``expert:<name>`` for every expert.

    A comma-separated string (the CLI's ``--compare``) lists variants compared *with* the routed
    model, so ``"routed"`` comes first; ``None`` means ``routed`` plus ``generalist`` (when one is
    available), ``experts`` and ``gray``. A list or tuple is taken as given (``["gray"]`` evaluates
    only the gray floor). ``oracle`` is evaluated only when asked for.

    Raises:
        ValueError: for an unknown variant or expert, or ``generalist`` without a generalist.
    """
    names = list(expert_names)
    out: list[str] = []
    if spec is None:
        items = ["routed", *(["generalist"] if generalist_available else []), "experts", "gray"]
    elif isinstance(spec, str):
        items = ["routed", *(s.strip() for s in spec.split(",") if s.strip())]
    else:
        items = list(spec)
    if not items:
        raise ValueError("no variants to evaluate")
    for item in items:
        if item == "experts":
            new = [f"expert:{n}" for n in names]
        elif item.startswith("expert:"):
            if item.split(":", 1)[1] not in names:
                raise ValueError(f"unknown expert in {item!r}; the model has {names}")
            new = [item]
        elif item == "generalist":
            if not generalist_available:
                raise ValueError(
                    "variant 'generalist' needs a generalist expert directory (--generalist DIR); "
                    "none is bundled with this installation"
                )
            new = [item]
        elif item in ("routed", "gray", "oracle"):
            new = [item]
        else:
            raise ValueError(
                f"unknown variant {item!r}; use routed, gray, generalist, oracle, experts or expert:<name>"
            )
        out += [v for v in new if v not in out]
    return out


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    """The ``ab = 0`` rendering of an image: its own lightness as neutral gray, ``(H, W, 3)`` uint8."""
    decoded = decode_inputs(np.ascontiguousarray(M.to_uint8(rgb)))[0]
    L = decoded.L
    lab = torch.cat([L, torch.zeros(1, 2, *L.shape[-2:], dtype=L.dtype)], dim=1)
    return encode_output(lab_to_rgb(lab), decoded)


def build_variants(
    colorizer: ExpertColorizer,
    variants: Sequence[str],
    generalist: str | os.PathLike | Expert | None = None,
    saturation: float = 1.0,
    prior_correction: float | None = None,
) -> dict[str, Variant]:
    """The :data:`Variant` function of each variant name.

    ``prior_correction`` (when not ``None``) is set on the generalist; the experts keep the
    colorizer's own setting.

    Raises:
        ValueError: for an unknown variant, ``generalist`` without a generalist, or ``oracle`` for a
            model that routes no category to one of the groups' experts.
    """

    def run_with(c: ExpertColorizer) -> Variant:
        return lambda rgb, groups: c.colorize(rgb, saturation=saturation)

    out: dict[str, Variant] = {}
    for v in variants:
        if v == "routed":
            out[v] = run_with(colorizer)
        elif v == "gray":
            out[v] = lambda rgb, groups: gray_rgb(rgb)
        elif v.startswith("expert:"):
            name = v.split(":", 1)[1]
            if name not in colorizer.experts:
                raise ValueError(f"unknown expert {name!r}; the model has {list(colorizer.experts)}")
            out[v] = run_with(single_expert_colorizer(colorizer.experts[name], colorizer))
        elif v == "generalist":
            if generalist is None:
                raise ValueError("variant 'generalist' needs a generalist expert (directory)")
            expert = generalist if isinstance(generalist, Expert) else Expert.from_pretrained(generalist)
            if prior_correction is not None and expert.config.head == "classification":
                expert.with_prior_correction(prior_correction)
            out[v] = run_with(single_expert_colorizer(expert, colorizer))
        elif v == "oracle":
            oracle = OracleRouting(colorizer)
            out[v] = lambda rgb, groups, o=oracle: o.colorize(rgb, groups, saturation=saturation)
        else:
            raise ValueError(f"unknown variant {v!r}")
    return out
