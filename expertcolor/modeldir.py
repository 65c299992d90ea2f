"""The model directory format: the one module that writes and reads a model directory, checks it,
and builds one from trained parts.

::

    model_dir/
      config.json            format version, working size, merge, upsampling, routing table
      manifest.json          every weight file with its sha256 and size
      segmenter/{config.json, model.safetensors}
      experts/<name>/{config.json, model.safetensors}

:meth:`ExpertColorizer.save_pretrained <expertcolor.ExpertColorizer.save_pretrained>` and
``from_pretrained`` go through :func:`save` and :func:`load`; ``expertcolor assemble`` and
``expertcolor add-expert`` are :func:`assemble` and :func:`add_expert`.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .experts import Expert, check_expert_name
from .merge import MergeStrategy, create_merge
from .modeling import read_json, sha256_file, write_json
from .segmentation import RoutingTable, Segmenter, load_segmenter

if TYPE_CHECKING:
    from .colorizer import ExpertColorizer

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "WeightsNotFoundError",
    "ModelParts",
    "default_model_dir",
    "expert_subdir",
    "write_manifest",
    "verify_manifest",
    "model_config",
    "settings_from_config",
    "save",
    "read_config",
    "load",
    "assemble",
    "add_expert",
]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
MANIFEST_NAME = "manifest.json"
SEGMENTER_DIR = "segmenter"
EXPERTS_DIR = "experts"
WEIGHTS_PATTERN = "*.safetensors"
#: Files the manifest records: torch weights, and the ONNX graphs of `expertcolor export-onnx`.
WEIGHT_PATTERNS = (WEIGHTS_PATTERN, "*.onnx")


class WeightsNotFoundError(FileNotFoundError):
    """No trained weights where they were looked for."""


def default_model_dir() -> Path:
    """The embedded default model directory inside the installed package.

    Raises:
        WeightsNotFoundError: if the package ships no trained weights.
    """
    path = Path(str(resources.files("expertcolor") / "pretrained" / "default"))
    if not (path / CONFIG_NAME).is_file():
        raise WeightsNotFoundError(
            "this installation of expertcolor has no embedded default weights. Train experts and a "
            "segmenter with `expertcolor train-expert` / `expertcolor train-segmenter` (see README, "
            "'Train your own expert') and load them with ExpertColorizer.from_pretrained('path/to/model_dir')."
        )
    return path


def expert_subdir(model_dir: str | os.PathLike, name: Any) -> Path:
    """``model_dir/experts/<name>``, after checking that it stays inside ``model_dir``.

    Expert names come from ``config.json`` files, which may be hostile or broken: the name must
    pass :func:`~expertcolor.experts.check_expert_name`, and the resolved folder (symlinks
    followed) must lie directly in ``model_dir/experts``. Call this before any read, write or
    delete of an expert folder.

    Raises:
        ValueError: naming the expert and the directory.
    """
    try:
        check_expert_name(name)
    except ValueError as e:
        raise ValueError(f"{model_dir}: {e}") from None
    base = Path(model_dir) / EXPERTS_DIR
    target = base / name
    if (target.resolve().parent != base.resolve()) or target.is_symlink():
        raise ValueError(f"{model_dir}: expert folder {target} leads outside {base}; refusing to use it")
    return target


# -- manifest ------------------------------------------------------------------------------------------
def write_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """Record the sha256 and size of every weight file (``*.safetensors``, ``*.onnx``) below ``directory``."""
    directory = Path(directory)
    paths = sorted(p for pattern in WEIGHT_PATTERNS for p in directory.rglob(pattern))
    files = {p.relative_to(directory).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size} for p in paths}
    manifest = {"format_version": FORMAT_VERSION, "files": files}
    write_json(directory / MANIFEST_NAME, manifest)
    return manifest


def verify_manifest(directory: str | os.PathLike) -> None:
    """Check every file listed in ``manifest.json`` (when present) against its size and sha256.

    Raises:
        ValueError: naming the first file that is missing or differs.
    """
    directory = Path(directory)
    if not (directory / MANIFEST_NAME).is_file():
        logger.warning("%s has no manifest.json: its weight files cannot be checked for corruption or tampering "
                       "(save_pretrained writes one)", directory)
        return
    for rel, info in read_json(directory / MANIFEST_NAME).get("files", {}).items():
        p = directory / rel
        if not p.is_file():
            raise ValueError(f"{directory}: weight file {rel} listed in manifest.json is missing")
        if p.stat().st_size != info.get("size") or sha256_file(p) != info.get("sha256"):
            raise ValueError(f"{directory}: {rel} does not match manifest.json (corrupted or replaced?)")


# -- config.json ---------------------------------------------------------------------------------------
def model_config(
    *,
    working_size: int,
    upsample: str,
    batch_size: int,
    flip_segmentation: bool,
    crop_margin: int | None,
    merge: Mapping[str, Any],
    routing: Mapping[str, Any],
    experts: Sequence[str],
) -> dict[str, Any]:
    """The JSON object written to ``config.json`` (the inverse of :func:`settings_from_config`)."""
    return {
        "format_version": FORMAT_VERSION,
        "working_size": working_size,
        "upsample": upsample,
        "batch_size": batch_size,
        "flip_segmentation": flip_segmentation,
        "crop_margin": crop_margin,
        "merge": dict(merge),
        "routing": dict(routing),
        "experts": list(experts),
        "segmenter": SEGMENTER_DIR,
    }


def settings_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``ExpertColorizer`` keyword arguments stored in ``config.json``; keys that directories written
    by older versions lack get the values those versions used."""
    merge_cfg = dict(cfg.get("merge", {"name": "soft"}))
    return {
        "merge": create_merge(merge_cfg.pop("name"), **merge_cfg),
        "working_size": cfg.get("working_size", 256),
        "upsample": cfg.get("upsample", "guided"),
        "batch_size": cfg.get("batch_size", 8),
        "flip_segmentation": cfg.get("flip_segmentation", False),
        "crop_margin": cfg.get("crop_margin", 64),
    }


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a model directory, after checking its format version and its manifest.

    Raises:
        FileNotFoundError: if the directory or its ``config.json`` is missing.
        ValueError: for an unsupported format version or weight files that differ from the manifest.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"model directory not found: {directory}")
    cfg = read_json(directory / CONFIG_NAME)
    if cfg.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: unsupported format_version {cfg.get('format_version')!r}")
    verify_manifest(directory)
    return cfg


# -- whole directories ---------------------------------------------------------------------------------
@dataclass
class ModelParts:
    """What a model directory holds, loaded.

    Attributes:
        config: ``config.json`` as read.
        segmenter: the segmenter (CPU, eval mode).
        experts: ``{name: expert}`` in the order ``config.json`` lists them.
        routing: the routing table over the segmenter's categories.
        settings: the stored ``ExpertColorizer`` keyword arguments (see :func:`settings_from_config`).
    """

    config: dict[str, Any]
    segmenter: Segmenter
    experts: dict[str, Expert]
    routing: RoutingTable
    settings: dict[str, Any]


def load(directory: str | os.PathLike) -> ModelParts:
    """Read a model directory written by :func:`save` (or by any earlier version); no network access.

    Raises:
        FileNotFoundError: if the directory or one of its files is missing.
        ValueError: if files are inconsistent, corrupted or hostile (an expert name leading outside).
    """
    directory = Path(directory)
    cfg = read_config(directory)
    segmenter = load_segmenter(directory / SEGMENTER_DIR)
    if "routing" not in cfg:
        raise ValueError(f"{directory}/config.json has no 'routing' table; is this a model directory?")
    names = cfg.get("experts") or sorted(p.name for p in (directory / EXPERTS_DIR).iterdir() if p.is_dir())
    experts = {n: Expert.from_pretrained(expert_subdir(directory, n)) for n in names}
    routing = RoutingTable.from_dict(cfg["routing"], segmenter.categories)
    return ModelParts(cfg, segmenter, experts, routing, settings_from_config(cfg))


def save(
    directory: str | os.PathLike,
    config: Mapping[str, Any],
    segmenter: Segmenter,
    experts: Mapping[str, Expert],
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a whole model directory: segmenter, experts, ``config.json`` and the manifest.

    Args:
        directory: target folder (created); its ``experts/`` and ``segmenter/`` are replaced.
        config: the ``config.json`` object (see :func:`model_config`).
        segmenter: saved to ``segmenter/``.
        experts: ``{name: expert}``, each saved to ``experts/<name>``.
        dtype: optional storage dtype for weights (``torch.float16`` halves the size).

    Raises:
        ValueError: for an expert name that is not a safe folder name (checked before any write).
    """
    directory = Path(directory)
    targets = {name: expert_subdir(directory, name) for name in experts}  # before anything is written
    directory.mkdir(parents=True, exist_ok=True)
    for sub in (EXPERTS_DIR, SEGMENTER_DIR):
        if (directory / sub).exists():
            shutil.rmtree(directory / sub)
    segmenter.save_pretrained(directory / SEGMENTER_DIR, dtype=dtype)
    for name, expert in experts.items():
        expert.save_pretrained(targets[name], dtype=dtype)
    write_json(directory / CONFIG_NAME, dict(config))
    write_manifest(directory)
    return directory


# -- building from trained parts -----------------------------------------------------------------------
def assemble(
    out: str | os.PathLike,
    segmenter: str | os.PathLike,
    experts: Sequence[str | os.PathLike],
    *,
    merge: MergeStrategy | str = "soft",
    working_size: int = 256,
    flip_segmentation: bool = False,
    temperature: float | None = None,
    prior_correction: float | None = None,
    fp16: bool = False,
) -> ExpertColorizer:
    """Build a model directory from a trained segmenter and experts (``expertcolor assemble``).

    Each expert's own ``classes`` are routed to it; the routing's default expert (``places``)
    takes every other category.

    Args:
        out: the model directory to write.
        segmenter: a segmenter directory (``train-segmenter`` output).
        experts: expert directories (``train-expert`` output), with distinct names.
        merge: the stored merge strategy, or its name / spec (``"context:strength=0.75"``).
        working_size: the stored working size (long side, pixels).
        flip_segmentation: store test-time flip averaging of segmentation.
        temperature: annealed-mean temperature in ``(0, 1]`` stored for every classification
            expert (default: each one's own).
        prior_correction: prior correction in ``[0, 1]`` stored for every classification expert
            (default: each one's own; see :meth:`Expert.with_decoding`).
        fp16: store weights as float16 (half the size).

    Returns:
        The assembled colorizer (on the CPU), as written to ``out``.

    Raises:
        FileNotFoundError: if a directory has no ``config.json``.
        ValueError: for duplicate expert names, a setting out of range, or a prior correction for
            an expert without stored rebalancing weights.
    """
    from .colorizer import ExpertColorizer  # the colorizer saves through this module

    for d in [segmenter, *experts]:
        if not (Path(d) / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"not a model directory (no config.json): {d}")
    strategy = create_merge(merge) if isinstance(merge, str) else merge
    loaded = [Expert.from_pretrained(d) for d in experts]
    if temperature is not None and not 0 < temperature <= 1:
        raise ValueError(f"temperature must be in (0, 1], got {temperature}")
    for e in loaded:
        if e.config.head == "classification":
            e.with_decoding(temperature=temperature, prior_correction=prior_correction)
    names = [e.name for e in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"expert names must be distinct, got {names}")
    colorizer = ExpertColorizer(
        loaded, load_segmenter(segmenter), merge=strategy, working_size=working_size, device="cpu",
        flip_segmentation=flip_segmentation,
    )
    for e in loaded:  # route each expert's own classes (the default table covers the four defaults)
        if e.config.classes:
            colorizer.add_expert(e, e.config.classes)
    colorizer.save_pretrained(out, dtype=torch.float16 if fp16 else None)
    return colorizer


def add_expert(
    model_dir: str | os.PathLike,
    expert_dir: str | os.PathLike,
    classes: Sequence[str] | None = None,
    temperature: float | None = None,
) -> list[str]:
    """Copy a trained expert into a model directory and route its classes to it (``expertcolor add-expert``).

    After this, ``ExpertColorizer.from_pretrained(model_dir)`` uses the expert. Its weight file
    is copied byte for byte; an expert of the same name is replaced.

    Args:
        model_dir: a directory written by :func:`save` / ``ExpertColorizer.save_pretrained``.
        expert_dir: an expert directory (``config.json`` + ``model.safetensors``).
        classes: segmentation categories to route to it; default: the expert config's ``classes``.
        temperature: annealed-mean temperature stored with the copy (classification experts);
            default: the expert's own.

    Returns:
        The categories now routed to the expert (for the routing's default expert, e.g. a new
        places expert without classes, every category routed nowhere else).

    Raises:
        ValueError: if the expert's name is not a safe folder name, a class is unknown to the
            model's segmenter, the expert has no classes and is not the routing's default, or
            ``temperature`` is outside ``(0, 1]`` or given for a regression expert.
    """
    model_dir, expert_dir = Path(model_dir), Path(expert_dir)
    cfg = read_json(model_dir / CONFIG_NAME)
    ecfg = read_json(expert_dir / CONFIG_NAME)
    if ecfg.get("type") != "expert":
        raise ValueError(f"{expert_dir} does not hold an expert (type {ecfg.get('type')!r})")
    name = ecfg.get("name")
    target = expert_subdir(model_dir, name)  # before any write or delete: the name is untrusted input
    classes = list(ecfg.get("classes", []) if classes is None else classes)
    if not isinstance(cfg.get("routing"), dict) or "routes" not in cfg["routing"] or "default" not in cfg["routing"]:
        raise ValueError(f"{model_dir}/config.json has no routing table (routes, default); is this a model directory?")
    routing = cfg["routing"]
    if not classes and name != routing["default"]:  # the default expert takes every unrouted category
        raise ValueError(f"expert {name!r} owns no classes; pass the categories to route to it")
    if temperature is not None:
        if ecfg.get("head", "classification") != "classification":
            raise ValueError(f"expert {name!r} regresses ab; a temperature applies to classification experts only")
        ecfg = {**ecfg, "temperature": float(temperature)}
        Expert.config_from_dict(ecfg)  # ExpertConfig's own checks (the temperature range) before any write
    categories = read_json(model_dir / SEGMENTER_DIR / CONFIG_NAME).get("categories")
    if not categories:
        raise ValueError(f"{model_dir}/segmenter/config.json lists no categories")
    experts = list(dict.fromkeys([*cfg.get("experts", routing.get("experts", [])), name]))
    routes = {**routing["routes"], **{c: name for c in classes}}
    table = RoutingTable(routes, routing["default"], categories, experts)  # validates names
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(expert_dir / "model.safetensors", target / "model.safetensors")
    write_json(target / CONFIG_NAME, ecfg)
    cfg["experts"] = experts
    cfg["routing"] = table.to_dict()
    write_json(model_dir / CONFIG_NAME, cfg)
    write_manifest(model_dir)
    return classes or [c for c in categories if table.expert_for(c) == name]
