"""The ``expertcolor`` command line, run in-process on tiny random-weight models."""

from __future__ import annotations

import argparse
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from expertcolor import Expert, ExpertColorizer, __version__, create_expert
from expertcolor.cli import collect_inputs, main, output_path, rgb_icc

ORIENTATION = 0x0112


def _pattern(h: int, w: int) -> np.ndarray:
    """Colour image with a bright block at the top left (to check orientation)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, np.full((h, w), 90)], axis=2).astype(np.uint8)
    img[: h // 3, : w // 2] = 250
    return img


@pytest.fixture
def icc_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def input_tree(tmp_path: Path, icc_bytes: bytes) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    rotated = Image.fromarray(_pattern(24, 40))  # stored 40x24, displayed 24x40 (orientation 6)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "expertcolor-test"  # Make: kept
    rotated.save(root / "rotated.jpg", quality=95, exif=exif, icc_profile=icc_bytes)
    Image.fromarray(_pattern(20, 30)[..., 0]).save(root / "gray.png")
    Image.fromarray(_pattern(32, 36)).save(root / "sub" / "photo.jpeg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_colorize_folder(input_tree, tiny_model_dir, tmp_path, capsys, icc_bytes) -> None:
    out = tmp_path / "out"
    argv = ["colorize", str(input_tree), "-o", str(out), "--model", str(tiny_model_dir), "--workers", "2"]
    rc, stdout, stderr = _run([*argv, "--batch-size", "2", "--device", "cpu"], capsys)
    assert rc == 1  # one file failed
    assert "colorized 3, failed 1" in stdout and "skipped 1 non-image file" in stdout
    assert "broken.jpg" in stderr and "Traceback" not in stderr
    assert not (out / "broken.jpg").exists()

    with Image.open(out / "rotated.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        assert im.size == (24, 40)  # upright
        assert im.info.get("icc_profile") == icc_bytes
        exif = im.getexif()
        assert ORIENTATION not in exif and exif.get(0x010F) == "expertcolor-test"
        lum = np.asarray(im.convert("L"), dtype=float)
    with Image.open(input_tree / "rotated.jpg") as src:
        expected = np.asarray(ImageOps.exif_transpose(src).convert("L"), dtype=float)
    assert np.corrcoef(lum.ravel(), expected.ravel())[0, 1] > 0.95  # same picture, same way up
    with Image.open(out / "gray.png") as im:
        assert im.format == "PNG" and im.size == (30, 20)
    with Image.open(out / "sub" / "photo.jpeg") as im:
        assert im.format == "JPEG" and im.size == (36, 32)


def test_colorize_details_and_options(input_tree, tiny_model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["colorize", str(input_tree / "gray.png"), str(input_tree / "sub" / "*.jpeg"), "-o", str(out)]
    argv += ["--model", str(tiny_model_dir), "--details", "--saturation", "0.5", "--merge", "hard",
             "--flip-segmentation", "on"]
    rc, stdout, _ = _run([*argv, "--working-size", "32", "--workers", "0"], capsys)
    assert rc == 0, stdout
    assert "colorized 2, failed 0" in stdout
    # Two input roots (in/ and in/sub/): outputs are kept apart by root name.
    assert (out / "in" / "gray.png").is_file() and (out / "sub" / "photo.jpeg").is_file()
    details = out / "in" / "gray.png.details"
    assert (details / "routing.png").is_file()
    experts = sorted(details.glob("expert-*.png"))
    assert experts
    with Image.open(details / "routing.png") as im:
        assert im.width == 30 and im.height > 20  # map plus legend strip
    with Image.open(experts[0]) as im:
        assert im.size == (30, 20)


def test_saturation_zero_gives_gray(input_tree, tiny_model_dir, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    rc, _, _ = _run(
        ["colorize", str(input_tree / "sub"), "-o", str(out), "--model", str(tiny_model_dir), "--saturation", "0"],
        capsys,
    )
    assert rc == 0
    arr = np.asarray(Image.open(out / "photo.jpeg"), dtype=int)
    assert np.abs(arr.max(axis=2) - arr.min(axis=2)).mean() < 3


def test_never_overwrites_inputs(input_tree, tiny_model_dir, capsys) -> None:
    sub = input_tree / "sub"
    before = (sub / "photo.jpeg").read_bytes()
    rc, _, err = _run(["colorize", str(sub), "-o", str(sub), "--model", str(tiny_model_dir)], capsys)
    assert rc == 1 and "overwrite" in err
    assert (sub / "photo.jpeg").read_bytes() == before


def test_usage_errors(tmp_path, capsys, tiny_model_dir) -> None:
    assert main(["colorize"]) == 2
    assert main(["frobnicate"]) == 2
    capsys.readouterr()
    rc, _, err = _run(["colorize", str(tmp_path / "missing.jpg"), "--model", str(tiny_model_dir)], capsys)
    assert rc == 2 and err.startswith("expertcolor: error:") and "Traceback" not in err
    (tmp_path / "img.png").write_bytes(b"")
    rc, _, err = _run(["colorize", str(tmp_path / "img.png"), "--model", str(tmp_path / "nomodel")], capsys)
    assert rc == 2 and "model directory not found" in err and len(err.strip().splitlines()) == 1
    img = str(tmp_path / "img.png")
    rc, _, err = _run(["colorize", img, "--model", str(tiny_model_dir), "--device", "gpu7"], capsys)
    assert rc == 2 and "--device" in err
    for option, value in (("--saturation", "nan"), ("--saturation", "-1"), ("--workers", "-1")):
        rc, _, err = _run(["colorize", img, "--model", str(tiny_model_dir), option, value], capsys)
        assert rc == 2 and f"argument {option}: expected" in err
    rc, out, _ = _run(["--version"], capsys)
    assert rc == 0 and __version__ in out


def test_only_rgb_icc_profiles_are_kept(icc_bytes) -> None:
    assert rgb_icc(icc_bytes) == icc_bytes
    gray = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert rgb_icc(gray) is None and rgb_icc(None) is None


def test_collect_inputs_and_output_paths(input_tree, tmp_path) -> None:
    found, skipped = collect_inputs([str(input_tree)], exclude=input_tree / "sub")  # results inside the input
    names = sorted(p.name for p, _ in found)
    assert names == ["broken.jpg", "gray.png", "rotated.jpg"]
    assert [p.name for p in skipped] == ["notes.txt"]
    assert len(collect_inputs([str(input_tree)], exclude=input_tree)[0]) == 4  # -o same as input: not skipped
    a, b = tmp_path / "x" / "photos", tmp_path / "y" / "photos"
    roots = [a, b]
    out = tmp_path / "out"
    assert output_path(a / "1.jpg", a, out, roots) != output_path(b / "1.jpg", b, out, roots)
    assert output_path(a / "s" / "1.jpg", a, out, [a]) == out / "s" / "1.jpg"


def test_evaluate_command(tmp_path, tiny_model_dir, capsys) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(_pattern(24, 32 + 4 * i)).save(images / f"{i}.png")
    out = tmp_path / "eval"
    rc, stdout, _ = _run(
        ["evaluate", "--images", str(images), "--model", str(tiny_model_dir), "--compare", "gray", "--out", str(out)],
        capsys,
    )
    assert rc == 0
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    assert "| routed |" in stdout and "| gray |" in stdout
    base = ["evaluate", "--images", str(images), "--model", str(tiny_model_dir)]
    rc, _, err = _run([*base, "--compare", "nope"], capsys)
    assert rc == 2 and "unknown variant" in err
    rc, _, err = _run([*base, "--prior-correction", "2"], capsys)
    assert rc == 2 and "expected a number in [0, 1]" in err
    rc, _, err = _run([*base, "--prior-correction", "0.5"], capsys)  # random experts hold no rebalancing weights
    assert rc == 2 and "no stored rebalancing weights" in err and "Traceback" not in err


def test_add_expert(tmp_path, tiny_model_dir, capsys) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    create_expert(name="pets", classes=("cat", "dog")).save_pretrained(tmp_path / "pets")
    rc, stdout, _ = _run(["add-expert", str(model), str(tmp_path / "pets"), "--classes", "cat"], capsys)
    assert rc == 0 and "pets" in stdout
    colorizer = ExpertColorizer.from_pretrained(model, device="cpu")
    assert "pets" in colorizer.experts
    assert colorizer.routing.expert_for("cat") == "pets" and colorizer.routing.expert_for("dog") != "pets"
    rc, _, err = _run(["add-expert", str(model), str(tmp_path / "nothing")], capsys)
    assert rc == 2 and "not found" in err
    own = ExpertColorizer.from_pretrained(model, device="cpu").experts["pets"].config.temperature
    rc, _, _ = _run(["add-expert", str(model), str(tmp_path / "pets"), "--temperature", "0.5"], capsys)
    assert rc == 0 and own != 0.5
    assert ExpertColorizer.from_pretrained(model, device="cpu").experts["pets"].config.temperature == 0.5
    assert Expert.from_pretrained(tmp_path / "pets").config.temperature == own  # the source is left alone
    rc, _, err = _run(["add-expert", str(model), str(tmp_path / "pets"), "--temperature", "1.5"], capsys)
    assert rc == 2 and "temperature must be in (0, 1]" in err


def test_train_commands_delegate(monkeypatch) -> None:
    seen = {}

    def get_args_parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("--epochs", type=int, default=1)
        p.add_argument("data")
        return p

    def fake_main(args: argparse.Namespace) -> None:
        seen["args"] = args

    module = types.ModuleType("expertcolor.train.expert")
    module.get_args_parser, module.main = get_args_parser, fake_main
    monkeypatch.setitem(sys.modules, "expertcolor.train.expert", module)
    assert main(["train-expert", "--epochs", "3", "some/data"]) == 0
    assert seen["args"].epochs == 3 and seen["args"].data == "some/data"
    assert main(["train-expert", "--bad-flag"]) == 2  # the module's own parser rejects it


def test_assemble_builds_a_loadable_model_dir(tmp_path, capsys):
    from expertcolor import ExpertColorizer, GraySegmenter, create_expert

    GraySegmenter().save_pretrained(tmp_path / "seg")
    dirs = []
    for name, classes in [("faces", ["person"]), ("places", []), ("vehicles", ["car", "bus"])]:
        create_expert(name=name, classes=classes).save_pretrained(tmp_path / name)
        dirs.append(str(tmp_path / name))
    out = tmp_path / "model"
    args = ["assemble", "--segmenter", str(tmp_path / "seg"), "--expert", *dirs, "--out", str(out)]
    assert main([*args, "--merge", "feather", "--fp16", "--temperature", "0.2", "--flip-segmentation"]) == 0
    c = ExpertColorizer.from_pretrained(out)
    assert {e.config.temperature for e in c.experts.values()} == {0.2} and c.flip_segmentation
    assert set(c.experts) == {"faces", "places", "vehicles"} and c.merge.name == "feather"
    assert c.routing.expert_for("bus") == "vehicles" and c.routing.expert_for("person") == "faces"
    assert c.routing.expert_for("dog") == "places"  # no animals expert: the default takes it
    assert "wrote" in capsys.readouterr().out
    assert main(["assemble", "--segmenter", str(tmp_path / "nope"), "--expert", *dirs, "--out", str(out)]) == 2
    for d in dirs:  # experts from train-expert carry their loss's rebalancing weights
        e = Expert.from_pretrained(d)
        e.set_rebalance_weights(np.linspace(0.1, 8.0, e.num_outputs))
        e.save_pretrained(d)
    assert main([*args, "--prior-correction", "0.3"]) == 0
    c = ExpertColorizer.from_pretrained(out)
    assert {e.config.prior_correction for e in c.experts.values()} == {0.3}
