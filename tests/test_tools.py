"""The developer tools under tools/ that are not covered with the training scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import TOOLS, load_tool


def _row(t: float, a: float, expert: str, cf: float) -> dict:
    return {"T": t, "prior_correction": a, "expert": expert, "cf_ratio": cf}


def test_pick_prior_correction_takes_the_largest_that_keeps_every_expert_colourful() -> None:
    tool = load_tool("tune_decoding")
    rows = [_row(0.5, 0.0, "faces", 1.0), _row(0.5, 0.0, "birds", 0.9),
            _row(0.5, 0.5, "faces", 0.8), _row(0.5, 0.5, "birds", 0.51),
            _row(0.5, 1.0, "faces", 0.7), _row(0.5, 1.0, "birds", 0.3),  # birds turn grey: not this one
            _row(0.38, 1.0, "faces", 0.9), _row(0.38, 1.0, "birds", 0.9)]  # another temperature: ignored
    assert tool.pick_prior_correction(rows, 0.5) == 0.5
    assert tool.pick_prior_correction(rows, 0.5, min_cf_ratio=0.2) == 1.0
    assert tool.pick_prior_correction(rows, 0.5, min_cf_ratio=0.95) is None
    assert tool.pick_prior_correction(rows, 0.38) == 1.0


def test_tune_decoding_runs_on_the_shared_validation_photos(shared_data: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    # The embedded default model: its experts carry the rebalancing weights that prior correction needs.
    tool = load_tool("tune_decoding")
    model = TOOLS.parent / "expertcolor" / "pretrained" / "default"
    rows = tool.main(["--model", str(model), "--data", str(shared_data), "--n", "2",
                      "--prior-corrections", "0", "1"])
    out = capsys.readouterr().out
    assert "largest prior correction" in out and "Mean over experts" in out
    assert {r["prior_correction"] for r in rows} == {0.0, 1.0}
    assert all(r["images"] == 2 and r["psnr"] > 0 for r in rows)


def test_paired_bootstrap_on_a_report(tmp_path: Path, capsys) -> None:
    tool = load_tool("paired_bootstrap")
    rng = np.random.default_rng(0)
    base = rng.uniform(8, 12, 40)
    per_image = {
        "routed": {f"p{i}": {"ciede2000": v - 0.5, "psnr": 24.0} for i, v in enumerate(base)},
        "gray": {f"p{i}": {"ciede2000": v, "psnr": 23.0} for i, v in enumerate(base)},
        "noisy": {f"p{i}": {"ciede2000": v + s} for i, (v, s) in enumerate(zip(base, rng.normal(0, 2, 40)))},
    }
    (tmp_path / "report.json").write_text(json.dumps({"per_image": per_image}))
    argv = [str(tmp_path / "report.json"), "--a", "routed", "--b", "gray", "--n", "2000"]
    r = tool.main(tool.get_args_parser().parse_args(argv))
    # a constant difference: the interval collapses onto it and A wins on every photo
    assert r["photos"] == 40 and r["a_better"] == 40
    assert abs(r["mean_diff"] + 0.5) < 1e-9 and abs(r["lo"] + 0.5) < 1e-9 and abs(r["hi"] + 0.5) < 1e-9
    assert "routed better on 40 of 40" in capsys.readouterr().out
    r = tool.main(tool.get_args_parser().parse_args([*argv[:4], "noisy", "--n", "2000"]))
    assert r["lo"] < r["mean_diff"] < r["hi"] and r["hi"] - r["lo"] > 0.5  # noise gives a real interval
    assert tool.main(tool.get_args_parser().parse_args([*argv, "--metric", "psnr"]))["a_better"] == 40
    with pytest.raises(KeyError, match=r"not in the report; it has \['gray', 'noisy', 'routed'\]"):
        tool.main(tool.get_args_parser().parse_args([*argv[:4], "generalist"]))


def test_paired_bootstrap_averages_seeds_and_compares_inside_a_group(tmp_path: Path, capsys) -> None:
    tool = load_tool("paired_bootstrap")

    def report(name: str, routed: list[float], person: list[float]) -> str:
        rows = {f"p{i}": {"ciede2000": v, "groups": {"person": {"ciede2000": g}} if g else {}}
                for i, (v, g) in enumerate(zip(routed, person))}
        (tmp_path / name).write_text(json.dumps({"per_image": {"routed": rows, "generalist": rows}}))
        return str(tmp_path / name)

    # seeds 0 and 1 of A average to 10 on every photo; B's two seeds average to 11; only p0, p1 show a person
    a = [report("a0.json", [9, 9, 9], [5, 7, 0]), report("a1.json", [11, 11, 11], [7, 9, 0])]
    b = [report("b0.json", [12, 12, 12], [9, 9, 0]), report("b1.json", [10, 10, 10], [9, 9, 0])]
    argv = [*a, "--a", "routed", "--b", "generalist", "--b-report", *b, "--n", "500"]
    r = tool.main(tool.get_args_parser().parse_args(argv))
    assert r["photos"] == 3 and abs(r["mean_diff"] + 1) < 1e-9 and r["a_better"] == 3
    assert "(runs: 2 vs 2)" in capsys.readouterr().out
    r = tool.main(tool.get_args_parser().parse_args([*argv, "--group", "person"]))
    assert r["photos"] == 2 and abs(r["mean_diff"] - (-3 + -1) / 2) < 1e-9  # photo means 6 vs 9 and 8 vs 9
    assert "ciede2000 in person routed - generalist" in capsys.readouterr().out


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


def test_oracle_routing_colours_each_masked_group_with_its_expert(tmp_path: Path, tiny_model_dir: Path) -> None:
    from PIL import Image

    from expertcolor import ExpertColorizer
    from expertcolor.evaluate import image_metrics, single_expert_colorizer

    tool = load_tool("oracle_routing")
    images, groups = tmp_path / "images", tmp_path / "groups"
    images.mkdir()
    groups.mkdir()
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    for name, value in (("all_person", 1), ("all_bird", 2)):
        Image.fromarray(photo).save(images / f"{name}.png")
        Image.fromarray(np.full((40, 56), value, np.uint8)).save(groups / f"{name}.png")
    Image.fromarray(photo).save(images / "no_mask.png")
    args = ["--model", str(tiny_model_dir), "--images", str(images), "--groups", str(groups),
            "--out", str(tmp_path / "out")]
    report = tool.main(tool.get_args_parser().parse_args(args))
    rows = report["per_image"]["oracle"]
    assert set(rows) == {"all_person.png", "all_bird.png", "no_mask.png"}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["variants"] == ["oracle"]
    # a photo whose mask is all person is coloured by the faces expert alone, all bird by the birds expert
    model = ExpertColorizer.from_pretrained(tiny_model_dir, device="cpu")
    for name, expert in (("all_person.png", "faces"), ("all_bird.png", "birds")):
        alone = np.asarray(single_expert_colorizer(model.experts[expert], model).colorize(photo))[..., :3]
        want = image_metrics(alone, photo, None, 8)["ciede2000"]
        assert abs(rows[name]["ciede2000"] - want) < 1e-3, name
    # without a mask the model's own segmenter routes: the same as the routed model
    routed = np.asarray(model.colorize(photo))[..., :3]
    assert abs(rows["no_mask.png"]["ciede2000"] - image_metrics(routed, photo, None, 8)["ciede2000"]) < 1e-6
    with pytest.raises(NotADirectoryError, match="group mask folder not found"):
        tool.main(tool.get_args_parser().parse_args([*args[:4], "--groups", str(tmp_path / "nope"), *args[6:]]))


def test_in_domain_compares_each_expert_with_the_generalist_on_its_own_photos(
        shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tool = load_tool("in_domain")
    model = TOOLS.parent / "expertcolor" / "pretrained" / "default"
    args = tool.get_args_parser().parse_args(["--model", str(model), "--data", str(shared_data), "--n", "3",
                                              "--experts", "faces", "birds", "--out", str(tmp_path / "r")])
    rows = tool.main(args)
    assert [r["domain"] for r in rows] == ["faces", "birds"]
    for r in rows:
        report = json.loads((tmp_path / "r" / r["domain"] / "report.json").read_text())
        assert set(report["per_image"]) == {f"expert:{r['domain']}", "generalist", "gray"}
        assert len(report["per_image"]["gray"]) == r["images"] == 3
        # The difference is the per-photo mean of the report's own numbers.
        de = {v: np.mean([m["ciede2000"] for m in report["per_image"][v].values()])
              for v in (f"expert:{r['domain']}", "generalist")}
        assert r["diff_ciede2000"]["mean_diff"] == pytest.approx(de[f"expert:{r['domain']}"] - de["generalist"])
    assert "| faces | 3 |" in capsys.readouterr().out
    with pytest.raises(FileExistsError):  # never writes over earlier reports
        tool.main(args)
    args.out, args.experts = tmp_path / "r2", ["nobody"]
    with pytest.raises(ValueError, match="nobody"):
        tool.main(args)


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
