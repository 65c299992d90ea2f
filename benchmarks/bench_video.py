"""Time video colorization at 480p: frames/s per-frame vs stabilised, and the milliseconds of each part.

Usage::

    python benchmarks/bench_video.py [--model DIR] [--frames 48] [--threads 2] [--size 854x480]

Builds a black-and-white 480p clip (a pan over a large photo of ../shared/data when there is one, a
synthetic texture otherwise), writes it as H.264, then runs :func:`expertcolor.video.colorize_video`
on it (decode, colorize, encode, audio-free) once without and once with temporal stabilisation,
after one warm-up frame. Reports end-to-end frames/s and the mean milliseconds per frame of each
part: decode, segment, experts (routing, merge and the experts; for per-frame also the
segmentation), motion (estimate, cut detection, trust), carry (blending the maps), finish (guided
upsampling to full resolution, Lab to sRGB) and encode.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_test_clips import load_photo, parse_size, render, transform  # noqa: E402

PHOTO = ROOT.parent / "shared" / "data" / "mixed" / "images" / "kite_and_cold.jpg"


def clip_frames(n: int, size: tuple[int, int]) -> tuple[list[np.ndarray], str]:
    """``n`` gray frames ``(H, W, 3)`` of a 2 px/frame pan, and where they come from."""
    w, h = size
    if PHOTO.is_file():
        photo, what = load_photo(PHOTO), PHOTO.name
    else:
        rng = np.random.default_rng(0)
        coarse = torch.from_numpy(rng.random((1, 3, 12, 18), dtype=np.float32))
        photo = torch.nn.functional.interpolate(coarse, size=(2 * h, 3 * w), mode="bicubic")[0].clamp(0, 1)
        what = "synthetic texture"
    ph, pw = photo.shape[-2:]
    s = min(pw / (w + 2 * n + 8), ph / (h + 8))
    frames = []
    for t in range(n):
        M = transform(pw / 2 + (t - n / 2) * 2 * s, ph / 2, s, 0.0, size)
        gray = render(photo, M, size).astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        frames.append(np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return frames, what


def write(path: Path, frames: list[np.ndarray], fps: int = 24) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for p in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model directory (default: embedded weights)")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--size", type=parse_size, default=(854, 480), help="WxH")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from expertcolor import ExpertColorizer
    from expertcolor.video import FrameColorizer, colorize_video

    torch.set_num_threads(args.threads)
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    frames, what = clip_frames(args.frames, args.size)
    FrameColorizer(colorizer)(frames[0])  # warm-up
    print(f"{args.frames} frames {args.size[0]}x{args.size[1]} ({what}), torch threads {args.threads}, "
          f"working size {colorizer.working_size}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        write(src, frames)
        for stabilize in (False, True):
            t = time.perf_counter()
            report = colorize_video(colorizer, src, Path(tmp) / f"out_{stabilize}.mp4", stabilize=stabilize,
                                    progress=False)
            seconds = time.perf_counter() - t
            parts = " ".join(f"{k} {v:.1f}" for k, v in report.timings.items() if v > 0)
            label = "stabilised" if stabilize else "per-frame"
            per_frame = 1000 * seconds / report.frames
            print(f"{label:>10s}: {report.frames / seconds:.2f} frames/s ({per_frame:.0f} ms/frame)"
                  f" | ms/frame: {parts} | cuts {report.cuts}")


if __name__ == "__main__":
    main()
