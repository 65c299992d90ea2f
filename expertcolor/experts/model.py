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

__all__ = ["Expert", "annealed_mean"]


def annealed_mean(
    logits: torch.Tensor,
    centers: torch.Tensor,
    temperature: float,
    log_weights: torch.Tensor | None = None,
    prior_correction: float = 0.0,
) -> torch.Tensor:
    """ab from bin logits: ``softmax((logits - prior_correction * log_weights) / temperature)``-weighted
    bin centres (Zhang et al. 2016's annealed mean, after undoing part of the class rebalancing).

    Args:
        logits: ``(B, Q, h, w)``.
        centers: bin centres ``(Q, 2)``, in the units the result should have (normalised or ab).
        temperature: in ``(0, 1]``; 1 is the mean, lower is nearer the mode.
        log_weights: ``(Q,)`` log of the training's rebalancing weights (needed when ``prior_correction``).
        prior_correction: how much of the rebalancing to undo, ``[0, 1]``.

    Returns:
        ``(B, 2, h, w)`` float32.
    """
    logits = logits.float()
    if prior_correction:
        logits = logits - prior_correction * log_weights.float().view(1, -1, 1, 1)
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, centers.to(p.dtype))


class Expert(PretrainedModel):
    """A network that predicts ab from L, trained on one domain.

    The layers are an smp ``encoder -> decoder -> head`` with one input channel (L scaled to
    ``[-1, 1]``). The head either regresses ab/110 (2 channels) or scores ``Q`` quantised ab bins
    (classification, decoded by annealed mean at ``config.temperature``, after undoing
    ``config.prior_correction`` of the training's class rebalancing). Decoders may predict at
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
        if config.head == "classification":
            # log of the per-bin rebalancing weights the loss used in training (saved with the
            # weights; zeros = unknown or none), so decoding can undo the boost of rare colours.
            self.register_buffer("rebalance_log_weights", torch.zeros(out_channels))
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

        Classification uses the annealed mean: ``softmax((logits - alpha * log w) / T)`` weighted
        bin centres, with ``alpha = config.prior_correction`` and ``w`` the training's per-bin
        rebalancing weights (Zhang et al. 2016). A loss weighted by ``w`` at each pixel's true bin
        learns probabilities proportional to ``w * p``; dividing ``w`` back out (``alpha = 1``)
        recovers the calibrated ``p``.
        """
        if self.config.head == "regression":
            return raw
        t = self.config.temperature if temperature is None else temperature
        return annealed_mean(raw, self.bin_centers, t, self.rebalance_log_weights, float(self.config.prior_correction))

    @property
    def has_rebalance_weights(self) -> bool:
        """Whether the training's rebalancing weights are known: set in training and saved with the
        weights (all zeros: unknown, or a loss without rebalancing, so there is nothing to undo)."""
        return self.config.head == "classification" and bool(self.rebalance_log_weights.abs().max() > 0)

    def set_rebalance_weights(self, weights: torch.Tensor) -> None:
        """Store the per-bin class-rebalancing weights ``(Q,)`` the training loss used.

        Raises:
            ValueError: for a regression expert, or weights of the wrong shape or not positive.
        """
        if self.config.head != "classification":
            raise ValueError(f"expert {self.name!r} regresses ab; rebalancing weights apply to classification only")
        w = torch.as_tensor(weights, dtype=torch.float32).detach().cpu()
        if w.shape != self.rebalance_log_weights.shape:
            raise ValueError(f"rebalancing weights must have shape {tuple(self.rebalance_log_weights.shape)}, "
                             f"got {tuple(w.shape)}")
        if not bool(torch.isfinite(w).all() and (w > 0).all()):
            raise ValueError("rebalancing weights must be finite and positive")
        self.rebalance_log_weights.copy_(w.log())

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        # Weights saved before the rebalancing weights were stored load with them unknown (zeros);
        # a hook here (not in load_state_dict) also covers wrappers such as the training's RawExpert.
        key = prefix + "rebalance_log_weights"
        if self.config.head == "classification" and key not in state_dict:
            state_dict[key] = torch.zeros_like(self.rebalance_log_weights)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> Expert:
        """Load an expert directory (see :meth:`PretrainedModel.from_pretrained`).

        Raises:
            FileNotFoundError: if the directory or one of its files is missing.
            ValueError: if the config or weights do not fit, or the config asks for a
                ``prior_correction`` the weights cannot give (no stored rebalancing weights).
        """
        expert = super().from_pretrained(directory, map_location)
        if expert.config.prior_correction and not expert.has_rebalance_weights:
            raise ValueError(
                f"{directory}: config.json sets prior_correction={expert.config.prior_correction} but the weights "
                "hold no rebalancing weights (saved by an older version); set it to 0"
            )
        return expert

    def with_decoding(self, temperature: float | None = None, prior_correction: float | None = None) -> Expert:
        """Return self decoding at the given settings (see :meth:`decode`); ``None`` keeps a setting.

        The one way to change how a loaded expert decodes: the command line, the colorizer and
        model-directory assembly all go through it, and nothing else reassigns ``config``.

        Args:
            temperature: annealed-mean temperature in ``(0, 1]`` (classification head; 1 = mean,
                towards 0 = mode: more colourful, less safe).
            prior_correction: how much of the training's class rebalancing to undo, ``[0, 1]``
                (0 vivid as trained, 1 calibrated and more neutral).

        Raises:
            TypeError: if a setting is not a number.
            ValueError: if a setting is out of range, ``prior_correction`` is non-zero for a
                regression expert or one whose rebalancing weights are unknown. Nothing changes then.
        """
        changes: dict[str, float] = {}
        for key, value in (("temperature", temperature), ("prior_correction", prior_correction)):
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TypeError(f"{key} must be a number, got {type(value).__name__}")
            changes[key] = float(value)
        config = dataclasses.replace(self.config, **changes)  # ExpertConfig's range checks
        if prior_correction is not None and config.prior_correction and not self.has_rebalance_weights:
            raise ValueError(
                f"expert {self.name!r} has no stored rebalancing weights (saved by an older version or "
                "trained without rebalancing), so prior_correction must be 0"
            )
        self.config = config
        return self

    def with_prior_correction(self, alpha: float) -> Expert:
        """``with_decoding(prior_correction=alpha)``: return self decoding with that prior correction.

        Raises:
            TypeError: if ``alpha`` is not a number.
            ValueError: if ``alpha`` is outside ``[0, 1]``, or non-zero for a regression expert or
                one whose rebalancing weights are unknown.
        """
        return self.with_decoding(prior_correction=alpha)

    def load_encoder(self, path: str | os.PathLike) -> None:
        """Initialise the encoder from a local pretrained checkpoint (e.g. ImageNet MobileNetV2)."""
        load_encoder_weights(self.net.encoder, path)

    def with_provenance(self, **info: Any) -> Expert:
        """Return self after merging ``info`` into ``config.provenance``."""
        self.config = dataclasses.replace(self.config, provenance={**self.config.provenance, **info})
        return self
