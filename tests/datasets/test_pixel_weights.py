"""Per-pixel loss weights from label maps (routing-aware expert training): the weight channel must
follow the image through crop, draft decoding and flip, and bad label maps must fail loudly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor.datasets import Augment, ImageFolder, LabelMapError

PERSON = 15


def _scene(root: Path, n: int = 6, size: tuple[int, int] = (400, 300)) -> tuple[Path, Path]:
    """Photos whose left part (a random width) is saturated red and labelled person, the rest
    neutral gray labelled background; labels mirror the images under ``labels/``."""
    images, labels = root / "images", root / "labels"
    (images / "sub").mkdir(parents=True)
    (labels / "sub").mkdir(parents=True)
    w, h = size
    rng = np.random.default_rng(0)
    for i in range(n):
        cut = int(rng.integers(w // 4, 3 * w // 4))
        img = np.full((h, w, 3), 128, np.uint8)
        img[:, :cut] = (220, 30, 30)
        lbl = np.zeros((h, w), np.uint8)
        lbl[:, :cut] = PERSON
        Image.fromarray(img).save(images / "sub" / f"{i}.jpg", quality=95)
        Image.fromarray(lbl, mode="L").save(labels / "sub" / f"{i}.png")
    return images, labels


def assert_weights_follow_the_red_part(ds, resolution: int, epochs: int = 3) -> None:
    """Every item of a :func:`_scene` dataset over ``epochs``: weight 1 exactly on the red part, 0 on the
    gray part (away from the boundary column), and some items flipped (the red part on the right)."""
    flipped_seen = False
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            L, target = ds[i]
            assert L.shape == (1, resolution, resolution) and target.shape == (3, resolution, resolution)
            chroma = target[:2].norm(dim=0)
            w = target[2]
            assert set(torch.unique(w).tolist()) <= {0.0, 1.0}
            # away from the one boundary column, weight 1 <=> red (chroma ~ 70), weight 0 <=> gray
            inner = (w[:, 1:-1] == w[:, :-2]) & (w[:, 1:-1] == w[:, 2:])
            c, ww = chroma[:, 1:-1][inner], w[:, 1:-1][inner]
            if (ww == 1).any():
                assert c[ww == 1].min() > 40
            if (ww == 0).any():
                assert c[ww == 0].max() < 10
            flipped_seen |= bool(w[:, -1].mean() > w[:, 0].mean())  # the red part is on the right
    assert flipped_seen


def _table(owned: int = PERSON, off: float = 0.0) -> np.ndarray:
    t = np.full(256, off, np.float32)
    t[owned] = 1.0
    t[255] = 0.0
    return t


def test_weights_follow_crop_draft_and_flip(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path)
    # resolution 32 from 400x300 JPEGs: decoded in draft mode (smaller than the label), random crops, flips
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=32, augment=Augment(), seed=3)
    ds.with_pixel_weights(_table(), images_root=images, labels_root=labels)
    assert_weights_follow_the_red_part(ds, 32)


def test_off_route_weight_and_ignore(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=2)
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=16, augment=Augment(enabled=False))
    ds.with_pixel_weights(_table(off=0.25), images_root=images, labels_root=labels)
    w = ds[0][1][2]
    assert set(torch.unique(w).tolist()) == {0.25, 1.0}


def test_no_labels_root_gives_weight_one(tmp_path: Path) -> None:
    images, _ = _scene(tmp_path, n=2)
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=16).with_pixel_weights()
    assert torch.equal(ds[1][1][2], torch.ones(16, 16))


def test_plain_dataset_is_unchanged(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=2)
    plain = ImageFolder(images, "train", val_fraction=0.0, resolution=16, seed=1)
    weighted = ImageFolder(images, "train", val_fraction=0.0, resolution=16, seed=1)
    weighted.with_pixel_weights(_table(), images_root=images, labels_root=labels)
    (L0, ab0), (L1, t1) = plain[0], weighted[0]
    assert ab0.shape == (2, 16, 16)
    assert torch.equal(L0, L1) and torch.equal(ab0, t1[:2])  # same crop and flip draw


def test_missing_label_maps_are_named(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=3)
    (labels / "sub" / "1.png").unlink()
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=16)
    with pytest.raises(FileNotFoundError, match=r"1 of 3 images .* no label map .*1\.png"):
        ds.with_pixel_weights(_table(), images_root=images, labels_root=labels)
    with pytest.raises(FileNotFoundError, match="label folder not found"):
        ds.with_pixel_weights(_table(), images_root=images, labels_root=tmp_path / "nope")
    with pytest.raises(ValueError, match="256 values"):
        ds.with_pixel_weights(np.ones(21), images_root=images, labels_root=labels)
    with pytest.raises(ValueError, match="not below"):
        ds.with_pixel_weights(_table(), images_root=labels, labels_root=labels)


def test_label_of_the_wrong_size_fails_instead_of_being_skipped(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=2)
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(labels / "sub" / "0.png")
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=16)
    ds.with_pixel_weights(_table(), images_root=images, labels_root=labels)
    with pytest.raises(LabelMapError, match=r"0\.png is \(10, 10\), image .* is \(400, 300\)"):
        ds[0]
    assert ds.skip_counts() == {"unreadable": 0, "grayscale": 0}
