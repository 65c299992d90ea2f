"""Which run did each expert start from, and how many training images stand behind it?

Reads the provenance that ``train-expert`` stores in each expert's ``config.json`` and prints, per
expert, its own images, the run it was fine-tuned from (``--init-from``: that run's ``--out`` as its
command recorded it, its images, and the sha256 of the weights it started from where recorded) and
the lineage total (its images plus every ancestor's; "?" where an ancestor predates that record).
A routed model and its generalist baseline are only comparable when these budgets match::

    python tools/lineage.py expertcolor/pretrained/default expertcolor/pretrained/generalist
    python tools/lineage.py runs/places_u2/expert
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from expertcolor.train.expert import lineage_images


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dirs", nargs="+", type=Path, help="expert directories or model directories (experts/<name>)")
    return p


def expert_dirs(path: Path) -> list[Path]:
    """The expert directories at ``path``: itself, or a model directory's ``experts/*``."""
    if (path / "experts").is_dir():
        return sorted(p for p in (path / "experts").iterdir() if (p / "config.json").is_file())
    if (path / "config.json").is_file():
        return [path]
    raise FileNotFoundError(f"{path}: neither an expert directory nor a model directory (no config.json)")


def out_dir(command: str | None) -> str | None:
    """The ``--out`` of a recorded ``train-expert`` command line."""
    if not command:
        return None
    words = shlex.split(command)
    return next((words[i + 1] for i, w in enumerate(words[:-1]) if w == "--out"), None)


def describe(directory: Path) -> dict[str, Any]:
    prov = json.loads((directory / "config.json").read_text()).get("provenance", {})
    parent = prov.get("init_from") or {}
    return {
        "expert": str(directory),
        "run": out_dir(prov.get("command")),
        "images_seen": prov.get("images_seen"),
        "starts_from": out_dir(parent.get("command")) or parent.get("dir"),
        "start_images_seen": parent.get("images_seen"),
        "start_sha256": parent.get("sha256"),
        "images_seen_total": lineage_images(prov),
    }


def main(args: argparse.Namespace) -> int:
    rows = [describe(d) for path in args.dirs for d in expert_dirs(path)]
    fmt = lambda v: "?" if v is None else str(v)  # noqa: E731
    for r in rows:
        start = "ImageNet encoder / scratch" if r["starts_from"] is None else (
            f"{r['starts_from']} ({fmt(r['start_images_seen'])} images"
            + (f", sha256 {r['start_sha256'][:12]}" if r["start_sha256"] else "") + ")")
        print(f"{r['expert']}: run {fmt(r['run'])}, {fmt(r['images_seen'])} images, starts from {start}, "
              f"lineage total {fmt(r['images_seen_total'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
