"""The decode-once training cache: same crops and colours as decoding every time, skips recorded
once, label maps carried, entries reused and rebuilt when a photo changes, no partial entry left."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor.color import rgb_to_lab
from expertcolor.datasets import Augment, ImageFolder, LabelMapError, set_epoch
from expertcolor.datasets.cache import LabCache, build_lab_cache, cache_datasets, decode_lab_u8, encode_lab_u8

from .conftest import write_image
from .test_pixel_weights import _scene, _table, assert_weights_follow_the_red_part


def test_lab_u8_round_trip_against_reference_values() -> None:
    # sRGB white, black, pure red (skimage: L 53.24, a 80.09, b 67.20), and a saturated blue
    rgb = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]])[:, None, :]
    lab = rgb_to_lab(rgb)
    arr = encode_lab_u8(lab)
    assert arr.dtype == np.uint8 and arr.shape == (1, 4, 3)
    assert arr[0, 0].tolist() == [255, 128, 128] and arr[0, 1].tolist() == [0, 128, 128]
    assert arr[0, 2].tolist() == [round(53.24 * 2.55), 128 + 80, 128 + 67]
    L, ab = decode_lab_u8(arr)
    assert L.shape == (1, 1, 4) and ab.shape == (2, 1, 4)
    assert (L - lab[:1]).abs().max() <= 0.5 / 2.55 + 1e-4  # half a quantisation step
    assert (ab - lab[1:]).abs()[:, :, :3].max() <= 0.5 + 1e-4
    out_of_range = torch.tensor([[[120.0]], [[150.0]], [[-150.0]]])
    L, ab = decode_lab_u8(encode_lab_u8(out_of_range))
    assert L.item() == 100.0 and ab.flatten().tolist() == [127.0, -128.0]  # clipped, never wrapped


def _folder(root: Path, n: int = 8, size: tuple[int, int] = (120, 90), smooth: bool = False) -> Path:
    for i in range(n):
        if smooth:  # gradients only: a crop one cached pixel off changes little
            w, h = size
            y, x = np.mgrid[0:h, 0:w] / max(w, h)
            c = np.random.default_rng(i).uniform(0.3, 1.0, 3)
            arr = np.stack([c[0] * x, c[1] * (1 - y), c[2] * (0.5 + 0.5 * x * y)], axis=2)
            root.mkdir(parents=True, exist_ok=True)
            Image.fromarray((arr * 255).astype(np.uint8)).save(root / f"{i:02d}.jpg", quality=95)
        else:
            write_image(root / f"{i:02d}.jpg", seed=i, size=size)
    return root


def test_cached_validation_items_match_decoded_items(tmp_path: Path) -> None:
    root = _folder(tmp_path / "photos", size=(240, 180), smooth=True)
    kw = dict(val_fraction=0.0, resolution=32, augment=Augment(enabled=False))
    plain, cached = ImageFolder(root, "train", **kw), ImageFolder(root, "train", **kw)
    cached.use_cache(build_lab_cache(cached, tmp_path / "cache"))
    for i in range(len(plain)):
        (L0, ab0), (L1, ab1) = plain[i], cached[i]
        assert L1.shape == L0.shape == (1, 32, 32) and ab1.shape == ab0.shape == (2, 32, 32)
        assert L1.dtype == ab1.dtype == torch.float32
        # the same centre square, resampled once more and quantised
        assert (L1 - L0).abs().mean() < 0.5 and (ab1 - ab0).abs().mean() < 0.5


def test_cached_training_items_are_seeded_crops(tmp_path: Path) -> None:
    root = _folder(tmp_path / "photos", n=4)
    kw = dict(val_fraction=0.0, resolution=32, augment=Augment(), seed=5)
    a, b = ImageFolder(root, "train", **kw), ImageFolder(root, "train", **kw)
    cache = build_lab_cache(a, tmp_path / "cache")
    a.use_cache(cache), b.use_cache(cache)
    assert all(torch.equal(a[i][1], b[i][1]) for i in range(len(a)))  # by (seed, epoch, index): resumable
    set_epoch(b, 1)
    assert not any(torch.equal(a[i][1], b[i][1]) for i in range(len(a)))  # a new crop every epoch


def test_skips_are_recorded_once_and_counted(tmp_path: Path, flat_folder: Path) -> None:
    ds = ImageFolder(flat_folder, "train", val_fraction=0.0, resolution=16)
    cache = build_lab_cache(ds, tmp_path / "cache")
    assert (cache.status != 0).sum() == 2
    fresh = ImageFolder(flat_folder, "train", val_fraction=0.0, resolution=16).use_cache(cache)
    assert fresh.skip_counts() == {"unreadable": 1, "grayscale": 1}  # known before any item is drawn
    assert all(fresh[i][0].shape == (1, 16, 16) for i in range(len(fresh)))


def test_entries_are_reused_and_rebuilt_when_a_photo_changes(tmp_path: Path) -> None:
    root = _folder(tmp_path / "photos", n=3)
    ds = ImageFolder(root, "train", val_fraction=0.0, resolution=16)
    a = build_lab_cache(ds, tmp_path / "cache")
    assert build_lab_cache(ds, tmp_path / "cache").path == a.path
    # another decoding size (validation: no random crops) is another entry
    val = ImageFolder(root, "train", val_fraction=0.0, resolution=16, augment=Augment(enabled=False))
    v = build_lab_cache(val, tmp_path / "cache")
    assert v.path != a.path
    write_image(root / "01.jpg", seed=42, size=(120, 90))
    st = os.stat(root / "01.jpg")
    os.utime(root / "01.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    b = build_lab_cache(ds, tmp_path / "cache")
    assert b.path != a.path
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {a.path.name, b.path.name, v.path.name}  # no temp


def test_stored_size_is_the_decoding_size(tmp_path: Path) -> None:
    root = _folder(tmp_path / "photos", n=2, size=(400, 300))
    ds = ImageFolder(root, "train", val_fraction=0.0, resolution=32)  # crops down to 35% of the area
    cache = build_lab_cache(ds, tmp_path / "cache")
    side = ds._draft_side()
    assert side == 55
    assert cache[0].shape == (side, round(400 * side / 300), 3)
    small = _folder(tmp_path / "small", n=1, size=(40, 30))  # never enlarged
    ds2 = ImageFolder(small, "train", val_fraction=0.0, resolution=32)
    assert build_lab_cache(ds2, tmp_path / "cache")[0].shape == (30, 40, 3)


def test_label_maps_follow_the_cached_crops(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=6)
    kw = dict(val_fraction=0.0, resolution=32, augment=Augment(), seed=3)
    ds = ImageFolder(images, "train", **kw).with_pixel_weights(_table(), images_root=images, labels_root=labels)
    cache = build_lab_cache(ds, tmp_path / "cache")
    assert cache.channels == 4
    ds.use_cache(cache)
    assert_weights_follow_the_red_part(ds, 32)
    # a cache without labels does not fit a dataset with labels
    bare = build_lab_cache(ImageFolder(images, "train", **kw), tmp_path / "cache")
    with pytest.raises(ValueError, match="without label maps"):
        ds.use_cache(bare)


def test_a_label_map_that_does_not_fit_fails_the_build(tmp_path: Path) -> None:
    images, labels = _scene(tmp_path, n=2)
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(labels / "sub" / "0.png")
    ds = ImageFolder(images, "train", val_fraction=0.0, resolution=16)
    ds.with_pixel_weights(_table(), images_root=images, labels_root=labels)
    with pytest.raises(LabelMapError, match="is \\(10, 10\\)"):
        build_lab_cache(ds, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())  # no partial entry left behind


def test_cache_survives_pickling_for_workers(tmp_path: Path) -> None:
    import pickle

    root = _folder(tmp_path / "photos", n=2)
    ds = ImageFolder(root, "train", val_fraction=0.0, resolution=16)
    cache_datasets(ds, tmp_path / "cache")
    first = ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert isinstance(clone._cache, LabCache) and torch.equal(clone[0][0], first[0])


def test_mismatched_cache_is_refused(tmp_path: Path) -> None:
    a = ImageFolder(_folder(tmp_path / "a", n=3), "train", val_fraction=0.0, resolution=16)
    b = ImageFolder(_folder(tmp_path / "b", n=2), "train", val_fraction=0.0, resolution=16)
    with pytest.raises(ValueError, match="has 3 photos, the dataset 2"):
        b.use_cache(build_lab_cache(a, tmp_path / "cache"))


def test_a_capped_run_caches_only_what_it_can_draw(tmp_path: Path) -> None:
    from torch.utils.data import ConcatDataset, Subset

    a = ImageFolder(_folder(tmp_path / "a", n=4), "train", val_fraction=0.0, resolution=16)
    b = ImageFolder(_folder(tmp_path / "b", n=4), "train", val_fraction=0.0, resolution=16)
    capped = Subset(ConcatDataset([a, b]), [1, 5, 6])
    before = [capped[i] for i in range(3)]
    cache_datasets(capped, tmp_path / "cache")
    assert a._cache.status.tolist() == [255, 0, 255, 255] and b._cache.status.tolist() == [255, 0, 0, 255]
    assert all(x[0].shape == y[0].shape for x, y in zip(before, (capped[i] for i in range(3))))
    assert a[0][0].shape == (1, 16, 16)  # a photo left on file is still decoded when drawn
    cache_datasets(ConcatDataset([a, b]), tmp_path / "cache", items=[0])
    assert a._cache.status.tolist() == [0, 255, 255, 255] and b._cache is not None  # b keeps its entry
