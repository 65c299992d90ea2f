"""Tiny training data: a folder of small colour photos and image/label pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _photo(seed: int, w: int = 48, h: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    c = rng.uniform(0.2, 1.0, 3)
    img = np.stack([c[0] * x / w, c[1] * (1 - y / h), c[2] * (0.5 + 0.5 * np.sin(x / 5.0))], axis=2)
    return (img * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 colour photos in train/ and 4 in val/, plus one grayscale training photo."""
    root = tmp_path_factory.mktemp("tiny_folder")
    for split, n in (("train", 16), ("val", 4)):
        (root / split).mkdir()
        for i in range(n):
            Image.fromarray(_photo(i + (100 if split == "val" else 0))).save(root / split / f"{i:02d}.jpg", quality=95)
    gray = _photo(7).mean(axis=2).astype(np.uint8)
    Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(root / "train" / "gray.jpg")
    return root


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 image/label pairs (person, bird, dog rectangles on background)."""
    root = tmp_path_factory.mktemp("tiny_pairs")
    for i in range(12):
        img = _photo(i, 40, 40)
        lbl = np.zeros((40, 40), np.uint8)
        cls = (15, 3, 12)[i % 3]
        lbl[8:30, 10:28] = cls
        img[8:30, 10:28] = (255, 255, 255) if cls == 15 else (20, 20, 20) if cls == 3 else (128, 128, 128)
        (root / "images").mkdir(exist_ok=True)
        (root / "labels").mkdir(exist_ok=True)
        Image.fromarray(img).save(root / "images" / f"{i}.jpg", quality=95)
        Image.fromarray(lbl, mode="L").save(root / "labels" / f"{i}.png")
    return root / "images", root / "labels"
