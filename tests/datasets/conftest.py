"""Tiny fake trees in each official dataset layout, with small synthetic colour JPEGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (40, 32), gray: bool = False) -> Path:
    """A colour gradient photo (or its grayscale version) as JPEG/PNG at ``path``; size = (w, h)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    c = rng.uniform(0.2, 1.0, 3)
    img = np.stack([c[0] * x / w, c[1] * (1 - y / h), c[2] * (0.5 + 0.5 * np.sin(x / 4.0))], axis=2)
    arr = (img * 255).astype(np.uint8)
    if gray:
        arr = np.repeat(arr.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95)
    return path


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return path


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    root = tmp_path / "celeba_root"
    rows = []
    for i in range(1, 10):
        name = f"{i:06d}.jpg"
        write_image(root / "img_align_celeba" / name, seed=i, size=(36, 44))
        rows.append(f"{name} {0 if i <= 5 else 1 if i <= 7 else 2}")
    (root / "list_eval_partition.txt").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    """CUB layout with ids numbered from 0 and not contiguous, plus bounding boxes.

    Every image is blue with a red rectangle where its bounding box says the bird is.
    """
    base = tmp_path / "cub" / "CUB_200_2011"
    ids = [0, 3, 4, 10, 11, 25]
    images, split, boxes = [], [], []
    for n, i in enumerate(ids):
        rel = f"{'Albatross' if n % 2 else 'Sparrow'}/{i:04d}.jpg"
        arr = np.zeros((40, 50, 3), np.uint8)
        arr[..., 2] = 200
        arr[10:30, 20:45] = (220, 20, 20)
        (base / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(base / "images" / rel, quality=95)
        images.append(f"{i} {rel}")
        split.append(f"{i} {1 if n < 4 else 0}")
        boxes.append(f"{i} 20.0 10.0 25.0 20.0")
    (base / "images.txt").write_text("\n".join(images) + "\n")
    (base / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (base / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    return base.parent


@pytest.fixture
def animals10_root(tmp_path: Path) -> Path:
    root = tmp_path / "animals10"
    for c, cls in enumerate(("cane", "gatto", "ragno")):
        for i in range(10):
            write_image(root / "raw-img" / cls / f"OIP-{c}{i}.jpeg", seed=100 * c + i)
    return root


@pytest.fixture
def places_standard_root(tmp_path: Path) -> Path:
    root = tmp_path / "places_std"
    std = root / "places365_standard"
    lines = {"train": [], "val": []}
    for split, n in (("train", 4), ("val", 2)):
        for cat in ("airfield", "beach"):
            for i in range(n):
                rel = f"{split}/{cat}/{i:08d}.jpg"
                write_image(std / rel, seed=i + len(cat))
                lines[split].append(f"{rel} {0 if cat == 'airfield' else 1}")
    for split, ls in lines.items():
        (std / f"{split}.txt").write_text("\n".join(ls) + "\n")
    return root


@pytest.fixture
def places_torchvision_root(tmp_path: Path) -> Path:
    root = tmp_path / "places_tv"
    train = []
    for cat in ("airfield", "beach"):
        for i in range(3):
            rel = f"/{cat[0]}/{cat}/{i:08d}.jpg"
            write_image(root / "data_256" / rel.lstrip("/"), seed=i)
            train.append(f"{rel} {0 if cat == 'airfield' else 1}")
    val = []
    for i in range(2):
        write_image(root / "val_256" / f"Places365_val_{i:08d}.jpg", seed=50 + i)
        val.append(f"Places365_val_{i:08d}.jpg {i}")
    lists = root / "filelist_places365-standard"
    lists.mkdir(parents=True)
    (lists / "places365_train_standard.txt").write_text("\n".join(train) + "\n")
    (lists / "places365_val.txt").write_text("\n".join(val) + "\n")
    (lists / "categories_places365.txt").write_text("/a/airfield 0\n/b/beach 1\n")
    return root


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    """20 colour photos in nested folders, one grayscale photo and one corrupt file."""
    root = tmp_path / "flat"
    for i in range(20):
        write_image(root / ("a" if i % 2 else "b/c") / f"img{i:02d}.jpg", seed=i)
    write_image(root / "b" / "gray.jpg", seed=99, gray=True)
    write_corrupt(root / "b" / "broken.jpg")
    return root


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    """Explicit train/ and val/ subfolders with class subfolders (like shared/data/animals)."""
    root = tmp_path / "split"
    for split, n in (("train", 6), ("val", 2)):
        for cls in ("cat", "dog"):
            for i in range(n):
                write_image(root / split / cls / f"{cls}.{i}.jpg", seed=i + (10 if cls == "dog" else 0))
    return root
