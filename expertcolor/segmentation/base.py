"""The segmenter interface: grayscale L in, per-pixel class probabilities out."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn


class Segmenter(nn.Module):
    """Anything that maps lightness to class probabilities over named categories.

    Subclasses implement :meth:`forward` and expose :attr:`categories` (names in output order).
    """

    categories: tuple[str, ...]

    @abstractmethod
    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Class probabilities.

        Args:
            L: lightness, shape ``(B, 1, H, W)``, float in ``[0, 100]``.

        Returns:
            Probabilities, shape ``(B, C, H, W)`` with ``C = len(categories)``, summing to 1 over C.
        """

    @staticmethod
    def _check_input(L: torch.Tensor) -> None:
        if not isinstance(L, torch.Tensor):
            raise TypeError(f"segmenter input must be a tensor, got {type(L).__name__}")
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"segmenter input must have shape (B, 1, H, W), got {tuple(L.shape)}")
