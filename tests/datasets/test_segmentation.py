"""Image + label-map pairs: mirrored layout, joint augmentation, several roots with their own splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor.datasets import Augment, SegmentationPairs, find_pairs, segmentation_pairs


def _pair(img_path: Path, lbl_path: Path, w: int = 40, h: int = 30, cls: int = 15) -> None:
    """Left half bright red with class ``cls``, right half dark blue background; a 255 strip at the top."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (230, 40, 40)
    img[:, w // 2 :] = (10, 10, 90)
    lbl = np.zeros((h, w), np.uint8)
    lbl[:, : w // 2] = cls
    lbl[:2] = 255
    img_path.parent.mkdir(parents=True, exist_ok=True)
    lbl_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(img_path, quality=95)
    Image.fromarray(lbl, mode="L").save(lbl_path)


@pytest.fixture
def pair_roots(tmp_path: Path) -> tuple[Path, Path]:
    for i in range(6):
        _pair(tmp_path / "images" / f"s{i % 2}" / f"{i}.jpg", tmp_path / "labels" / f"s{i % 2}" / f"{i}.png")
    (tmp_path / "images" / "nolabel.jpg").write_bytes((tmp_path / "images" / "s0" / "0.jpg").read_bytes())
    return tmp_path / "images", tmp_path / "labels"


def test_find_pairs_mirrors_relative_paths(pair_roots: tuple[Path, Path]) -> None:
    pairs = find_pairs(*pair_roots)
    assert len(pairs) == 6
    for img, lbl in pairs:
        rel_img = Path(img).relative_to(pair_roots[0]).with_suffix("")
        assert rel_img == Path(lbl).relative_to(pair_roots[1]).with_suffix("")
    with pytest.raises(FileNotFoundError, match="labels root"):
        find_pairs(pair_roots[0], pair_roots[1] / "missing")


def test_items_and_joint_augmentation(pair_roots: tuple[Path, Path]) -> None:
    ds = SegmentationPairs(find_pairs(*pair_roots), resolution=24, augment=Augment(scale=(0.3, 1.0)), seed=0)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            L, lbl = ds[i]
            assert L.shape == (1, 24, 24) and lbl.shape == (24, 24) and lbl.dtype == torch.int64
            assert set(lbl.unique().tolist()) <= {0, 15, 255}  # nearest: no mixed values
            # The same crop and flip went to both: bright (red) pixels carry the person class.
            known = lbl != 255
            person = (lbl == 15) & known
            if person.any() and (~person & known).any():
                assert float(L[0][person].mean()) > float(L[0][~person & known].mean()) + 15


def test_label_size_mismatch_is_skipped(tmp_path: Path) -> None:
    _pair(tmp_path / "i" / "a.jpg", tmp_path / "l" / "a.png")
    _pair(tmp_path / "i" / "b.jpg", tmp_path / "l" / "b.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "l" / "b.png")
    ds = SegmentationPairs(find_pairs(tmp_path / "i", tmp_path / "l"), resolution=16)
    ds[1]
    assert ds.skip_counts()["unreadable"] == 1


def _fake_shared(root: Path) -> Path:
    for split, n in (("train", 3), ("val", 1)):
        for i in range(n):
            _pair(root / "faces" / split / f"{i}.jpg", root / "segmentation" / "faces" / split / f"{i}.png")
    cub = root / "birds" / "CUB_200_2011"
    rows, flags = [], []
    for n, i in enumerate((0, 5, 9)):
        rel = f"Sparrow/{i:04d}.jpg"
        seg_lbl = root / "segmentation" / "birds" / "CUB_200_2011" / "images" / f"Sparrow/{i:04d}.png"
        _pair(cub / "images" / rel, seg_lbl, cls=3)
        rows.append(f"{i} {rel}")
        flags.append(f"{i} {1 if n < 2 else 0}")
    (cub / "images.txt").write_text("\n".join(rows) + "\n")
    (cub / "train_test_split.txt").write_text("\n".join(flags) + "\n")
    for i in range(10):
        ex = root / "segmentation" / "extra" / "people"
        _pair(ex / "images" / f"{i}.jpg", ex / "labels" / f"{i}.png")
    return root


def _layout_roots(root: Path, domains: tuple[str, ...], extras: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """The images roots of a shared-style tree and the labels roots mirroring them (as tools/train_defaults.sh)."""
    seg = root / "segmentation"
    images = [root / d for d in domains] + [seg / "extra" / e / "images" for e in extras]
    return images, [seg / d for d in domains] + [seg / "extra" / e / "labels" for e in extras]


def test_segmentation_pairs_by_each_roots_own_split(tmp_path: Path) -> None:
    images, labels = _layout_roots(_fake_shared(tmp_path), ("faces", "birds"), ("people",))
    train = segmentation_pairs(images, labels, "train", rule="layout", val_fraction=0.2)
    val = segmentation_pairs(images, labels, "val", rule="layout", val_fraction=0.2)
    assert len(train) == 3 + 2 + 8 and len(val) == 1 + 1 + 2
    assert not {p for p, _ in train} & {p for p, _ in val}
    assert any("0009.jpg" in p for p, _ in val)  # CUB flag 0 -> held out
    with pytest.raises(FileNotFoundError, match="labels root not found"):
        segmentation_pairs([tmp_path / "faces"], [tmp_path / "faces_labels"])
    with pytest.raises(ValueError, match="one labels root per images root"):
        segmentation_pairs(images, labels[:2])


def test_segmentation_pairs_real_data(shared_data: Path) -> None:
    images, labels = _layout_roots(shared_data, ("faces", "birds", "animals", "places"), ("people", "imagenet"))
    train = segmentation_pairs(images, labels, "train", rule="layout")
    val = segmentation_pairs(images, labels, "val", rule="layout")
    assert len(train) > 5000 and len(val) > 1000
    assert not {p for p, _ in train} & {p for p, _ in val}
    ds = SegmentationPairs(val[:2], resolution=64, augment=Augment(enabled=False))
    L, lbl = ds[0]
    assert L.shape == (1, 64, 64) and int(lbl.max()) < 21


def test_mosaic_keeps_class_ids_aligned(tmp_path: Path) -> None:
    # palette ("P") labels: their indices are the class ids, never their palette colours
    for i, cls in enumerate((15, 3, 8, 12)):
        _pair(tmp_path / "images" / f"{i}.jpg", tmp_path / "labels" / f"{i}.png", w=48, h=48, cls=cls)
        lbl = Image.open(tmp_path / "labels" / f"{i}.png")
        p = lbl.convert("P")
        p.putpalette([v for c in range(256) for v in ((c * 37) % 256, (c * 91) % 256, c)])
        p.save(tmp_path / "labels" / f"{i}.png")
    pairs = find_pairs(tmp_path / "images", tmp_path / "labels")
    ds = SegmentationPairs(pairs, resolution=32, seed=0, mosaic=1.0)
    seen: set[int] = set()
    for i in range(len(ds)):
        L, lbl = ds[i]
        assert L.shape == (1, 32, 32)
        ids = set(lbl.unique().tolist())
        assert ids <= {0, 3, 8, 12, 15, 255}
        seen |= ids
        obj = (lbl != 0) & (lbl != 255)
        if obj.any() and (lbl == 0).any():  # the same crops went to image and label
            assert float(L[0][obj].mean()) > float(L[0][lbl == 0].mean()) + 15
        again = ds[i]
        assert torch.equal(again[1], lbl)  # deterministic per (seed, epoch, index)
    assert len(seen - {0, 255}) >= 3  # tiles come from several items
    with pytest.raises(ValueError, match="mosaic"):
        SegmentationPairs(pairs, mosaic=1.5)


def test_paste_adds_aligned_subjects_from_other_items(tmp_path: Path) -> None:
    for i, cls in enumerate((15, 3, 8, 12)):
        _pair(tmp_path / "images" / f"{i}.jpg", tmp_path / "labels" / f"{i}.png", w=48, h=48, cls=cls)
    pairs = find_pairs(tmp_path / "images", tmp_path / "labels")
    ds = SegmentationPairs(pairs, resolution=32, seed=0, paste=1.0)
    plain = SegmentationPairs(pairs, resolution=32, seed=0)
    mixed_items = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            L, lbl = ds[i]
            ids = set(lbl.unique().tolist())
            assert ids <= {0, 3, 8, 12, 15, 255}
            mixed_items += len(ids - {0, 255}) >= 2
            obj = (lbl != 0) & (lbl != 255)
            if obj.any() and (lbl == 0).any():  # pasted pixels carry their own labels
                assert float(L[0][obj].mean()) > float(L[0][lbl == 0].mean()) + 15
            assert torch.equal(ds[i][1], lbl)  # deterministic per (seed, epoch, index)
    assert mixed_items >= 3  # subjects of other items did land on items
    assert all(len(set(plain[i][1].unique().tolist()) - {0, 255}) == 1 for i in range(len(plain)))
    with pytest.raises(ValueError, match="paste must"):
        SegmentationPairs(pairs, paste=-0.1)
    with pytest.raises(ValueError, match="paste_scale"):
        SegmentationPairs(pairs, paste=0.5, paste_scale=(0.5, 0.2))
