"""Colorizing many files as Python API (the command line's behaviour is in test_cli.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expertcolor.batch import OutputExistsError, collect_inputs, colorize_files, plan_outputs
from expertcolor.files import load_image, save_image


def _photos(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    y, x = np.mgrid[0:20, 0:28]
    rgb = np.stack([x * 9, y * 12, np.full_like(x, 80)], axis=2).astype(np.uint8)
    Image.fromarray(rgb).save(root / "a.png")
    Image.fromarray(rgb[..., 1]).save(root / "sub" / "b.jpg", quality=95)
    (root / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_plan_outputs_refuses_existing_outputs_and_inputs(tmp_path) -> None:
    src = _photos(tmp_path / "in")
    files, _ = collect_inputs([str(src)])
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.jpg").write_bytes(b"earlier result")
    jobs, refused = plan_outputs(files, out)
    assert [j.target for j in jobs] == [out / "a.png", out / "broken.png"]
    assert [(p.name, type(e)) for p, e in refused] == [("b.jpg", OutputExistsError)]
    assert refused[0][1].path == out / "sub" / "b.jpg"
    assert len(plan_outputs(files, out, overwrite=True)[0]) == 3
    jobs, refused = plan_outputs(files, src)  # -o the input folder: every output is an input
    assert not jobs and all("overwrite the input" in str(e) for _, e in refused)


def test_colorize_files_summarises_and_logs_failures_by_default(tiny_colorizer, tmp_path, caplog) -> None:
    src = _photos(tmp_path / "in")
    files, skipped = collect_inputs([str(src)])
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="expertcolor.batch"):
        summary = colorize_files(tiny_colorizer, files, out, workers=1)
    assert summary.colorized == 2 and [p.name for p, _ in summary.failed] == ["broken.png"] and summary.kept == 0
    assert any("skipping" in r.getMessage() and "broken.png" in r.getMessage() for r in caplog.records)
    with Image.open(out / "sub" / "b.jpg") as im:
        assert im.format == "JPEG" and im.size == (28, 20) and im.mode == "RGB"
    seen: list[str] = []
    again = colorize_files(tiny_colorizer, files, out, on_failure=lambda p, e: seen.append(p.name))
    assert again.colorized == 0 and again.kept == 2 and sorted(seen) == ["a.png", "b.jpg", "broken.png"]


def test_load_and_save_keep_metadata(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 3  # upside down
    exif[0x010F] = "camera"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif)
    loaded = load_image(tmp_path / "in.jpg")
    assert loaded.format == "JPEG" and loaded.icc is None
    save_image(loaded.image, tmp_path / "out.webp", loaded)
    with Image.open(tmp_path / "out.webp") as im:
        kept = im.getexif()
        assert im.format == "WEBP" and kept.get(0x010F) == "camera" and 0x0112 not in kept


def test_shards_cover_every_input_exactly_once(tmp_path):
    from expertcolor.batch import plan_outputs

    files = [(tmp_path / f"in/{i}.png", tmp_path / "in") for i in range(11)]
    (tmp_path / "out").mkdir()
    (tmp_path / "out/3.png").write_bytes(b"x")  # an existing output is refused by its owner only
    whole, refused = plan_outputs(files, tmp_path / "out")
    parts = [plan_outputs(files, tmp_path / "out", shard=(r, 3)) for r in range(3)]
    jobs = [j.source for p in parts for j in p[0]]
    assert sorted(jobs) == sorted(j.source for j in whole) and len(jobs) == len(set(jobs)) == 10
    assert [p for part in parts for p, _ in part[1]] == [p for p, _ in refused] == [files[3][0]]
    with pytest.raises(ValueError, match="rank"):
        plan_outputs(files, tmp_path / "out", shard=(3, 3))


def test_torchrun_two_cpu_ranks_colorize_a_folder_once(tmp_path, tiny_model_dir, rgb_image):
    import subprocess
    import sys

    from PIL import Image

    for i in range(5):
        Image.fromarray(np.roll(rgb_image, i, axis=1)).save(tmp_path / f"{i}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "expertcolor", "colorize", str(tmp_path), "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [f"{i}.png" for i in range(5)]
    assert "colorized 5, failed 0" in done.stdout and "over 2 ranks" in done.stdout
    assert done.stdout.count("colorized") == 1  # one summary, from rank 0
