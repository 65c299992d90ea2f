"""Places365-Standard in either official layout.

* ``places365_standard/`` (the "easy format"): ``train.txt`` / ``val.txt`` list paths relative to
  that folder (``train/<category>/<file>.jpg``), one per line, optionally followed by a label.
* torchvision's layout: ``data_256/`` (or ``data_large/``) with the file list
  ``places365_train_standard.txt`` (``/a/airfield/00000001.jpg 0``) and ``val_256/`` (or
  ``val_large/``) with ``places365_val.txt``; the lists may sit in the root or in
  ``filelist_places365-standard/``.

The validation lists name files without their category (``Places365_val_00000001.jpg 165``); a
category filter then reads the label index through ``categories_places365.txt``
(``/a/airfield 0``), which ships beside the lists.

Nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .base import MIN_CHROMA, Augment, LabDataset

__all__ = ["Places365"]

_SPLIT_FILES = {
    "train": ("places365_train_standard.txt", ("data_256", "data_large")),
    "val": ("places365_val.txt", ("val_256", "val_large")),
}


def _read_list(path: Path) -> list[tuple[str, int | None]]:
    """``(path, label index or None)`` per non-empty line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if parts:
                label = int(parts[1]) if len(parts) > 1 and parts[1].lstrip("-").isdigit() else None
                out.append((parts[0], label))
    return out


def _read_categories(root: Path) -> list[str] | None:
    """Category names by label index from ``categories_places365.txt``, if present."""
    for d in (root, root / "filelist_places365-standard", root / "places365_standard"):
        f = d / "categories_places365.txt"
        if f.is_file():
            names: dict[int, str] = {}
            for rel, label in _read_list(f):
                if label is not None:
                    names[label] = _category(rel + "/x.jpg")
            return [names.get(i, "") for i in range(max(names) + 1)] if names else None
    return None


def _category(rel: str) -> str:
    parts = rel.strip("/").split("/")
    # train/<cat>/x.jpg, /a/<cat>/x.jpg, /a/<cat>/<sub>/x.jpg
    if parts and len(parts[0]) == 1 or parts and parts[0] in ("train", "val"):
        parts = parts[1:]
    return "/".join(parts[:-1])


def _resolve(root: Path, split: str) -> list[tuple[str, Path, int | None]]:
    """``(listed relative path, file, label index)`` of every listed image of the split."""
    std = root / "places365_standard" if (root / "places365_standard").is_dir() else root
    if (std / f"{split}.txt").is_file():
        out = []
        for r, label in _read_list(std / f"{split}.txt"):
            r = r.lstrip("/")
            p = std / r
            if not r.startswith(f"{split}/") and not p.exists():
                p = std / split / r
            out.append((r, p, label))
        return out
    list_name, dirs = _SPLIT_FILES[split]
    for list_dir in (root, root / "filelist_places365-standard"):
        if (list_dir / list_name).is_file():
            data_dir = next((root / d for d in dirs if (root / d).is_dir()), None)
            if data_dir is None:
                raise FileNotFoundError(f"{root}: found {list_name} but no image folder {' or '.join(dirs)}/")
            return [(r, data_dir / r.lstrip("/"), label) for r, label in _read_list(list_dir / list_name)]
    raise FileNotFoundError(
        f"{root} is not a Places365 root: missing places365_standard/{split}.txt (easy-format layout) and "
        f"{list_name} with {dirs[0]}/ (torchvision layout, list in the root or filelist_places365-standard/)"
    )


class Places365(LabDataset):
    """Places365-Standard scenes with the official train/val lists.

    Args:
        root: the dataset root (see the module docstring for the two layouts).
        split: ``"train"`` or ``"val"`` (``"test"`` is an alias of ``"val"``: the test labels are
            not public).
        categories: keep only these scene categories (e.g. ``["forest/broadleaf", "beach"]``). Lists
            that name files without their category folder need ``categories_places365.txt``.
        resolution, augment, seed, min_chroma: see :class:`~expertcolor.datasets.base.LabDataset`.

    Raises:
        FileNotFoundError: if neither layout is found, or a category filter needs
            ``categories_places365.txt`` and it is missing.
        ValueError: if ``categories`` names no known category.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        categories: Sequence[str] | None = None,
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"Places365 split must be 'train' or 'val', got {split!r}")
        split = "val" if split == "test" else split
        pairs = _resolve(Path(root), split)
        if categories is not None:
            pairs = _filter_categories(Path(root), pairs, categories)
        files = [p for _, p, _ in pairs]
        super().__init__(files, resolution, augment, seed, min_chroma, name=f"Places365 {split} ({root})")


def _filter_categories(
    root: Path, pairs: list[tuple[str, Path, int | None]], categories: Sequence[str]
) -> list[tuple[str, Path, int | None]]:
    keep = {c.strip("/") for c in categories}
    names = None
    seen: set[str] = set()
    out = []
    for rel, path, label in pairs:
        cat = _category(rel)
        if not cat:  # flat val list: the category comes from the label index
            if names is None:
                names = _read_categories(root)
                if names is None:
                    raise FileNotFoundError(
                        f"{root}: the {rel!r} list entries carry no category folder; a category filter needs "
                        "categories_places365.txt (from filelist_places365-standard.tar) in the root"
                    )
            cat = names[label] if label is not None and 0 <= label < len(names) else ""
        seen.add(cat)
        if cat in keep:
            out.append((rel, path, label))
    known = set(names or ()) | seen
    missing = sorted(keep - known)
    if missing:
        raise ValueError(f"Places365 categories {missing} not found; known e.g. {sorted(c for c in known if c)[:5]}")
    return out
