"""Evaluation of colorizations against colour photos: the loop, its variants, scores, routing IoU and reports.

Modules: :mod:`.loop` (``evaluate``), :mod:`.variants` (routed, expert alone, generalist, oracle
routing, no colour), :mod:`.scores` (per photo and over a set), :mod:`.routing` (segmenter IoU on
the routing groups), :mod:`.report` (``report.json``/``report.md``), :mod:`.stats` (paired bootstrap),
:mod:`.domains` (each expert's validation photos). The runnable studies, each with
``get_args_parser()`` and ``main(args)``: :mod:`.stats`, :mod:`.oracle`, :mod:`.in_domain`,
:mod:`.tune_context`, :mod:`.tune_decoding`.
"""

from .loop import EvalPhoto, evaluate, list_photos, load_eval_photo
from .report import build_report, routing_markdown, to_markdown, write_args, write_report
from .routing import evaluate_routing, iou_table
from .scores import aggregate, group_name, image_metrics
from .stats import paired_bootstrap, per_photo, seed_mean
from .variants import (
    EXPERT_GROUPS,
    GroupMaskSegmenter,
    OracleRouting,
    Variant,
    build_variants,
    default_generalist_dir,
    gray_rgb,
    group_categories,
    resolve_variants,
    single_expert_colorizer,
)

__all__ = [
    "evaluate",
    "EvalPhoto",
    "list_photos",
    "load_eval_photo",
    "Variant",
    "resolve_variants",
    "build_variants",
    "default_generalist_dir",
    "single_expert_colorizer",
    "gray_rgb",
    "OracleRouting",
    "GroupMaskSegmenter",
    "group_categories",
    "EXPERT_GROUPS",
    "image_metrics",
    "aggregate",
    "group_name",
    "evaluate_routing",
    "iou_table",
    "build_report",
    "to_markdown",
    "routing_markdown",
    "write_report",
    "write_args",
    "paired_bootstrap",
    "per_photo",
    "seed_mean",
]
