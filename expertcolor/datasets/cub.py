"""CUB-200-2011 in its official layout (``images.txt``, ``train_test_split.txt``, ``images/``)."""

from __future__ import annotations

import os
from pathlib import Path

from .base import MIN_CHROMA, Augment, LabDataset, Sample

__all__ = ["CUB200"]


def _find_root(root: Path) -> Path:
    for cand in (root, root / "CUB_200_2011"):
        if (cand / "images.txt").is_file():
            return cand
    raise FileNotFoundError(
        f"{root} is not a CUB-200-2011 root: missing images.txt (expected <root>/images.txt, "
        "train_test_split.txt and images/, or the same under <root>/CUB_200_2011/)"
    )


def _read_table(path: Path, ncols: int) -> dict[str, list[str]]:
    """``{id: [columns...]}`` of a space-separated CUB table (ids kept as strings: never assume
    they start at 1 or are contiguous)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != ncols + 1:
                raise ValueError(f"{path}:{n}: expected <id> and {ncols} value(s), got {line.strip()!r}")
            out[parts[0]] = parts[1:]
    return out


class CUB200(LabDataset):
    """Caltech-UCSD Birds-200-2011 with the official train/test split.

    Images and split flags are joined on image id. With ``crop_boxes`` and a
    ``bounding_boxes.txt`` present, each image is first cropped to its bird box widened by
    ``box_margin`` (fraction of the box size on each side).

    Args:
        root: the ``CUB_200_2011`` folder or its parent.
        split: ``"train"`` (flag 1) or ``"test"`` (flag 0; ``"val"`` is an alias).
        crop_boxes: use ``bounding_boxes.txt`` when it exists.
        box_margin: context kept around the box.
        resolution, augment, seed, min_chroma: see :class:`~expertcolor.datasets.base.LabDataset`.

    Raises:
        FileNotFoundError: if a required file of the layout is missing.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
        crop_boxes: bool = True,
        box_margin: float = 0.15,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"CUB split must be 'train' or 'test' ('val' = 'test'), got {split!r}")
        base = _find_root(Path(root))
        for name in ("train_test_split.txt",):
            if not (base / name).is_file():
                raise FileNotFoundError(f"{base} is not a CUB-200-2011 root: missing {name}")
        if not (base / "images").is_dir():
            raise FileNotFoundError(f"{base} is not a CUB-200-2011 root: missing folder images/")
        images = _read_table(base / "images.txt", 1)
        flags = _read_table(base / "train_test_split.txt", 1)
        box_file = base / "bounding_boxes.txt"
        boxes = _read_table(box_file, 4) if crop_boxes and box_file.is_file() else {}
        want = "1" if split == "train" else "0"
        samples = []
        for img_id, (rel,) in images.items():
            flag = flags.get(img_id)
            if flag is None or flag[0] != want:
                continue
            box = None
            if img_id in boxes:
                x, y, w, h = (float(v) for v in boxes[img_id])
                mx, my = w * box_margin, h * box_margin
                box = (max(0.0, x - mx), max(0.0, y - my), x + w + mx, y + h + my)
            samples.append(Sample(str(base / "images" / rel), box))
        self.has_boxes = bool(boxes)
        super().__init__(samples, resolution, augment, seed, min_chroma, name=f"CUB-200-2011 {split} ({base})")
