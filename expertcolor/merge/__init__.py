"""Merging: per-expert soft weights from routing probabilities, and blending of ab maps."""

from .filters import box_filter, guided_coefficients, guided_filter, guided_upsample, resize_rows
from .strategies import (
    MERGES,
    ContextMerge,
    FeatherMerge,
    GuidedMerge,
    HardMerge,
    MergeStrategy,
    SoftMerge,
    blend,
    create_merge,
    drop_minor_experts,
    list_merges,
    normalize_weights,
    upsample_ab,
    weight_region,
)

__all__ = [
    "MERGES",
    "MergeStrategy",
    "HardMerge",
    "SoftMerge",
    "FeatherMerge",
    "GuidedMerge",
    "ContextMerge",
    "create_merge",
    "list_merges",
    "blend",
    "weight_region",
    "upsample_ab",
    "normalize_weights",
    "drop_minor_experts",
    "box_filter",
    "guided_filter",
    "guided_upsample",
    "guided_coefficients",
    "resize_rows",
]
