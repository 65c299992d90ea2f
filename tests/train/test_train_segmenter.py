"""``train-segmenter``: a few steps on tiny pairs, several roots with their own splits, whole-photo evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from expertcolor import GraySegmenter
from expertcolor.modeling import sha256_file
from expertcolor.train import segmenter as train_segmenter
from expertcolor.train.segmenter import class_weights, image_weights


def _run(argv: list[str]) -> dict:
    return train_segmenter.main(train_segmenter.get_args_parser().parse_args(argv))


def test_train_segmenter_on_generic_pairs(tiny_pairs: tuple[Path, Path], tmp_path: Path) -> None:
    images, labels = tiny_pairs
    out = tmp_path / "seg"
    result = _run(["--images", str(images), "--labels", str(labels), "--out", str(out), "--resolution", "32",
                   "--batch-size", "4", "--epochs", "1", "--workers", "0", "--no-progress", "--threads", "1",
                   "--val-fraction", "0.25", "--balanced-sampling", "--scene-oversample", "person=2"])
    assert not result["stopped"] and result["global_step"] == 2
    seg = GraySegmenter.from_pretrained(out / "segmenter")
    metrics = seg.config.provenance["val_metrics"]
    assert seg.config.provenance["scene_oversample"] == {"person": 2.0}
    assert {"val_miou_voc", "val_miou_groups", "val_iou_person", "val_iou_bird", "val_iou_animal"} <= set(metrics)
    assert 0.0 <= metrics["val_pixel_acc"] <= 1.0
    rec = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["epoch"] == 1
    with torch.no_grad():
        p = seg(torch.full((1, 1, 40, 40), 50.0))
    assert p.shape == (1, 21, 40, 40)


def test_class_and_image_weights(tiny_pairs: tuple[Path, Path]) -> None:
    labels = sorted(str(p) for p in tiny_pairs[1].glob("*.png"))
    w = class_weights(labels, 21)
    assert w.shape == (21,) and float(w[0]) < float(w[15])  # background is the most frequent class
    iw = image_weights(labels)
    assert iw.shape == (12,) and torch.all(iw > 0)


def test_scene_oversample_weights(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from expertcolor.train.segmenter import group_fractions

    def label(name: str, person_rows: int, ignore_rows: int = 0) -> str:
        lb = np.zeros((10, 10), np.uint8)
        lb[:person_rows] = 15  # person
        if ignore_rows:
            lb[-ignore_rows:] = 255
        path = tmp_path / f"{name}.png"
        Image.fromarray(lb, mode="L").save(path)
        return str(path)

    labels = [label("crop", 10), label("scene", 2), label("scene_ignore", 2, ignore_rows=6), label("empty", 0)]
    frac = group_fractions(labels)
    np.testing.assert_allclose(frac[:, 1], [1.0, 0.2, 0.5, 0.0])  # ignored pixels are not counted
    np.testing.assert_allclose(frac.sum(1), 1.0)
    w = image_weights(labels, balanced=False, scene_oversample={"person": 3.0})
    assert w.tolist() == [1.0, 3.0, 3.0, 1.0]  # a face-filling crop and an empty frame are not scenes
    assert image_weights(labels, balanced=False).tolist() == [1.0] * 4
    both = image_weights(labels, scene_oversample={"person": 3.0}) / image_weights(labels)
    np.testing.assert_allclose(both, [1.0, 3.0, 3.0, 1.0])
    assert image_weights(labels, balanced=False, scene_oversample={"bird": 5.0}).tolist() == [1.0] * 4


def test_scene_oversample_option_is_checked(capsys) -> None:
    import pytest

    parser = train_segmenter.get_args_parser()
    assert parser.parse_args(["--out", "o", "--scene-oversample", "person=3", "animal=1.5"]).scene_oversample == [
        ("person", 3.0), ("animal", 1.5)]
    for bad, why in (("dog=3", "GROUP one of person, bird, animal"), ("person", "GROUP=K"),
                     ("person=x", "K must be a number"), ("person=0", "positive"), ("person=inf", "positive")):
        with pytest.raises(SystemExit):
            parser.parse_args(["--out", "o", "--scene-oversample", bad])
        assert why in capsys.readouterr().err


def test_train_segmenter_errors(tiny_pairs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    import pytest

    images, labels = tiny_pairs
    with pytest.raises(ValueError, match="needs --images and --labels"):
        _run(["--out", str(tmp_path)])
    with pytest.raises(ValueError, match="2 images roots but 1 labels roots"):
        _run(["--images", str(images), str(images), "--labels", str(labels), "--out", str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError, match="labels root not found"):
        _run(["--images", str(images), "--labels", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="--mixed-images and --mixed-labels go together"):
        _run(["--images", str(images), "--labels", str(labels), "--mixed-images", str(images),
              "--out", str(tmp_path / "o")])
    # The developer's data layout left the library: its options are usage errors that say what replaces them.
    parser = train_segmenter.get_args_parser()
    for option in ("--data", "--domains", "--extras"):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(["--out", "o", option, str(tmp_path)])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"{option}: was removed" in err and "--images A B --labels LA LB" in err
    assert not any(k in vars(parser.parse_args(["--out", "o"])) for k in ("data", "domains", "extras"))


def _layout_tree(tiny_pairs: tuple[Path, Path], root: Path) -> tuple[Path, Path]:
    """tiny_pairs' 12 pairs as images/labels roots with train/ (0-7) and val/ (8-11) subfolders."""
    import shutil

    images, labels = tiny_pairs
    for i in range(12):
        split = "train" if i < 8 else "val"
        for src, dst, ext in ((images, root / "images", "jpg"), (labels, root / "labels", "png")):
            (dst / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(src / f"{i}.{ext}", dst / split / f"{i}.{ext}")
    return root / "images", root / "labels"


def test_several_roots_with_their_own_splits(tiny_pairs: tuple[Path, Path], tmp_path: Path) -> None:
    from expertcolor.train.segmenter import build_pairs

    images, labels = tiny_pairs
    split_images, split_labels = _layout_tree(tiny_pairs, tmp_path / "layout")
    parser = train_segmenter.get_args_parser()
    roots = ["--images", str(split_images), str(images), "--labels", str(split_labels), str(labels)]
    args = parser.parse_args([*roots, "--val-split", "layout", "--val-fraction", "0.25", "--out", "o"])
    train, val = build_pairs(args)
    # the first root by its train/ and val/ folders, the flat second one by a seeded quarter, in root order
    assert [Path(p).parent.name for p, _ in train[:8]] == ["train"] * 8
    assert [Path(p).parent.name for p, _ in val[:4]] == ["val"] * 4
    assert len(train) == 8 + 9 and len(val) == 4 + 3
    assert all(Path(p).parent == images for p, _ in train[8:] + val[4:])
    assert not {p for p, _ in train} & {p for p, _ in val}
    # the default 'seeded' rule ignores the folders: a seeded quarter of every root
    seeded_train, seeded_val = build_pairs(parser.parse_args([*roots, "--val-fraction", "0.25", "--out", "o"]))
    assert len(seeded_train) == 9 + 9 and len(seeded_val) == 3 + 3
    assert {Path(p).parent.name for p, _ in seeded_val[:3]} <= {"train", "val"}
    # explicit held-out roots: every --images pair trains
    explicit = parser.parse_args([*roots, "--val-images", str(split_images / "val"), "--val-labels",
                                  str(split_labels / "val"), "--out", "o"])
    train_all, val_roots = build_pairs(explicit)
    assert len(train_all) == 24 and len(val_roots) == 4


def test_whole_photo_evaluation_and_the_package_entry(tiny_pairs: tuple[Path, Path], tmp_path: Path) -> None:
    from expertcolor.train import load_training_command

    images, labels = tiny_pairs
    out = tmp_path / "seg"
    module = load_training_command("train-segmenter")
    assert module is train_segmenter
    argv = ["--images", str(images), "--labels", str(labels), "--mixed-images", str(images), "--mixed-labels",
            str(labels), "--mixed-size", "24", "--out", str(out), "--resolution", "32", "--batch-size", "4",
            "--epochs", "1", "--workers", "0", "--no-progress", "--threads", "1", "--class-weights", "none"]
    result = module.main(module.get_args_parser().parse_args(argv))
    metrics = GraySegmenter.from_pretrained(out / "segmenter").config.provenance["val_metrics"]
    assert {"mixed_miou_voc", "mixed_miou_groups", "mixed_iou_other", "mixed_iou_person"} <= set(metrics)
    assert result["history"][-1]["mixed_pixel_acc"] == metrics["mixed_pixel_acc"]
    provenance = GraySegmenter.from_pretrained(out / "segmenter").config.provenance
    assert provenance["data"] == {"images": [str(images)], "labels": [str(labels)]}
    assert provenance["args"]["mixed_images"] == str(images)
    # --no-mixed skips it
    plain = module.main(module.get_args_parser().parse_args([*argv, "--no-mixed", "--out", str(tmp_path / "plain")]))
    assert not any(k.startswith("mixed_") for k in plain["history"][-1])


def test_init_from_fine_tunes_a_trained_segmenter(tiny_pairs: tuple[Path, Path], tmp_path: Path) -> None:
    import pytest

    from expertcolor.segmentation import VOC_CATEGORIES, SegmenterConfig

    torch.manual_seed(1)
    kwargs = {"decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32, "upsampling": 1}
    start = GraySegmenter(SegmenterConfig(categories=VOC_CATEGORIES, model_kwargs=kwargs))
    start.save_pretrained(tmp_path / "start")
    images, labels = tiny_pairs
    out = tmp_path / "tuned"
    # lr 0: the parameters must come back exactly as loaded (BN running statistics still move).
    _run(["--images", str(images), "--labels", str(labels), "--out", str(out), "--resolution", "32",
          "--batch-size", "4", "--epochs", "1", "--workers", "0", "--no-progress", "--threads", "1",
          "--init-from", str(tmp_path / "start"), "--lr", "0", "--weight-decay", "0"])
    tuned = GraySegmenter.from_pretrained(out / "segmenter")
    assert tuned.config.model_kwargs == kwargs  # taken from the start directory, not the LIGHT_FPN default
    assert tuned.config.provenance["init_from"]["dir"] == str(tmp_path / "start")
    assert tuned.config.provenance["init_from"]["sha256"] == sha256_file(tmp_path / "start" / "model.safetensors")
    before = dict(start.named_parameters())
    for name, p in tuned.named_parameters():
        assert torch.equal(p, before[name]), name
    with pytest.raises(FileNotFoundError, match="not a segmenter directory"):
        _run(["--images", str(images), "--labels", str(labels), "--out", str(tmp_path / "x"),
              "--init-from", str(tmp_path / "missing")])
