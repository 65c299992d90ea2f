"""``train-segmenter``: a few steps on tiny pairs and on a shared-style tree."""

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


def test_train_segmenter_errors(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(ValueError, match="--data DIR or both --images and --labels"):
        _run(["--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="segmentation/"):
        _run(["--data", str(tmp_path), "--out", str(tmp_path / "o")])


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
