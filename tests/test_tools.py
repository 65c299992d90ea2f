"""The developer tools under tools/ that are not covered with the training scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import load_tool


def _expert_config(directory: Path, provenance: dict) -> None:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"type": "expert", "provenance": provenance}))


def test_lineage_names_each_experts_start_and_budget(tmp_path: Path, capsys) -> None:
    tool = load_tool("lineage")
    model = tmp_path / "model"
    _expert_config(model / "experts" / "places", {
        "command": "expertcolor train-expert --name places --out runs/p", "images_seen": 10, "images_seen_total": 15,
        "init_from": {"dir": "pretrained/generalist", "command": "expertcolor train-expert --out 'runs/g c'",
                      "images_seen": 5, "images_seen_total": 5, "sha256": "ab" * 32}})
    _expert_config(model / "experts" / "faces", {"command": "train-expert --out runs/f", "images_seen": 7,
                                                 "init_from": {"dir": "old", "images_seen": 3}})
    _expert_config(tmp_path / "scratch", {"command": "train-expert --out runs/s", "images_seen": 4})
    rows = {Path(r["expert"]).name: r for r in map(tool.describe, [*tool.expert_dirs(model), tmp_path / "scratch"])}
    # the start is the run that made the weights (its --out), not the path they were loaded from
    assert rows["places"]["starts_from"] == "runs/g c" and rows["places"]["images_seen_total"] == 15
    assert rows["faces"]["starts_from"] == "old" and rows["faces"]["images_seen_total"] is None
    assert rows["scratch"]["starts_from"] is None and rows["scratch"]["images_seen_total"] == 4
    assert tool.main(tool.get_args_parser().parse_args([str(model), str(tmp_path / "scratch")])) == 0
    out = capsys.readouterr().out
    assert "starts from runs/g c (5 images, sha256 abababababab), lineage total 15" in out
    assert "lineage total ?" in out and "ImageNet encoder / scratch" in out
    with pytest.raises(FileNotFoundError, match="neither an expert directory"):
        tool.expert_dirs(tmp_path / "missing")


class _FakeTeacher:
    """Duck-typed TFLite interpreter: class 15 (person) in the left half of the 513x513 input, else 0."""

    def __init__(self) -> None:
        self.seen = None

    def get_input_details(self):
        return [{"index": 0}]

    def get_output_details(self):
        return [{"index": 1}]

    def set_tensor(self, index, x):
        self.seen = x

    def invoke(self):
        pass

    def get_tensor(self, index):
        out = np.zeros((1, 513, 513), np.int64)
        out[:, :, :256] = 15
        return out


def test_teacher_labels_resizes_like_the_shared_labels_and_relabels_foreground(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    tool = load_tool("teacher_labels")
    fake = _FakeTeacher()
    ids = tool.label_photo(fake, Image.new("RGB", (40, 30), (200, 10, 10)))
    assert fake.seen.shape == (1, 513, 513, 3) and fake.seen.dtype == np.uint8
    assert ids.shape == (30, 40) and set(np.unique(ids)) == {0, 15} and (ids[:, :19] == 15).all()
    # The command: mirrors the tree, relabels foreground, skips what exists, refuses --out inside --images.
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("RGB", (20, 20), (0, 90, 200)).save(tmp_path / "in" / "sub" / "x.jpg")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setattr(tool, "load_teacher", lambda path, threads: fake)
    args = tool.get_args_parser().parse_args(["--images", str(tmp_path / "in"), "--out", str(tmp_path / "lbl"),
                                              "--foreground", "cat"])
    assert tool.main(args) == {"labelled": 1, "unreadable": 1}
    label = np.asarray(Image.open(tmp_path / "lbl" / "sub" / "x.png"))
    assert set(np.unique(label)) == {0, 8}  # person -> cat: every non-background pixel is the foreground class
    assert tool.main(args) == {"labelled": 0, "unreadable": 1}
    bad = tool.get_args_parser().parse_args(["--images", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "l")])
    with pytest.raises(SystemExit, match="outside --images"):
        tool.main(bad)


def test_teacher_labels_reproduce_the_shared_labels(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    from PIL import Image

    tool = load_tool("teacher_labels")
    interp = tool.load_teacher(shared_data / "teacher" / "deeplabv3_mnv2_pascal_quant.tflite")
    photo = sorted((shared_data / "faces" / "train").glob("*.jpg"))[0]
    ref = np.asarray(Image.open(shared_data / "segmentation" / "faces_teacher_raw" / "train" / f"{photo.stem}.png"))
    assert np.array_equal(tool.label_photo(interp, Image.open(photo).convert("RGB")), ref)
