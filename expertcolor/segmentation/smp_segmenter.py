"""The project's own grayscale segmenter: an smp model with a 1-channel L input."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from ..color import normalize_l
from ..modeling import PretrainedModel, load_encoder_weights, run_padded
from .base import Segmenter
from .categories import VOC_CATEGORIES

__all__ = ["SegmenterConfig", "GraySegmenter"]


@dataclass(frozen=True)
class SegmenterConfig:
    """Configuration of :class:`GraySegmenter`.

    Attributes:
        arch: smp architecture (``"fpn"``, ``"unet"``, ``"deeplabv3plus"``...).
        encoder: smp encoder name.
        categories: class names in output order.
        resolution: training resolution (square side, pixels).
        input_norm: how L is scaled for the network; ``"l50"`` means ``L/50 - 1`` in ``[-1, 1]``.
        model_kwargs: extra smp keyword arguments.
        provenance: free-form training record.
    """

    arch: str = "fpn"
    encoder: str = "mobilenet_v2"
    categories: tuple[str, ...] = VOC_CATEGORIES
    resolution: int = 160
    input_norm: str = "l50"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        if len(self.categories) < 2 or len(set(self.categories)) != len(self.categories):
            raise ValueError("SegmenterConfig.categories must hold at least two distinct names")
        if self.input_norm != "l50":
            raise ValueError(f"unknown input_norm {self.input_norm!r}")


class GraySegmenter(PretrainedModel, Segmenter):
    """Segmenter that sees only lightness (distilled from a colour teacher's labels)."""

    config_class = SegmenterConfig
    model_type = "smp_segmenter"

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        super().__init__(config if config is not None else SegmenterConfig())
        self.categories = self.config.categories
        try:
            self.net = smp.create_model(
                self.config.arch,
                encoder_name=self.config.encoder,
                encoder_weights=None,
                in_channels=1,
                classes=len(self.categories),
                **self.config.model_kwargs,
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"cannot build segmenter ({self.config.arch}/{self.config.encoder}): {e}") from None

    def raw(self, L: torch.Tensor) -> torch.Tensor:
        """Class scores at the decoder's output stride (FPN with ``upsampling=1``: 1/4 of the input,
        rounded up); training computes its loss here, against labels downsampled to match."""
        self._check_input(L)
        return run_padded(self.net, normalize_l(L))

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        """Raw class scores at the input's size, shape ``(B, C, H, W)``; see :meth:`forward` for the input."""
        out = self.raw(L)
        if out.shape[-2:] != L.shape[-2:]:
            out = F.interpolate(out, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return out

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, C, H, W)`` from L ``(B, 1, H, W)`` in ``[0, 100]``."""
        return self.logits(L).softmax(dim=1)

    def load_encoder(self, path: str | os.PathLike) -> None:
        """Initialise the encoder from a local pretrained checkpoint."""
        load_encoder_weights(self.net.encoder, path)
