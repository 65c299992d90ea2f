"""The frozen configuration saved beside every expert's weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def check_expert_name(name: Any) -> str:
    """The one rule for expert names: letters, digits, ``_`` and ``-`` only.

    Expert names become folder names in model directories (``experts/<name>``), so the rule also
    keeps every such path inside its directory (no ``/``, ``..`` or absolute paths).

    Returns:
        ``name``.

    Raises:
        ValueError: naming the offending value.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an expert name must be a non-empty string, got {name!r}")
    if not name.replace("_", "").replace("-", "").isalnum() or not name.isascii():
        raise ValueError(f"expert name {name!r} may hold only ASCII letters, digits, '_' and '-'")
    return name


@dataclass(frozen=True)
class ExpertConfig:
    """Describes one domain expert (a network L -> ab).

    Attributes:
        name: the expert's name, used by the routing table (e.g. ``"faces"``).
        arch: segmentation_models_pytorch architecture (``"fpn"``, ``"unet"``, ``"unetplusplus"``...).
        encoder: smp encoder name (e.g. ``"mobilenet_v2"``).
        resolution: square training resolution in pixels; a hint for the working resolution.
        classes: segmentation categories this expert owns (routing defaults).
        head: ``"classification"`` (a distribution over quantised ab bins, decoded by annealed
            mean; resists the grey/brown averaging of regression) or ``"regression"`` (ab directly).
        temperature: annealed-mean temperature for the classification head (1 = mean,
            towards 0 = mode: more colourful, less safe).
        prior_correction: how much of the training's class rebalancing the classification head
            undoes when decoding, ``alpha`` in ``[0, 1]``: the logits become ``logits - alpha *
            log w`` with ``w`` the per-bin rebalancing weights used in training (stored with the
            weights). 0 decodes as trained (rare saturated colours boosted), 1 gives the
            calibrated posterior (neutral where the colour is uncertain).
        bin_grid: ab bin size for the classification head.
        model_kwargs: extra keyword arguments for the smp architecture (decoder widths...).
        provenance: free-form training record (dataset, command, date, metrics).
    """

    name: str
    arch: str = "fpn"
    encoder: str = "mobilenet_v2"
    resolution: int = 128
    classes: tuple[str, ...] = ()
    head: str = "classification"
    temperature: float = 0.38
    prior_correction: float = 0.0
    bin_grid: float = 10.0
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            check_expert_name(self.name)
        except ValueError as e:
            raise ValueError(f"ExpertConfig.name: {e}") from None
        if int(self.resolution) < 32:
            raise ValueError(f"ExpertConfig.resolution must be >= 32, got {self.resolution}")
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.head not in ("classification", "regression"):
            raise ValueError(f"ExpertConfig.head must be 'classification' or 'regression', got {self.head!r}")
        if not 0 < float(self.temperature) <= 1:
            raise ValueError(f"ExpertConfig.temperature must be in (0, 1], got {self.temperature}")
        if not 0 <= float(self.prior_correction) <= 1:
            raise ValueError(f"ExpertConfig.prior_correction must be in [0, 1], got {self.prior_correction}")
        if self.head == "regression" and float(self.prior_correction) != 0:
            raise ValueError("ExpertConfig.prior_correction applies to the classification head only")
