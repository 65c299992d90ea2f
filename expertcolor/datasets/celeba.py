"""CelebA in its official layout: ``img_align_celeba/`` + ``list_eval_partition.txt``."""

from __future__ import annotations

import os
from pathlib import Path

from .base import MIN_CHROMA, Augment, LabDataset

__all__ = ["CelebA", "CELEBA_SPLITS"]

#: ``list_eval_partition.txt`` codes.
CELEBA_SPLITS: dict[str, int] = {"train": 0, "val": 1, "valid": 1, "test": 2}


def _find_root(root: Path) -> Path:
    for cand in (root, root / "celeba"):
        if (cand / "list_eval_partition.txt").is_file():
            return cand
    raise FileNotFoundError(
        f"{root} is not a CelebA root: missing list_eval_partition.txt (expected the official layout "
        "<root>/img_align_celeba/*.jpg and <root>/list_eval_partition.txt, or the same under <root>/celeba/)"
    )


def read_partition(path: str | os.PathLike) -> list[tuple[str, int]]:
    """``(file name, split code)`` rows of ``list_eval_partition.txt`` (0 train, 1 val, 2 test)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected '<file> <0|1|2>', got {line.strip()!r}")
            rows.append((parts[0], int(parts[1])))
    return rows


class CelebA(LabDataset):
    """CelebA aligned faces with the official split.

    Args:
        root: folder holding ``img_align_celeba/`` and ``list_eval_partition.txt`` (or ``celeba/``
            with both, as torchvision stores it).
        split: ``"train"``, ``"val"`` or ``"test"``.
        resolution, augment, seed, min_chroma: see :class:`~expertcolor.datasets.base.LabDataset`.

    Raises:
        FileNotFoundError: if the layout's files are missing.
        ValueError: on an unknown split.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
    ) -> None:
        if split not in CELEBA_SPLITS:
            raise ValueError(f"CelebA split must be one of {sorted(CELEBA_SPLITS)}, got {split!r}")
        base = _find_root(Path(root))
        img_dir = base / "img_align_celeba"
        if not img_dir.is_dir():
            raise FileNotFoundError(f"{base} is not a CelebA root: missing folder img_align_celeba/")
        code = CELEBA_SPLITS[split]
        files = [img_dir / name for name, c in read_partition(base / "list_eval_partition.txt") if c == code]
        super().__init__(files, resolution, augment, seed, min_chroma, name=f"CelebA {split} ({base})")
