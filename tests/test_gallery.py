"""examples/gallery.py on three small photos with a tiny random-weight model."""

from __future__ import annotations

import importlib.util
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "gallery.py"


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("expertcolor_gallery_example", GALLERY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [v for k, v in attrs if k in ("src", "href") and v]


def _photos(folder: Path) -> None:
    folder.mkdir()
    y, x = np.mgrid[0:48, 0:64]
    colour = np.stack([x * 4, y * 5, 255 - x * 3], axis=2).astype(np.uint8)
    Image.fromarray(colour).save(folder / "colour.jpg", quality=95)
    Image.fromarray(colour[..., 1]).save(folder / "gray photo.png")  # a space in the name
    Image.fromarray(np.ascontiguousarray(colour[:40, :30])).save(folder / "small.png")


def test_gallery_writes_html_and_contact_sheet(gallery, tiny_model_dir, tmp_path, capsys) -> None:
    photos, out = tmp_path / "photos", tmp_path / "gallery"
    _photos(photos)
    rc = gallery.main(["--images", str(photos), "--model", str(tiny_model_dir), "--out", str(out)])
    assert rc == 0
    page = out / "index.html"
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    assert len(parser.links) > 10
    for link in parser.links:
        assert (out / unquote(link)).is_file(), link
    html = page.read_text(encoding="utf-8")
    assert "routing" in html and "expert: " in html and "merged" in html
    assert html.count("PSNR") == 4  # colour.jpg and small.png: heading and caption; not the gray one
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.height > 3 * 150


def test_gallery_entry_panels(gallery, tiny_colorizer) -> None:
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[..., 0] = 200
    entry = gallery.render_photo(tiny_colorizer, "red", rgb, display=20)
    titles = [p.title for p in entry.panels]
    assert titles[:2] == ["input (L)", "routing"] and titles[-2:] == ["merged", "original"]
    assert any(t.startswith("expert: ") for t in titles)
    assert entry.psnr is not None and entry.ciede2000 is not None
    assert all(max(p.image.size) <= 20 for p in entry.panels if p.title != "routing")


def test_gallery_missing_model_is_a_clean_error(gallery, tmp_path, capsys) -> None:
    assert gallery.main(["--model", str(tmp_path / "none"), "--out", str(tmp_path / "g")]) == 2
    assert "gallery: error" in capsys.readouterr().err


def test_the_visualisations_need_no_evaluation_code() -> None:
    """``colorize --details`` and the gallery draw with expertcolor.visualize, which must stay light."""
    import subprocess

    code = "import sys, expertcolor.visualize; print(sorted(m for m in sys.modules if 'evaluat' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gallery_shows_a_video(gallery, tiny_model_dir, tmp_path) -> None:
    """--videos adds a row with the colorized clip (playable in the page) and two frame strips."""
    av = pytest.importorskip("av")
    clip, out = tmp_path / "old film.mp4", tmp_path / "gallery"
    rng = np.random.default_rng(0)
    with av.open(str(clip), "w") as f:
        stream = f.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(10):
            frame = np.repeat((rng.random((48, 64, 1)) * 60 + t * 15).astype(np.uint8), 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                f.mux(packet)
        for packet in stream.encode():
            f.mux(packet)
    args = ["--images", str(tmp_path / "none"), "--videos", str(clip), "--model", str(tiny_model_dir)]
    assert gallery.main(args + ["--out", str(out)]) == 2  # the photo folder is missing: a clean error
    (tmp_path / "none").mkdir()
    assert gallery.main(args + ["--out", str(out)]) == 0  # videos alone are enough
    parser = _Links()
    parser.feed((out / "index.html").read_text(encoding="utf-8"))
    videos = [link for link in parser.links if link.endswith(".mp4")]
    assert videos, parser.links
    for link in parser.links:
        assert (out / unquote(link)).is_file(), link
    with av.open(str(out / unquote(videos[0]))) as result:
        assert result.streams.video[0].frames == 10
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "input frames" in html and "colorized frames" in html
    assert gallery.main(["--videos", str(tmp_path / "missing.mp4"), "--model", str(tiny_model_dir),
                         "--out", str(out)]) == 2
