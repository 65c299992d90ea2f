"""Colorize a set of photos and show how the experts shared the work.

For every photo the gallery shows the grayscale input, the routing map (which expert coloured which
pixels, tinted over the input, with a legend), each active expert's own colours for the whole photo,
the merged result and, for colour photos, the original with PSNR and mean CIEDE2000 of the result.
It writes ``index.html`` (images in ``assets/`` beside it) and ``contact_sheet.png``.

Usage::

    python examples/gallery.py                          # photos bundled with scikit-image
    python examples/gallery.py --images my_photos/ --out my_gallery/ --max-images 20
    python examples/gallery.py --model path/to/model_dir --working-size 384
    python examples/gallery.py --videos clip.mp4 old_film.avi   # also videos (needs PyAV)

A video gets a row of its own: the colorized clip (played in the page) and strips of evenly spaced
frames of the input and of the result.
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from expertcolor import ExpertColorizer, WeightsNotFoundError
from expertcolor import metrics as M
from expertcolor.argtypes import positive_int, unit_float
from expertcolor.color import lab_to_rgb
from expertcolor.files import is_grayscale, list_images
from expertcolor.io import decode_inputs, open_image
from expertcolor.visualize import expert_rgb, label_font, percent, resize_L, routing_overlay

#: scikit-image sample photos that ship with the package (no download): people, a cat, scenes.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera")


@dataclass
class Panel:
    """One image of a gallery row."""

    title: str
    image: Image.Image
    caption: str = ""


@dataclass
class Entry:
    """One photo's row: its panels and scores against the original (colour photos only)."""

    name: str
    size: tuple[int, int]
    panels: list[Panel] = field(default_factory=list)
    psnr: float | None = None
    ciede2000: float | None = None
    video: Path | None = None  # the colorized clip, for video rows


# -- inputs -------------------------------------------------------------------------------------------
def sample_photos() -> list[tuple[str, np.ndarray]]:
    """The bundled scikit-image photos as ``(name, (H, W, 3) uint8)``."""
    from skimage import data

    loaders = {
        "astronaut": data.astronaut,
        "chelsea": data.chelsea,
        "coffee": data.coffee,
        "rocket": data.rocket,
        "motorcycle": lambda: data.stereo_motorcycle()[0],
        "camera": data.camera,
    }
    return [(name, _as_rgb(loaders[name]())) for name in SAMPLE_PHOTOS]


def folder_photos(directory: Path) -> list[tuple[str, Path]]:
    """Image files below ``directory`` as ``(relative name, path)``.

    Raises:
        NotADirectoryError: if ``directory`` is not a folder.
    """
    if not directory.is_dir():
        raise NotADirectoryError(f"image folder not found: {directory}")
    return [(p.relative_to(directory).as_posix(), p) for p in list_images(directory)]


def _as_rgb(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3]).astype(np.uint8)


def load_photo(source: np.ndarray | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an array or a file (EXIF orientation applied)."""
    if isinstance(source, np.ndarray):
        return _as_rgb(source)
    return np.asarray(open_image(source).convert("RGB"))


def is_color(rgb: np.ndarray) -> bool:
    """Whether a photo has colour worth comparing against (not :func:`expertcolor.files.is_grayscale`)."""
    return not is_grayscale(Image.fromarray(rgb))


# -- one photo ----------------------------------------------------------------------------------------
def _to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(rgb))


def _gray_image(L: torch.Tensor) -> np.ndarray:
    """Neutral gray rendering ``(H, W, 3)`` uint8 of lightness ``(1, 1, H, W)``."""
    lab = torch.cat([L, torch.zeros(1, 2, *L.shape[-2:], dtype=L.dtype)], dim=1)
    return np.clip(np.rint(lab_to_rgb(lab)[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


# Experts that lead no pixel and hold less than this share of the blend get no panel.
MIN_BLEND_SHARE = 0.02


def render_photo(colorizer: ExpertColorizer, name: str, rgb: np.ndarray, display: int = 512) -> Entry:
    """Colorize one photo and build its panels (at most ``display`` pixels on the long side).

    Scores are computed at full resolution; expert panels are rendered at display resolution.
    """
    result = colorizer.colorize(rgb, return_details=True)
    merged = np.asarray(result.rgb)[..., :3]
    L_disp = resize_L(decode_inputs(rgb)[0].L, display)
    size = (int(L_disp.shape[-1]), int(L_disp.shape[-2]))
    gray = _gray_image(L_disp)
    entry = Entry(name, (rgb.shape[1], rgb.shape[0]))
    entry.panels.append(Panel("input (L)", _to_image(gray), f"{rgb.shape[1]}×{rgb.shape[0]}"))
    entry.panels.append(Panel("routing", routing_overlay(result, gray), "expert with the largest weight"))
    emap, names = result.expert_map(), list(result.weights)
    for expert in result.expert_ab:
        lead, blend = float((emap == names.index(expert)).mean()), float(result.weights[expert].mean())
        if lead == 0 and blend < MIN_BLEND_SHARE:
            continue  # ran for a few hedged pixels only: a panel would be clutter
        img = _to_image(expert_rgb(result, expert, L_disp, upsample=colorizer.upsample))
        entry.panels.append(Panel(f"expert: {expert}", img, f"leads {percent(lead)} of pixels"))
    entry.panels.append(Panel("merged", _to_image(merged).resize(size, Image.LANCZOS)))
    if is_color(rgb):
        entry.psnr = M.psnr(merged, rgb)
        entry.ciede2000 = float(M.ciede2000_map(merged, rgb).mean())
        caption = f"PSNR {entry.psnr:.2f} dB, ΔE00 {entry.ciede2000:.2f}"
        entry.panels.append(Panel("original", _to_image(rgb).resize(size, Image.LANCZOS), caption))
    return entry


def render_video(colorizer: ExpertColorizer, src: Path, assets: Path, frames: int = 6) -> Entry:
    """Colorize the video ``src`` into ``assets/`` and build its row: frame strips of the input and
    of the result (``frames`` evenly spaced frames each)."""
    from expertcolor.video import colorize_video, video_strip

    assets.mkdir(parents=True, exist_ok=True)
    dst = assets / f"video_{_slug(src.stem)}.mp4"
    report = colorize_video(colorizer, src, dst, progress=False, overwrite=True)
    entry = Entry(src.name, (report.width, report.height), video=dst)
    cuts = f", cuts at frames {', '.join(map(str, report.cuts))}" if report.cuts else ""
    timing = f"{report.frames} frames at {float(report.fps):.3g} fps"
    entry.panels.append(Panel("input frames", video_strip(src, n=frames), timing))
    entry.panels.append(Panel("colorized frames", video_strip(dst, n=frames),
                              f"{report.frames_per_second:.1f} frames/s{cuts}"))
    return entry


# -- outputs ------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return keep.strip("._") or "image"


def write_assets(entries: Sequence[Entry], assets: Path) -> list[list[str]]:
    """Save every panel under ``assets`` and return their file names, per entry."""
    assets.mkdir(parents=True, exist_ok=True)
    names: list[list[str]] = []
    for i, entry in enumerate(entries):
        row = []
        for j, panel in enumerate(entry.panels):
            ext = "png" if panel.title == "routing" else "jpg"
            fname = f"{i:03d}_{_slug(entry.name)}_{j}_{_slug(panel.title)}.{ext}"
            panel.image.save(assets / fname, **({"quality": 90} if ext == "jpg" else {}))
            row.append(fname)
        names.append(row)
    return names


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
section { margin-bottom: 2em; }
.row { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; max-width: 300px; }
figure img { max-width: 300px; height: auto; display: block; border: 1px solid #ccc; }
figure.wide, figure.wide img, figure video { max-width: 960px; }
figcaption { font-size: 0.85em; } .title { font-weight: 600; } .caption { color: #555; }
"""


def write_html(entries: Sequence[Entry], out_dir: Path, title: str = "expertcolor gallery") -> Path:
    """Write ``index.html`` and its ``assets/`` into ``out_dir``; every referenced file exists."""
    files = write_assets(entries, out_dir / "assets")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        '<p><a href="contact_sheet.png">Contact sheet (PNG)</a></p>',
    ]
    for entry, row in zip(entries, files):
        score = ""
        if entry.psnr is not None:
            score = f" — PSNR {entry.psnr:.2f} dB, mean CIEDE2000 {entry.ciede2000:.2f}"
        parts.append(f"<section><h2>{html.escape(entry.name)}{html.escape(score)}</h2><div class=\"row\">")
        if entry.video is not None:
            src = "assets/" + quote(entry.video.name)
            parts.append(f'<figure class="wide"><video src="{src}" controls loop muted></video>'
                         '<figcaption><span class="title">colorized video</span></figcaption></figure>')
        wide = ' class="wide"' if entry.video is not None else ""
        for panel, fname in zip(entry.panels, row):
            src = "assets/" + quote(fname)
            parts.append(
                f'<figure{wide}><a href="{src}"><img src="{src}" alt="{html.escape(panel.title)}"></a>'
                f'<figcaption><span class="title">{html.escape(panel.title)}</span><br>'
                f'<span class="caption">{html.escape(panel.caption)}</span></figcaption></figure>'
            )
        parts.append("</div></section>")
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def write_contact_sheet(entries: Sequence[Entry], path: Path, cell: tuple[int, int] = (200, 150)) -> Path:
    """One row per photo, one cell per panel (thumbnail plus its title), as a PNG."""
    cw, ch = cell
    label_h, pad = 30, 6
    cols = max(len(e.panels) for e in entries)
    sheet = Image.new("RGB", (cols * (cw + pad) + pad, len(entries) * (ch + label_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = label_font(11)
    for r, entry in enumerate(entries):
        y = pad + r * (ch + label_h + pad)
        for c, panel in enumerate(entry.panels):
            x = pad + c * (cw + pad)
            thumb = panel.image.copy()
            thumb.thumbnail((cw, ch), Image.LANCZOS)
            sheet.paste(thumb, (x + (cw - thumb.width) // 2, y + (ch - thumb.height) // 2))
            title = f"{entry.name}: {panel.title}" if c == 0 else panel.title
            draw.text((x, y + ch + 2), _fit(draw, title, font, cw), fill=(0, 0, 0), font=font)
            if panel.caption:
                draw.text((x, y + ch + 15), _fit(draw, panel.caption, font, cw), fill=(90, 90, 90), font=font)
    sheet.save(path)
    return path


#: PIL's bundled font lacks a few glyphs the HTML uses.
_SHEET_TEXT = str.maketrans({"×": "x", "Δ": "d", "—": "-", "…": "..."})


def _fit(draw: ImageDraw.ImageDraw, text: str, font: object, width: int) -> str:
    text = text.translate(_SHEET_TEXT)
    while text and draw.textlength(text, font=font) > width:
        text = text[:-4] + "..." if len(text) > 4 else ""
    return text


# -- command line -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Arguments of the gallery script."""
    p = argparse.ArgumentParser(description="Colorize photos and write an HTML gallery and a contact sheet.")
    p.add_argument("--images", type=Path, help="folder of photos (default: photos bundled with scikit-image)")
    p.add_argument("--model", type=Path, help="model directory (default: the embedded default weights)")
    p.add_argument("--out", type=Path, default=Path("gallery"), help="output folder (default: gallery/)")
    p.add_argument("--max-images", type=positive_int, help="only the first N photos")
    p.add_argument("--videos", type=Path, nargs="+", default=[], metavar="FILE",
                   help="video files to colorize too, each shown as a clip and frame strips (needs PyAV)")
    p.add_argument("--working-size", type=positive_int, help="long side at which the networks run")
    p.add_argument("--display-size", type=positive_int, default=512,
                   help="long side of the gallery images (default 512)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--prior-correction", type=unit_float, metavar="A",
                   help="0 vivid as trained ... 1 calibrated, more neutral colours (default: as saved)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Build the gallery; returns the exit status (2 for a missing model or folder)."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {"working_size": args.working_size} if args.working_size else {}
    if args.prior_correction is not None:
        overrides["prior_correction"] = args.prior_correction
    try:
        colorizer = ExpertColorizer.from_pretrained(args.model, device=args.device, **overrides)
        photos: list[tuple[str, np.ndarray | Path]] = (
            list(sample_photos()) if args.images is None else list(folder_photos(args.images))
        )
    except (WeightsNotFoundError, FileNotFoundError, NotADirectoryError, ValueError) as e:
        print(f"gallery: error: {e}", file=sys.stderr)
        return 2
    photos = photos[: args.max_images]
    missing = [str(v) for v in args.videos if not v.is_file()]
    if missing:
        print(f"gallery: error: video not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not photos and not args.videos:
        print(f"gallery: error: no images in {args.images}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    entries = []
    for name, source in tqdm(photos, desc="gallery", unit="img", disable=None):
        try:
            entries.append(render_photo(colorizer, name, load_photo(source), args.display_size))
        except (ValueError, OSError) as e:
            tqdm.write(f"gallery: skipping {name}: {e}", file=sys.stderr)
    for video in tqdm(args.videos, desc="videos", unit="clip", disable=None or not args.videos):
        try:
            entries.append(render_video(colorizer, video, args.out / "assets"))
        except (ValueError, OSError, ImportError) as e:
            tqdm.write(f"gallery: skipping {video}: {e}", file=sys.stderr)
    if not entries:
        print("gallery: error: no photo could be colorized", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = write_contact_sheet(entries, args.out / "contact_sheet.png")
    page = write_html(entries, args.out)
    n_videos = sum(e.video is not None for e in entries)
    what = f"{len(entries) - n_videos} photos" + (f" and {n_videos} videos" if n_videos else "")
    print(f"{what} in {time.perf_counter() - start:.1f} s: {page} and {sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
