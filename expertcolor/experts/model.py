"""The expert network: grayscale lightness L in, Lab chroma ab out."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from ..color import ab_bin_centers, denormalize_ab, normalize_ab, normalize_l
from ..modeling import PretrainedModel, load_encoder_weights, run_padded
from .config import ExpertConfig

__all__ = ["Expert"]


class Expert(PretrainedModel):
    """A network that predicts ab from L, trained on one domain.

    The layers are an smp ``encoder -> decoder -> head`` with one input channel (L scaled to
    ``[-1, 1]``). The head either regresses ab/110 (2 channels) or scores ``Q`` quantised ab bins
    (classification, decoded by annealed mean at ``config.temperature``). Decoders may predict at
    reduced resolution (FPN: 1/4); chroma is upsampled to the input size. Any input size works:
    the input is padded to a multiple of 32 and the output cropped back.

    Example:
        >>> expert = Expert(ExpertConfig(name="faces"))
        >>> ab = expert(torch.full((1, 1, 100, 70), 50.0))
        >>> tuple(ab.shape)
        (1, 2, 100, 70)
    """

    config_class = ExpertConfig
    model_type = "expert"

    def __init__(self, config: ExpertConfig) -> None:
        super().__init__(config)
        centers = normalize_ab(ab_bin_centers(config.bin_grid))
        self.register_buffer("bin_centers", centers, persistent=False)  # (Q, 2), network scale
        out_channels = centers.shape[0] if config.head == "classification" else 2
        try:
            self.net = smp.create_model(
                config.arch,
                encoder_name=config.encoder,
                encoder_weights=None,  # never download; load local weights with load_encoder()
                in_channels=1,
                classes=out_channels,
                **config.model_kwargs,
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"cannot build expert {config.name!r} ({config.arch}/{config.encoder}): {e}") from None

    @property
    def name(self) -> str:
        """The expert's name."""
        return self.config.name

    @property
    def num_outputs(self) -> int:
        """Channels of :meth:`raw`: the number of ab bins, or 2 for regression."""
        return int(self.bin_centers.shape[0]) if self.config.head == "classification" else 2

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Predict chroma.

        Args:
            L: lightness, shape ``(B, 1, H, W)``, float in ``[0, 100]``.

        Returns:
            ab in Lab units, shape ``(B, 2, H, W)``.
        """
        if not isinstance(L, torch.Tensor) or L.dim() != 4 or L.shape[1] != 1:
            shape = tuple(L.shape) if isinstance(L, torch.Tensor) else type(L).__name__
            raise ValueError(f"expert input must be a tensor of shape (B, 1, H, W), got {shape}")
        ab = self.decode(self.raw(normalize_l(L)))
        if ab.shape[-2:] != L.shape[-2:]:
            ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return denormalize_ab(ab)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """Network output for normalised input ``L/50 - 1`` ``(B, 1, H, W)``: bin logits
        ``(B, Q, h, w)`` or normalised ab ``(B, 2, h, w)``, where ``h, w`` is the input size
        divided by the decoder's output stride (rounded up). Training computes losses on this."""
        return run_padded(self.net, x)

    def decode(self, raw: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Normalised ab ``(B, 2, h, w)`` from :meth:`raw` output.

        Classification uses the annealed mean: ``softmax(logits / T)`` weighted bin centres.
        """
        if self.config.head == "regression":
            return raw
        t = self.config.temperature if temperature is None else temperature
        p = torch.softmax(raw.float() / t, dim=1)
        return torch.einsum("bqhw,qc->bchw", p, self.bin_centers.to(p.dtype))

    def load_encoder(self, path: str | os.PathLike) -> None:
        """Initialise the encoder from a local pretrained checkpoint (e.g. ImageNet MobileNetV2)."""
        load_encoder_weights(self.net.encoder, path)

    def with_provenance(self, **info: Any) -> Expert:
        """Return self after merging ``info`` into ``config.provenance``."""
        self.config = dataclasses.replace(self.config, provenance={**self.config.provenance, **info})
        return self
