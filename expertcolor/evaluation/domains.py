"""Each expert's own validation photos in the shared data folder, the same selection for every tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..datasets import CUB200
from .loop import list_photos

__all__ = ["VAL_DIRS", "validation_photos", "link_validation_photos"]

#: Validation folder of each domain below the data folder. Birds have no val folder: their
#: official CUB-200-2011 test split (``birds/``) is used.
VAL_DIRS = {"faces": "faces/val", "animals": "animals/val", "places": "places/val"}


def validation_photos(data: Path, expert: str, n: int) -> list[Path]:
    """``n`` photos spread evenly over the expert's validation (birds: test) split, sorted by path.

    Raises:
        ValueError: for a domain without a validation split.
        NotADirectoryError, FileNotFoundError: when the split is missing under ``data``.
    """
    data = Path(data)
    if expert == "birds":
        files = sorted(Path(s.path) for s in CUB200(data / "birds", split="test").samples)
    elif expert in VAL_DIRS:
        files = list_photos(data / VAL_DIRS[expert])
    else:
        raise ValueError(f"no validation photos for {expert!r}; domains: {['birds', *VAL_DIRS]}")
    if not files:
        raise ValueError(f"no validation photos of {expert!r} in {data}")
    idx = np.unique(np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int))
    return [files[i] for i in idx]


def link_validation_photos(data: Path, expert: str, n: int, dest: Path) -> Path:
    """A new folder ``dest`` of numbered links to :func:`validation_photos`, which ``evaluate`` can read.

    Numbered links keep the selection's order and give every photo the same name in every run, so
    reports of different models pair photo by photo.
    """
    dest.mkdir(parents=True)
    for i, f in enumerate(validation_photos(data, expert, n)):
        (dest / f"{i:04d}{f.suffix.lower()}").symlink_to(f.resolve())
    return dest
