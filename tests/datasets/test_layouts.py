"""Each official layout: split, shapes and ranges, and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from expertcolor.datasets import (
    CUB200,
    Animals10,
    Augment,
    CelebA,
    ImageFolder,
    Places365,
    build_dataset,
)


def _check_sample(L: torch.Tensor, ab: torch.Tensor, res: int) -> None:
    assert L.shape == (1, res, res) and ab.shape == (2, res, res)
    assert L.dtype == torch.float32 and ab.dtype == torch.float32
    assert float(L.min()) >= 0.0 and float(L.max()) <= 100.0
    assert float(ab.abs().max()) < 130.0


def test_celeba_official_split(celeba_root: Path) -> None:
    sizes = {s: len(CelebA(celeba_root, s, resolution=24)) for s in ("train", "val", "test")}
    assert sizes == {"train": 5, "val": 2, "test": 2}
    _check_sample(*CelebA(celeba_root, "train", resolution=24)[0], 24)


def test_celeba_missing_partition_names_file(tmp_path: Path) -> None:
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt"):
        CelebA(tmp_path)


def test_cub_joins_on_ids_and_crops_boxes(cub_root: Path) -> None:
    train = CUB200(cub_root, "train", resolution=16, augment=Augment(enabled=False), box_margin=0.0)
    test = CUB200(cub_root / "CUB_200_2011", "test", resolution=16)
    assert (len(train), len(test)) == (4, 2) and train.has_boxes
    assert {Path(s.path).name for s in train.samples} == {"0000.jpg", "0003.jpg", "0004.jpg", "0010.jpg"}
    # The box holds the red rectangle: cropped to it the sample is red (b > 0), not mostly blue (b < 0).
    _, ab = train[0]
    assert float(ab[1].mean()) > 30.0
    uncropped = CUB200(cub_root, "train", resolution=16, augment=Augment(enabled=False), crop_boxes=False)
    assert float(uncropped[0][1][1].mean()) < 0.0


def test_cub_missing_split_file(cub_root: Path) -> None:
    (cub_root / "CUB_200_2011" / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match="train_test_split.txt"):
        CUB200(cub_root)


def test_animals10_seeded_split_and_class_filter(animals10_root: Path) -> None:
    train = Animals10(animals10_root, "train", val_fraction=0.2, resolution=16)
    val = Animals10(animals10_root, "val", val_fraction=0.2, resolution=16)
    names_t = {s.path for s in train.samples}
    names_v = {s.path for s in val.samples}
    assert len(names_t) == 24 and len(names_v) == 6 and not names_t & names_v
    again = Animals10(animals10_root, "val", val_fraction=0.2, resolution=16)
    assert [s.path for s in again.samples] == [s.path for s in val.samples]
    other_seed = Animals10(animals10_root, "val", val_fraction=0.2, split_seed=1, resolution=16)
    assert {s.path for s in other_seed.samples} != names_v
    dogs_cats = Animals10(animals10_root, "train", classes=["dog", "gatto"], val_fraction=0.2)
    assert dogs_cats.classes == ("cane", "gatto") and len(dogs_cats) == 16
    with pytest.raises(ValueError, match="unknown Animals-10 class"):
        Animals10(animals10_root, classes=["unicorn"])
    with pytest.raises(FileNotFoundError, match="raw-img"):
        Animals10(animals10_root / "raw-img" / "cane")


def test_places365_standard_layout(places_standard_root: Path) -> None:
    train = Places365(places_standard_root, "train", resolution=16)
    val = Places365(places_standard_root / "places365_standard", "val", resolution=16)
    assert (len(train), len(val)) == (8, 4)
    assert len(Places365(places_standard_root, "train", categories=["beach"])) == 4
    _check_sample(*val[0], 16)


def test_places365_torchvision_layout(places_torchvision_root: Path) -> None:
    train = Places365(places_torchvision_root, "train", resolution=16)
    val = Places365(places_torchvision_root, "val", resolution=16)
    assert (len(train), len(val)) == (6, 2)
    assert len(Places365(places_torchvision_root, "train", categories=["airfield"])) == 3
    # The val list names files without a category: the label index maps through categories_places365.txt.
    val_beach = Places365(places_torchvision_root, "val", categories=["beach"])
    assert [Path(s.path).name for s in val_beach.samples] == ["Places365_val_00000001.jpg"]
    with pytest.raises(ValueError, match=r"\['forest'\] not found"):
        Places365(places_torchvision_root, "train", categories=["forest"])
    (places_torchvision_root / "filelist_places365-standard" / "categories_places365.txt").unlink()
    with pytest.raises(FileNotFoundError, match="categories_places365.txt"):
        Places365(places_torchvision_root, "val", categories=["beach"])
    _check_sample(*train[5], 16)


def test_places365_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="places365_train_standard.txt"):
        Places365(tmp_path)


def test_folder_explicit_split(split_folder: Path) -> None:
    train = ImageFolder(split_folder, "train", resolution=16)
    val = ImageFolder(split_folder, "val", resolution=16)
    assert train.explicit_split and (len(train), len(val)) == (12, 4)
    assert len(ImageFolder(split_folder, "train", classes=["cat"])) == 6
    with pytest.raises(FileNotFoundError, match="horse"):
        ImageFolder(split_folder, classes=["horse"])


def test_folder_flat_seeded_split(flat_folder: Path) -> None:
    train = ImageFolder(flat_folder, "train", val_fraction=0.25)
    val = ImageFolder(flat_folder, "val", val_fraction=0.25)
    assert not train.explicit_split
    assert len(train) + len(val) == 22 and not {s.path for s in train.samples} & {s.path for s in val.samples}


def test_folder_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        ImageFolder(tmp_path / "nope")


@pytest.mark.parametrize("kind", ["celeba", "cub", "animals10", "places365", "folder"])
def test_build_dataset_every_kind(kind: str, request: pytest.FixtureRequest) -> None:
    fixture = {"celeba": "celeba_root", "cub": "cub_root", "animals10": "animals10_root",
               "places365": "places_standard_root", "folder": "split_folder"}[kind]
    root = request.getfixturevalue(fixture)
    for split in ("train", "val"):
        ds = build_dataset(kind, root, split, resolution=20)
        _check_sample(*ds[len(ds) - 1], 20)


def test_build_dataset_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("imagenet", tmp_path)


def test_dataset_registry(tmp_path: Path) -> None:
    from expertcolor.datasets import DATASET_BUILDERS, DATASETS, list_datasets

    assert sorted(DATASETS) == list_datasets() == DATASET_BUILDERS.names()
    with pytest.raises(KeyError, match=r"unknown dataset 'imagenet'; choose from \['animals10', 'celeba'"):
        build_dataset("imagenet", tmp_path)
    for kind in ("celeba", "cub"):
        with pytest.raises(ValueError, match=f"dataset '{kind}' has no class filter"):
            build_dataset(kind, tmp_path, classes=["x"])
