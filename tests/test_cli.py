"""The ``expertcolor`` command line, run in-process on tiny random-weight models."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import stat
import struct
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from expertcolor import Expert, ExpertColorizer, __version__, create_expert
from expertcolor.batch import collect_inputs, output_path
from expertcolor.cli import main
from expertcolor.files import rgb_icc

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


# -- robustness (issue 20) ------------------------------------------------------------------------------
def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (what fuzzing finds) with no real data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_photos_over_the_pixel_limit_are_reported_and_the_run_goes_on(input_tree, tiny_model_dir, tmp_path, capsys,
                                                                     monkeypatch) -> None:
    """Defect 2: Pillow's DecompressionBombError (neither OSError nor ValueError) ended the whole run."""
    from expertcolor.io import get_max_pixels

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow's hard error above 1000 pixels
    (input_tree / "broken.jpg").unlink()
    (input_tree / "fuzzed.png").write_bytes(_png_claiming(100_000, 100_000))
    model = ["--model", str(tiny_model_dir), "--workers", "2"]
    rc, stdout, err = _run(["colorize", str(input_tree), "-o", str(tmp_path / "a"), *model], capsys)
    assert rc == 1 and "Traceback" not in err
    assert "colorized 2, failed 2" in stdout  # gray 600 px and rotated 960 px are done
    photo = next(line for line in err.splitlines() if "photo.jpeg" in line)
    assert photo.startswith("expertcolor: skipping") and "1152 pixels" in photo and "limit of 1000" in photo
    assert "--max-pixels" in photo
    assert "fuzzed.png" in err and "10000000000 pixels" in err
    assert (tmp_path / "a" / "gray.png").is_file() and (tmp_path / "a" / "rotated.jpg").is_file()
    # --max-pixels N: a limit of exactly N pixels, read from the header.
    rc, stdout, err = _run(["colorize", str(input_tree), "-o", str(tmp_path / "b"), *model, "--max-pixels", "700"],
                           capsys)
    assert rc == 1 and "colorized 1, failed 3" in stdout
    assert "40x24 = 960 pixels exceeds the limit of 700 pixels" in err  # rotated.jpg, as stored
    # --max-pixels 0: no limit at all (Pillow's included).
    (input_tree / "fuzzed.png").unlink()
    rc, stdout, err = _run(["colorize", str(input_tree), "-o", str(tmp_path / "c"), *model, "--max-pixels", "0"],
                           capsys)
    assert rc == 0 and "colorized 3, failed 0" in stdout, err
    assert Image.MAX_IMAGE_PIXELS == 500 and get_max_pixels() is None  # the process-wide settings are restored
    rc, _, err = _run(["colorize", str(input_tree), *model, "--max-pixels", "-1"], capsys)
    assert rc == 2 and "argument --max-pixels: expected" in err


def test_any_per_file_failure_is_reported_and_skipped(input_tree, tiny_model_dir, tmp_path, capsys,
                                                     monkeypatch) -> None:
    import expertcolor.batch as batch

    real_load = batch.load_image

    def load(path: Path):
        if path.name == "gray.png":
            raise IndexError("tile index out of range")  # one of the many kinds fuzzed files raise
        return real_load(path)

    monkeypatch.setattr(batch, "load_image", load)
    out = tmp_path / "out"
    rc, stdout, err = _run(["colorize", str(input_tree), "-o", str(out), "--model", str(tiny_model_dir)], capsys)
    assert rc == 1 and "colorized 2, failed 2" in stdout and "Traceback" not in err
    assert "gray.png: IndexError: tile index out of range" in err
    assert (out / "rotated.jpg").is_file() and (out / "sub" / "photo.jpeg").is_file()


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_existing_files_are_never_overwritten_without_overwrite(input_tree, tiny_model_dir, tmp_path,
                                                                capsys) -> None:
    """Defect 3: with -o inside the input tree, photos already there were left out and then overwritten."""
    (input_tree / "broken.jpg").unlink()
    out = input_tree / "colorized"
    out.mkdir()
    Image.fromarray(_pattern(8, 8)).save(out / "gray.png")  # an original that lives in the output folder
    before = (out / "gray.png").read_bytes()
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"outside the output folder")
    (out / "rotated.jpg").symlink_to(victim)  # a link already in the output folder
    argv = ["colorize", str(input_tree), "-o", str(out), "--model", str(tiny_model_dir)]
    rc, stdout, err = _run(argv, capsys)
    assert rc == 1 and "colorized 1, failed 2 (2 because the output already existed" in stdout, err
    assert f"{out / 'gray.png'} already exists; --overwrite replaces it" in err
    assert (out / "gray.png").read_bytes() == before
    assert victim.read_bytes() == b"outside the output folder" and (out / "rotated.jpg").is_symlink()
    written = out / "sub" / "photo.jpeg"
    assert written.is_file() and not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask

    rc, stdout, err = _run([*argv, "--overwrite"], capsys)
    assert rc == 0 and "colorized 3, failed 0" in stdout, err
    with Image.open(out / "gray.png") as im:
        assert im.size == (30, 20)  # the colorized photo now
    assert not (out / "rotated.jpg").is_symlink() and victim.read_bytes() == b"outside the output folder"
    # --details folders count as outputs too.
    rc, stdout, err = _run([*argv, "--details", "--overwrite"], capsys)
    assert rc == 0 and (out / "gray.png.details" / "routing.png").is_file()
    (out / "gray.png").unlink()
    rc, stdout, err = _run([*argv, "--details"], capsys)
    assert rc == 1 and "gray.png.details already exists" in err and not (out / "gray.png").exists()


def test_an_existing_file_named_like_a_glob_is_taken_literally(tmp_path, tiny_model_dir, capsys) -> None:
    literal = tmp_path / "scan [1].png"
    Image.fromarray(_pattern(16, 20)).save(literal)
    Image.fromarray(_pattern(16, 20)).save(tmp_path / "scan 1.png")  # what "[1]" matches as a pattern
    assert [p.name for p, _ in collect_inputs([str(literal)])[0]] == ["scan [1].png"]
    assert [p.name for p, _ in collect_inputs([str(tmp_path / "scan [12].png")])[0]] == ["scan 1.png"]  # no such file
    out = tmp_path / "out"
    rc, stdout, _ = _run(["colorize", str(literal), "-o", str(out), "--model", str(tiny_model_dir)], capsys)
    assert rc == 0 and (out / "scan [1].png").is_file() and not (out / "scan 1.png").exists()


def test_animated_gifs_and_16_bit_files_are_named_in_warnings(tmp_path, tiny_model_dir, capsys, caplog) -> None:
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.fromarray(_pattern(16, 20) // k).convert("P") for k in (1, 2, 3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(_pattern(16, 20)[..., 0].astype(np.uint16) * 257).save(src / "deep.tif")
    Image.fromarray(_pattern(16, 20)).save(src / "plain.png")
    with caplog.at_level(logging.WARNING, logger="expertcolor.files"):
        rc, stdout, _ = _run(["colorize", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model_dir)],
                             capsys)
    assert rc == 0 and "colorized 3" in stdout
    messages = [r.getMessage() for r in caplog.records if r.name == "expertcolor.files"]
    assert any("anim.gif" in m and "only the first frame is colorized" in m for m in messages), messages
    assert any("deep.tif" in m and "16-bit input is written as 8-bit" in m for m in messages), messages
    assert not any("plain.png" in m for m in messages)


def test_threads_option_and_one_thread_for_small_photos(input_tree, tiny_model_dir, tmp_path, capsys,
                                                        monkeypatch) -> None:
    """Defect 7: two threads on a busy machine made small photos 100x slower than one."""
    import torch

    import expertcolor.batch as batch
    import expertcolor.cli as cli

    (input_tree / "broken.jpg").unlink()
    monkeypatch.setattr(batch, "SMALL_PIXELS", 1000)  # gray.png (600 px), rotated.jpg (960) small; photo.jpeg not
    used: dict[int, int] = {}
    real = ExpertColorizer.colorize

    def colorize(self, images, **kw):
        for img in images if isinstance(images, list) else [images]:
            used[img.width * img.height] = torch.get_num_threads()
        return real(self, images, **kw)

    monkeypatch.setattr(ExpertColorizer, "colorize", colorize)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        argv = ["colorize", str(input_tree), "--model", str(tiny_model_dir), "--batch-size", "1"]
        rc, _, _ = _run([*argv, "-o", str(tmp_path / "a")], capsys)
        assert rc == 0 and used == {600: 1, 960: 1, 1152: 4}
        assert torch.get_num_threads() == 4  # restored
        used.clear()
        rc, _, _ = _run([*argv, "-o", str(tmp_path / "b"), "--threads", "3"], capsys)
        assert rc == 0 and used == {600: 3, 960: 3, 1152: 3} and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(threads)
    rc, _, err = _run([*argv, "--threads", "0"], capsys)
    assert rc == 2 and "argument --threads: expected a positive integer" in err
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["colorize"].format_help()
    assert "--threads" in help_text and "--max-pixels" in help_text and "--overwrite" in help_text


def test_study_commands_run_their_modules(tmp_path, capsys) -> None:
    from expertcolor.cli import STUDY_COMMANDS

    for command in STUDY_COMMANDS:
        assert main([command, "--help"]) == 0
        assert f"expertcolor {command}" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "missing.json"), "--a", "x", "--b", "y"]) == 2
