"""Named expert architectures: ``list_experts()`` and ``create_expert(...)``."""

from __future__ import annotations

import os
from typing import Any

from .._registry import Registry
from .config import ExpertConfig
from .model import Expert

__all__ = ["EXPERTS", "list_experts", "create_expert", "register_expert", "DEFAULT_EXPERT_ARCH"]

# FPN predicts at 1/4 resolution (upsampling=1: the expert upsamples decoded ab, not 225 bin
# logits); colour is low-frequency, and on 2 CPU cores FPN trains ~3x faster than a U-Net of the
# same encoder at 128^2 (62 vs 21 images/s, measured).
DEFAULT_EXPERT_ARCH = "fpn_mobilenet_v2"

#: Architecture presets: name -> :class:`ExpertConfig` fields (all but ``name``).
EXPERTS: Registry[dict[str, Any]] = Registry("expert architecture")


def register_expert(name: str, **config_fields: Any) -> None:
    """Register an architecture preset: fields for :class:`ExpertConfig` (all but ``name``).

    Raises:
        ValueError: if ``name`` is already registered.
    """
    EXPERTS.register(name, config_fields)


register_expert(
    "fpn_mobilenet_v2",
    arch="fpn",
    encoder="mobilenet_v2",
    model_kwargs={"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32, "upsampling": 1},
)
register_expert(
    "unet_mobilenet_v2",
    arch="unet",
    encoder="mobilenet_v2",
    model_kwargs={"decoder_channels": [64, 48, 32, 24, 16]},
)
register_expert("unet_resnet18", arch="unet", encoder="resnet18")
register_expert("unet_resnet34", arch="unet", encoder="resnet34")


def list_experts() -> list[str]:
    """Names of the registered expert architectures, sorted."""
    return EXPERTS.names()


def create_expert(
    arch: str = DEFAULT_EXPERT_ARCH,
    name: str = "expert",
    classes: tuple[str, ...] | list[str] = (),
    resolution: int = 128,
    init_encoder: str | os.PathLike | None = None,
    **overrides: Any,
) -> Expert:
    """Build a new (untrained) expert from a registered architecture.

    Args:
        arch: one of :func:`list_experts`.
        name: the expert's name (used by routing).
        classes: segmentation categories it owns.
        resolution: training resolution.
        init_encoder: optional local checkpoint to initialise the encoder from.
        **overrides: any other :class:`ExpertConfig` field.

    Raises:
        KeyError: if ``arch`` is not registered (the message lists the choices).
    """
    fields = {**EXPERTS.get(arch), **overrides}
    fields["provenance"] = {"preset": arch, **fields.get("provenance", {})}
    config = ExpertConfig(name=name, classes=tuple(classes), resolution=resolution, **fields)
    expert = Expert(config)
    if init_encoder is not None:
        expert.load_encoder(init_encoder)
        expert.with_provenance(init_encoder=os.path.basename(str(init_encoder)))
    return expert
