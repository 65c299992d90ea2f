"""Adapter for torchvision's VOC segmentation models (LR-ASPP, DeepLabV3, FCN).

They were trained on colour photos; here they see the grayscale input replicated to RGB.
Official weights are looked up in the torch hub cache (``$TORCH_HOME/hub/checkpoints``) or a
given local file, and downloaded there only when allowed and missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision

from ..color import lab_to_rgb
from ..modeling import PretrainedModel, load_weights
from .base import Segmenter
from .categories import VOC_CATEGORIES

__all__ = ["TorchvisionSegmenterConfig", "TorchvisionSegmenter", "TORCHVISION_SEGMENTERS"]

TORCHVISION_SEGMENTERS: tuple[str, ...] = (
    "lraspp_mobilenet_v3_large",
    "deeplabv3_mobilenet_v3_large",
    "deeplabv3_resnet50",
    "deeplabv3_resnet101",
    "fcn_resnet50",
    "fcn_resnet101",
)

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TorchvisionSegmenterConfig:
    """Configuration of :class:`TorchvisionSegmenter`.

    Attributes:
        model: one of :data:`TORCHVISION_SEGMENTERS`.
        categories: class names in output order (VOC-21 for the official weights).
        provenance: where the weights came from.
    """

    model: str = "lraspp_mobilenet_v3_large"
    categories: tuple[str, ...] = VOC_CATEGORIES
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        if self.model not in TORCHVISION_SEGMENTERS:
            raise ValueError(
                f"unknown torchvision segmenter {self.model!r}; choose from {list(TORCHVISION_SEGMENTERS)}"
            )


class TorchvisionSegmenter(PretrainedModel, Segmenter):
    """A torchvision segmentation model behind the :class:`Segmenter` interface.

    Build it with :meth:`from_torchvision` to get the official VOC weights; the plain
    constructor makes an untrained model (no download).
    """

    config_class = TorchvisionSegmenterConfig
    model_type = "torchvision_segmenter"

    def __init__(self, config: TorchvisionSegmenterConfig | None = None) -> None:
        super().__init__(config if config is not None else TorchvisionSegmenterConfig())
        self.categories = self.config.categories
        builder = getattr(torchvision.models.segmentation, self.config.model)
        # weights=None, weights_backbone=None: never download while constructing.
        self.net = builder(weights=None, weights_backbone=None, num_classes=len(self.categories), aux_loss=False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def official_weights_url(model: str) -> str:
        """URL of torchvision's default VOC weights for ``model``."""
        return torchvision.models.get_model_weights(model).DEFAULT.url

    @classmethod
    def cached_weights_path(cls, model: str) -> Path:
        """Where torch hub keeps (or would keep) the official weights file."""
        url = cls.official_weights_url(model)
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)

    @classmethod
    def from_torchvision(
        cls, model: str = "lraspp_mobilenet_v3_large", weights: str | os.PathLike | None = None, download: bool = True
    ) -> TorchvisionSegmenter:
        """Build ``model`` with torchvision's official VOC weights.

        Args:
            model: one of :data:`TORCHVISION_SEGMENTERS`.
            weights: a local weights file (``.pth`` read with ``weights_only=True``, or
                ``.safetensors``). Default: the torch hub cache.
            download: fetch the official file into the hub cache when it is not there.

        Raises:
            FileNotFoundError: if no weights are available offline and downloading is off or fails.
        """
        seg = cls(TorchvisionSegmenterConfig(model=model))
        if weights is None:
            path = cls.cached_weights_path(model)
            if not path.is_file():
                if not download:
                    raise FileNotFoundError(
                        f"no weights for {model} in the torch hub cache ({path}); "
                        "pass weights=PATH or allow download=True"
                    )
                try:
                    torch.hub.load_state_dict_from_url(
                        cls.official_weights_url(model), progress=True, weights_only=True
                    )
                except Exception as e:  # noqa: BLE001 - network errors vary
                    raise FileNotFoundError(
                        f"could not download weights for {model} ({e}); put the file at {path} or pass weights=PATH"
                    ) from None
            weights = path
        seg.load_official(weights)
        return seg

    def load_official(self, weights: str | os.PathLike) -> None:
        """Load a torchvision state dict; auxiliary-classifier keys are dropped (unused here)."""
        sd = {k: v for k, v in load_weights(weights).items() if not k.startswith("aux_classifier.")}
        sd = {k[4:] if k.startswith("net.") else k: v for k, v in sd.items()}
        try:
            self.net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{weights} does not fit {self.config.model}: {e}") from None
        self.config = TorchvisionSegmenterConfig(
            model=self.config.model, categories=self.categories, provenance={"weights": os.path.basename(str(weights))}
        )

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, C, H, W)`` from L ``(B, 1, H, W)`` in ``[0, 100]``."""
        self._check_input(L)
        gray = lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], dim=1))
        x = (gray - self.mean) / self.std
        return self.net(x)["out"].softmax(dim=1)
