"""The routing table: which expert colours which segmentation category."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .categories import DEFAULT_EXPERT, DEFAULT_ROUTES, VOC_CATEGORIES

__all__ = ["RoutingTable"]


class RoutingTable:
    """Maps category names to expert names; unlisted categories go to ``default``.

    Args:
        routes: ``{category: expert}``.
        default: expert for every category not in ``routes``.
        categories: the segmenter's category names, in output order.
        experts: the available experts, in the order of the weight maps :meth:`__call__`
            returns. Defaults to the experts named in ``routes`` and ``default``, sorted.

    Raises:
        ValueError: if a category is unknown to the segmenter, or an expert is not available.

    Example:
        >>> table = RoutingTable()  # person->faces, bird->birds, pets/farm->animals, rest->places
        >>> table.expert_for("dog")
        'animals'
    """

    def __init__(
        self,
        routes: Mapping[str, str] | None = None,
        default: str = DEFAULT_EXPERT,
        categories: Sequence[str] = VOC_CATEGORIES,
        experts: Sequence[str] | None = None,
    ) -> None:
        routes = dict(DEFAULT_ROUTES if routes is None else routes)
        self.categories = tuple(categories)
        if experts is None:
            experts = sorted({*routes.values(), default})
        self.experts = tuple(experts)
        if len(set(self.experts)) != len(self.experts):
            raise ValueError(f"duplicate expert names: {list(self.experts)}")
        unknown_cls = [c for c in routes if c not in self.categories]
        if unknown_cls:
            raise ValueError(
                f"unknown categories {unknown_cls} in routing table; the segmenter knows {list(self.categories)}"
            )
        unknown_exp = sorted({e for e in [*routes.values(), default] if e not in self.experts})
        if unknown_exp:
            raise ValueError(
                f"routing table names experts {unknown_exp} that are not available; have {list(self.experts)}"
            )
        self.routes = routes
        self.default = default

    def expert_for(self, category: str) -> str:
        """The expert that colours ``category``."""
        if category not in self.categories:
            raise ValueError(f"unknown category {category!r}")
        return self.routes.get(category, self.default)

    def matrix(self) -> torch.Tensor:
        """One-hot assignment, shape ``(E, C)``: row e has 1 where category c goes to expert e."""
        m = torch.zeros(len(self.experts), len(self.categories))
        for c, name in enumerate(self.categories):
            m[self.experts.index(self.expert_for(name)), c] = 1.0
        return m

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        """Sum class probabilities into expert probabilities.

        Args:
            probs: shape ``(B, C, H, W)``, summing to 1 over C.

        Returns:
            Expert probabilities, shape ``(B, E, H, W)``, summing to 1 over E.
        """
        if probs.dim() != 4 or probs.shape[1] != len(self.categories):
            raise ValueError(
                f"expected class probabilities of shape (B, {len(self.categories)}, H, W), got {tuple(probs.shape)}"
            )
        return torch.einsum("ec,bchw->behw", self.matrix().to(probs), probs)

    def with_experts(self, experts: Sequence[str]) -> RoutingTable:
        """Same routes over a new expert list (e.g. after adding an expert)."""
        return RoutingTable(self.routes, self.default, self.categories, experts)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored in a model directory's ``config.json``)."""
        return {"routes": dict(self.routes), "default": self.default, "experts": list(self.experts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], categories: Sequence[str]) -> RoutingTable:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(data["routes"], data["default"], categories, data.get("experts"))
        except KeyError as e:
            raise ValueError(f"routing table is missing {e}") from None

    def __repr__(self) -> str:
        return f"RoutingTable(routes={self.routes!r}, default={self.default!r}, experts={list(self.experts)!r})"
