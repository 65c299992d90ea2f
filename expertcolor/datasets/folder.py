"""Any folder of images: explicit ``train/`` + ``val/`` subfolders, or a flat tree with a seeded split."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .base import MIN_CHROMA, Augment, LabDataset, list_images, seeded_split

__all__ = ["ImageFolder", "split_dir"]

_ALIASES = {"train": ("train", "training"), "val": ("val", "valid", "validation", "test"), "test": ("test", "val")}


def split_dir(root: Path, split: str) -> Path | None:
    """The explicit ``root/<split>`` folder when the tree has ``train/`` and a val/test folder."""
    if not (root / "train").is_dir():
        return None
    for name in _ALIASES.get(split, (split,)):
        if (root / name).is_dir():
            return root / name
    return None


class ImageFolder(LabDataset):
    """Every image below a folder (recursive).

    If ``root`` holds ``train/`` and ``val/`` (or ``test/``) subfolders, the split is the
    subfolder; otherwise all images are split with a seeded ``val_fraction``.

    Args:
        root: the folder.
        split: ``"train"`` or ``"val"`` (``"test"``).
        classes: keep only these first-level subfolders (of the split folder), e.g. ``["cat", "dog"]``.
        val_fraction: held-out fraction for flat folders.
        split_seed: seed of that split.
        resolution, augment, seed, min_chroma: see :class:`~expertcolor.datasets.base.LabDataset`.

    Raises:
        FileNotFoundError: if ``root`` (or a requested class folder) does not exist.
        ValueError: if no image is found.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        classes: Sequence[str] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        explicit = split_dir(root, split)
        base = explicit if explicit is not None else root
        if classes:
            missing = [c for c in classes if not (base / c).is_dir()]
            if missing:
                raise FileNotFoundError(f"{base}: missing class folder(s) {missing}")
            files = [f for c in classes for f in list_images(base / c)]
        else:
            files = list_images(base)
        if explicit is None:
            files = seeded_split(files, split, val_fraction, split_seed)
        if not files:
            raise ValueError(f"no images ({', '.join(e for e in ('.jpg', '.png'))}, ...) found below {base}")
        self.explicit_split = explicit is not None
        super().__init__(files, resolution, augment, seed, min_chroma, name=f"folder {split} ({base})")
