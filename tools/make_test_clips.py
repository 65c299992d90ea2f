"""Build test clips with known colours and known camera motion from colour photos, for measuring video colorization.

A clip is a few shots, each a virtual camera moving over one colour photo (a pan, a tilt, a zoom in
or out, or a hand-held shake with a little rotation), joined by hard cuts. Every frame is rendered
with 2x2 supersampling from the photo, so its true colours are known, and so is the motion: frame
``t`` pixel ``(x, y)`` shows the photo at ``transforms[t] @ (x, y, 1)``. Feed the frames' grayscale
to a colorizer and compare with the truth (``tools/eval_video.py``).

Usage::

    python tools/make_test_clips.py -o clips/ [--data ../shared/data] [--clips 8] [--size 384x256]

writes ``clip_NN.mkv`` (the grayscale frames, H.264 CRF 12) and ``clip_NN.npz`` (true frames,
transforms, shot of each frame, cut frames) per clip.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

#: Camera moves a shot can have.
MOTIONS = ("pan", "tilt_pan", "zoom_in", "zoom_out", "shake")


@dataclass
class Clip:
    """A test clip with its ground truth.

    Attributes:
        name: a label.
        frames: true colours ``(T, H, W, 3)`` uint8.
        transforms: ``(T, 2, 3)``: frame pixel ``(x, y, 1)`` -> pixel of the shot's photo.
        shots: ``(T,)`` shot index of each frame.
        motions: the camera move of each shot.
        photos: the photo of each shot.
    """

    name: str
    frames: np.ndarray
    transforms: np.ndarray
    shots: np.ndarray
    motions: list[str]
    photos: list[str]

    @property
    def cuts(self) -> list[int]:
        """First frame of every shot after the first."""
        return [t for t in range(1, len(self.shots)) if self.shots[t] != self.shots[t - 1]]


def camera_path(
    motion: str, n: int, photo_size: tuple[int, int], out_size: tuple[int, int], rng: np.random.Generator
) -> list[tuple[float, float, float, float]]:
    """Per frame ``(cx, cy, scale, angle)``: the photo point at the frame's centre, photo pixels per
    frame pixel, and the rotation (radians); the frame stays inside the photo."""
    pw, ph = photo_size
    ow, oh = out_size
    s_max = min(pw / ow, ph / oh) * 0.98
    s0 = s_max * rng.uniform(0.7, 0.85)
    path = []
    if motion in ("pan", "tilt_pan"):
        speed = rng.uniform(1.5, 3.0) * rng.choice([-1, 1])  # frame pixels per frame
        slope = rng.uniform(0.3, 0.7) * rng.choice([-1, 1]) if motion == "tilt_pan" else 0.0
        for t in range(n):
            u = (t - (n - 1) / 2) * speed * s0
            path.append((pw / 2 + u, ph / 2 + slope * u, s0, 0.0))
    elif motion in ("zoom_in", "zoom_out"):
        ratio = rng.uniform(0.7, 0.8)  # the window shrinks to this over the shot (zoom in)
        for t in range(n):
            f = t / max(1, n - 1)
            f = f if motion == "zoom_in" else 1 - f
            path.append((pw / 2, ph / 2, s0 * (1 - f * (1 - ratio)), 0.0))
    elif motion == "shake":
        jitter = np.cumsum(rng.normal(0, 1.0, size=(n, 3)), axis=0) * [1.2, 1.2, 0.003]
        jitter -= jitter.mean(axis=0)
        for t in range(n):
            path.append((pw / 2 + jitter[t, 0] * s0, ph / 2 + jitter[t, 1] * s0, s0, float(jitter[t, 2])))
    else:
        raise ValueError(f"unknown camera motion {motion!r}; choose from {MOTIONS}")
    return _inside(path, photo_size, out_size)


def _inside(path: list[tuple[float, float, float, float]], photo_size: tuple[int, int], out_size: tuple[int, int]):
    """Shift the centres so every rotated frame lies within the photo (with a pixel of margin)."""
    pw, ph = photo_size
    ow, oh = out_size
    out = []
    for cx, cy, s, a in path:
        hw = s * ((ow - 1) / 2 * abs(math.cos(a)) + (oh - 1) / 2 * abs(math.sin(a))) + 1
        hh = s * ((ow - 1) / 2 * abs(math.sin(a)) + (oh - 1) / 2 * abs(math.cos(a))) + 1
        out.append((min(max(cx, hw), pw - 1 - hw), min(max(cy, hh), ph - 1 - hh), s, a))
    return out


def transform(cx: float, cy: float, s: float, angle: float, out_size: tuple[int, int]) -> np.ndarray:
    """The ``(2, 3)`` map from frame pixels to photo pixels for one camera position."""
    ow, oh = out_size
    c, sn = math.cos(angle) * s, math.sin(angle) * s
    x0, y0 = (ow - 1) / 2, (oh - 1) / 2
    return np.array([[c, -sn, cx - c * x0 + sn * y0], [sn, c, cy - sn * x0 - c * y0]], dtype=np.float64)


def render(photo: torch.Tensor, M: np.ndarray, out_size: tuple[int, int], supersample: int = 2) -> np.ndarray:
    """One frame ``(H, W, 3)`` uint8 of ``photo`` ``(3, Hp, Wp)`` float in ``[0, 1]`` under ``M``."""
    ow, oh = out_size
    k = supersample
    ys, xs = torch.meshgrid(
        (torch.arange(oh * k, dtype=torch.float64) - (k - 1) / 2) / k,
        (torch.arange(ow * k, dtype=torch.float64) - (k - 1) / 2) / k,
        indexing="ij",
    )
    sx = M[0, 0] * xs + M[0, 1] * ys + M[0, 2]
    sy = M[1, 0] * xs + M[1, 1] * ys + M[1, 2]
    hp, wp = photo.shape[-2:]
    grid = torch.stack([2 * sx / (wp - 1) - 1, 2 * sy / (hp - 1) - 1], dim=-1)[None].float()
    out = F.grid_sample(photo[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    out = F.avg_pool2d(out, k)[0]
    return (out.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def load_photo(path: str | Path) -> torch.Tensor:
    """A colour photo as ``(3, H, W)`` float in ``[0, 1]``."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def make_clip(
    name: str,
    photos: Sequence[str | Path],
    motions: Sequence[str],
    frames_per_shot: int = 16,
    size: tuple[int, int] = (384, 256),
    seed: int = 0,
) -> Clip:
    """One clip: shot ``i`` moves over ``photos[i]`` with ``motions[i]``; hard cuts between shots."""
    rng = np.random.default_rng(seed)
    frames, transforms, shots = [], [], []
    for i, (photo_path, motion) in enumerate(zip(photos, motions)):
        photo = load_photo(photo_path)
        path = camera_path(motion, frames_per_shot, (photo.shape[2], photo.shape[1]), size, rng)
        for cx, cy, s, a in path:
            M = transform(cx, cy, s, a, size)
            frames.append(render(photo, M, size))
            transforms.append(M)
            shots.append(i)
    return Clip(name, np.stack(frames), np.stack(transforms), np.array(shots), list(motions),
                [str(p) for p in photos])


def source_photos(data: Path, min_side: int = 400) -> list[Path]:
    """Colour photos in ``data/mixed/images`` with both sides at least ``min_side`` (people, animals,
    birds and scenes: every expert gets pixels)."""
    out = []
    for p in sorted((data / "mixed" / "images").glob("*.jpg")):
        with Image.open(p) as im:
            if min(im.size) >= min_side:
                out.append(p)
    if not out:
        raise FileNotFoundError(f"no photos with both sides >= {min_side} px in {data / 'mixed' / 'images'}")
    return out


def default_clips(
    data: Path, clips: int = 8, shots: int = 3, frames_per_shot: int = 16, size: tuple[int, int] = (384, 256),
    seed: int = 0,
) -> list[Clip]:
    """The evaluation set: ``clips`` clips of ``shots`` shots, photos and camera moves drawn with ``seed``
    (every move appears about equally often)."""
    rng = np.random.default_rng(seed)
    photos = source_photos(data)
    order = rng.permutation(len(photos))
    moves = [MOTIONS[i % len(MOTIONS)] for i in range(clips * shots)]
    rng.shuffle(moves)
    out = []
    for c in range(clips):
        chosen = [photos[order[(c * shots + k) % len(photos)]] for k in range(shots)]
        out.append(make_clip(f"clip_{c:02d}", chosen, moves[c * shots : (c + 1) * shots], frames_per_shot, size,
                             seed=seed * 1000 + c))
    return out


def write_clip(clip: Clip, directory: Path, fps: int = 24) -> Path:
    """Write ``<name>.mkv`` (grayscale frames) and ``<name>.npz`` (the ground truth) into ``directory``."""
    import av

    directory.mkdir(parents=True, exist_ok=True)
    video = directory / f"{clip.name}.mkv"
    h, w = clip.frames.shape[1:3]
    with av.open(str(video), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "12"}
        for rgb in clip.frames:
            gray = np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))
            for packet in stream.encode(av.VideoFrame.from_ndarray(gray, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    np.savez_compressed(directory / f"{clip.name}.npz", frames=clip.frames, transforms=clip.transforms,
                        shots=clip.shots, motions=np.array(clip.motions), photos=np.array(clip.photos))
    return video


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--frames-per-shot", type=int, default=16)
    p.add_argument("--size", type=parse_size, default=(384, 256), help="WxH")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for clip in default_clips(args.data, args.clips, args.shots, args.frames_per_shot, args.size, args.seed):
        path = write_clip(clip, args.output)
        print(f"{path}: {len(clip.frames)} frames, shots {clip.motions}, cuts at {clip.cuts}")


if __name__ == "__main__":
    main()
