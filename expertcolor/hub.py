"""The model directory: what ``save_pretrained`` writes and ``from_pretrained`` reads.

::

    model_dir/
      config.json            format version, working size, merge, upsampling, routing table
      manifest.json          every weight file with its sha256 and size
      segmenter/{config.json, model.safetensors}
      experts/<name>/{config.json, model.safetensors}
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any

from .experts.config import check_expert_name
from .modeling import read_json, sha256_file, write_json

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION",
    "default_model_dir",
    "write_manifest",
    "verify_manifest",
    "add_expert_to_model_dir",
    "expert_subdir",
    "WeightsNotFoundError",
]

FORMAT_VERSION = 1


class WeightsNotFoundError(FileNotFoundError):
    """No trained weights where they were looked for."""


def default_model_dir() -> Path:
    """The embedded default model directory inside the installed package.

    Raises:
        WeightsNotFoundError: if the package ships no trained weights.
    """
    path = Path(str(resources.files("expertcolor") / "pretrained" / "default"))
    if not (path / "config.json").is_file():
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
    base = Path(model_dir) / "experts"
    target = base / name
    if (target.resolve().parent != base.resolve()) or target.is_symlink():
        raise ValueError(f"{model_dir}: expert folder {target} leads outside {base}; refusing to use it")
    return target


def write_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """Record the sha256 and size of every ``*.safetensors`` file below ``directory``."""
    directory = Path(directory)
    files = {
        p.relative_to(directory).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(directory.rglob("*.safetensors"))
    }
    manifest = {"format_version": FORMAT_VERSION, "files": files}
    write_json(directory / "manifest.json", manifest)
    return manifest


def verify_manifest(directory: str | os.PathLike) -> None:
    """Check every file listed in ``manifest.json`` (when present) against its size and sha256.

    Raises:
        ValueError: naming the first file that is missing or differs.
    """
    directory = Path(directory)
    if not (directory / "manifest.json").is_file():
        logger.warning("%s has no manifest.json: its weight files cannot be checked for corruption or tampering "
                       "(save_pretrained writes one)", directory)
        return
    for rel, info in read_json(directory / "manifest.json").get("files", {}).items():
        p = directory / rel
        if not p.is_file():
            raise ValueError(f"{directory}: weight file {rel} listed in manifest.json is missing")
        if p.stat().st_size != info.get("size") or sha256_file(p) != info.get("sha256"):
            raise ValueError(f"{directory}: {rel} does not match manifest.json (corrupted or replaced?)")


def add_expert_to_model_dir(
    model_dir: str | os.PathLike,
    expert_dir: str | os.PathLike,
    classes: list[str] | None = None,
    temperature: float | None = None,
) -> list[str]:
    """Copy a trained expert into a model directory and route its classes to it.

    After this, ``ExpertColorizer.from_pretrained(model_dir)`` uses the expert.

    Args:
        model_dir: a directory written by ``ExpertColorizer.save_pretrained``.
        expert_dir: an expert directory (``config.json`` + ``model.safetensors``).
        classes: segmentation categories to route to it; default: the expert config's ``classes``.
        temperature: annealed-mean temperature stored with the copy (classification experts);
            default: the expert's own.

    Returns:
        The categories now routed to the expert (for the routing's default expert, e.g. a new
        places expert without classes, every category routed nowhere else).

    Raises:
        ValueError: if a class is unknown to the model's segmenter, the expert has no classes and
            is not the routing's default, or
            ``temperature`` is outside ``(0, 1]`` or given for a regression expert.
    """
    import shutil

    from .experts import Expert
    from .segmentation import RoutingTable

    model_dir, expert_dir = Path(model_dir), Path(expert_dir)
    cfg = read_json(model_dir / "config.json")
    ecfg = read_json(expert_dir / "config.json")
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
    categories = read_json(model_dir / "segmenter" / "config.json").get("categories")
    if not categories:
        raise ValueError(f"{model_dir}/segmenter/config.json lists no categories")
    experts = list(dict.fromkeys([*cfg.get("experts", routing.get("experts", [])), name]))
    routes = {**routing["routes"], **{c: name for c in classes}}
    table = RoutingTable(routes, routing["default"], categories, experts)  # validates names
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(expert_dir / "model.safetensors", target / "model.safetensors")
    write_json(target / "config.json", ecfg)
    cfg["experts"] = experts
    cfg["routing"] = table.to_dict()
    write_json(model_dir / "config.json", cfg)
    write_manifest(model_dir)
    return classes or [c for c in categories if table.expert_for(c) == name]
