"""Build test clips with known colours and known camera motion from colour photos, for measuring video colorization.

A clip is a few shots, each a virtual camera moving over one colour photo (a pan, a tilt, a zoom in
or out, or a hand-held shake with a little rotation; or ``object``: a slow pan with a person or
animal cut out of another photo moving across it on its own), joined by hard cuts. Every frame is
rendered with 2x2 supersampling from the photos, so its true colours are known, and so is the
motion: frame ``t`` pixel ``(x, y)`` shows the photo at ``transforms[t] @ (x, y, 1)`` unless the
object covers it, and :meth:`Clip.backward_flow` gives every pixel's position in the previous frame.
Feed the frames' grayscale to a colorizer and compare with the truth (``tools/eval_video.py``).

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

#: Camera moves a shot can have (``object``: a slow pan plus a subject moving across the frame).
MOTIONS = ("pan", "tilt_pan", "zoom_in", "zoom_out", "shake", "object")


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
        alpha: ``(T, H, W)`` float32 coverage of the moving subject (0 where there is none).
        subject: ``(T, 2)`` the subject's offset in frame pixels (it moves by pure translation).
    """

    name: str
    frames: np.ndarray
    transforms: np.ndarray
    shots: np.ndarray
    motions: list[str]
    photos: list[str]
    alpha: np.ndarray
    subject: np.ndarray

    @property
    def cuts(self) -> list[int]:
        """First frame of every shot after the first."""
        return [t for t in range(1, len(self.shots)) if self.shots[t] != self.shots[t - 1]]

    def backward_flow(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel of frame ``t`` was in frame ``t - 1``: ``(H, W, 2)`` positions ``(x, y)``
        and an ``(H, W)`` mask of the pixels that frame ``t - 1`` showed too (inside it, not
        covered or uncovered by the subject, not across a cut, not on the subject's soft edge)."""
        h, w = self.frames.shape[1:3]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        if t == 0 or self.shots[t] != self.shots[t - 1]:
            return np.stack([xs, ys], -1), np.zeros((h, w), dtype=bool)
        Mt, Mp = self.transforms[t], self.transforms[t - 1]
        sx = Mt[0, 0] * xs + Mt[0, 1] * ys + Mt[0, 2]  # frame t pixel -> photo
        sy = Mt[1, 0] * xs + Mt[1, 1] * ys + Mt[1, 2]
        A = np.linalg.inv(Mp[:, :2])
        qx = A[0, 0] * (sx - Mp[0, 2]) + A[0, 1] * (sy - Mp[1, 2])  # photo -> frame t - 1 pixel
        qy = A[1, 0] * (sx - Mp[0, 2]) + A[1, 1] * (sy - Mp[1, 2])
        on = self.alpha[t]
        dx, dy = self.subject[t - 1] - self.subject[t]
        if on.any():
            qx = np.where(on > 0.5, xs + dx, qx)
            qy = np.where(on > 0.5, ys + dy, qy)
        valid = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        if on.any() or self.alpha[t - 1].any():
            before = _sample(self.alpha[t - 1], qx, qy)
            valid &= ((on < 0.02) & (before < 0.02)) | ((on > 0.98) & (before > 0.98))
        return np.stack([qx, qy], -1), valid


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
    if motion in ("pan", "tilt_pan", "slow_pan"):
        speed = rng.uniform(*((0.5, 1.5) if motion == "slow_pan" else (1.5, 3.0))) * rng.choice([-1, 1])
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


def _sample(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``(H, W)`` ``img`` at float positions (edges replicated)."""
    h, w = img.shape
    grid = torch.from_numpy(np.stack([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], -1))[None].float()
    src = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)[0, 0].numpy()


def load_subject(image: Path, groups: Path, height: int, max_width: int) -> torch.Tensor:
    """The photo's largest routing group (person, bird or animal) cut out: ``(4, h, w)`` RGBA in
    ``[0, 1]``, ``height`` pixels tall or ``max_width`` wide (antialiased, so its edge is soft)."""
    labels = np.asarray(Image.open(groups))
    values, counts = np.unique(labels[(labels > 0) & (labels < 255)], return_counts=True)
    if values.size == 0:
        raise ValueError(f"{groups} has no person, bird or animal")
    mask = labels == values[counts.argmax()]
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    rgb = Image.open(image).convert("RGB").crop(box)
    a = Image.fromarray(mask.astype(np.uint8) * 255).crop(box)
    scale = min(height / rgb.height, max_width / rgb.width)
    size = (max(2, round(rgb.width * scale)), max(2, round(rgb.height * scale)))
    rgba = np.dstack([np.asarray(rgb.resize(size, Image.LANCZOS)), np.asarray(a.resize(size, Image.LANCZOS))])
    return torch.from_numpy(rgba.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def place(subject: torch.Tensor, offset: tuple[float, float], out_size: tuple[int, int]) -> torch.Tensor:
    """``subject`` ``(4, h, w)`` with its top-left corner at ``offset`` (sub-pixel) in a frame of ``out_size``."""
    ow, oh = out_size
    sh, sw = subject.shape[-2:]
    xs = torch.arange(ow, dtype=torch.float64) - offset[0]
    ys = torch.arange(oh, dtype=torch.float64) - offset[1]
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([2 * x / (sw - 1) - 1, 2 * y / (sh - 1) - 1], dim=-1)[None].float()
    return F.grid_sample(subject[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def subject_photos(data: Path) -> list[tuple[Path, Path]]:
    """``(photo, routing-group mask)`` pairs of ``data/mixed`` whose subject is big enough to cut out."""
    out = []
    for g in sorted((data / "mixed" / "groups").glob("*.png")):
        image = data / "mixed" / "images" / f"{g.stem}.jpg"
        labels = np.asarray(Image.open(g))
        if image.is_file() and ((labels > 0) & (labels < 255)).mean() > 0.08:
            out.append((image, g))
    return out


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
    subjects: Sequence[tuple[Path, Path]] = (),
) -> Clip:
    """One clip: shot ``i`` moves over ``photos[i]`` with ``motions[i]``; hard cuts between shots.
    ``object`` shots take their moving subject from ``subjects`` (see :func:`subject_photos`)."""
    rng = np.random.default_rng(seed)
    frames, transforms, shots, alphas, offsets = [], [], [], [], []
    ow, oh = size
    for i, (photo_path, motion) in enumerate(zip(photos, motions)):
        photo = load_photo(photo_path)
        subject, track = None, [(0.0, 0.0)] * frames_per_shot
        if motion == "object":
            if not subjects:
                raise ValueError("an 'object' shot needs subjects=[(photo, group mask), ...]")
            image, groups = subjects[int(rng.integers(len(subjects)))]
            subject = load_subject(image, groups, round(oh * rng.uniform(0.45, 0.6)), ow // 2)
            vx, vy = rng.uniform(2.0, 4.0) * rng.choice([-1, 1]), rng.uniform(-0.8, 0.8)
            x0 = (ow - subject.shape[2]) / 2 - vx * (frames_per_shot - 1) / 2
            y0 = (oh - subject.shape[1]) / 2 - vy * (frames_per_shot - 1) / 2
            track = [(x0 + vx * t, y0 + vy * t) for t in range(frames_per_shot)]
        camera = "slow_pan" if motion == "object" else motion
        path = camera_path(camera, frames_per_shot, (photo.shape[2], photo.shape[1]), size, rng)
        for (cx, cy, s, a), offset in zip(path, track):
            M = transform(cx, cy, s, a, size)
            frame = render(photo, M, size)
            alpha = np.zeros((oh, ow), dtype=np.float32)
            if subject is not None:
                layer = place(subject, offset, size).permute(1, 2, 0).numpy()
                alpha = layer[..., 3]
                mixed = alpha[..., None] * layer[..., :3] * 255 + (1 - alpha[..., None]) * frame
                frame = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
            frames.append(frame)
            transforms.append(M)
            shots.append(i)
            alphas.append(alpha)
            offsets.append(offset)
    return Clip(name, np.stack(frames), np.stack(transforms), np.array(shots), list(motions),
                [str(p) for p in photos], np.stack(alphas), np.array(offsets, dtype=np.float64))


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
    seed: int = 0, motions: Sequence[str] = MOTIONS,
) -> list[Clip]:
    """The evaluation set: ``clips`` clips of ``shots`` shots, photos and camera moves (of ``motions``)
    drawn with ``seed``, every move about equally often."""
    rng = np.random.default_rng(seed)
    photos = source_photos(data)
    subjects = subject_photos(data)
    order = rng.permutation(len(photos))
    moves = [motions[i % len(motions)] for i in range(clips * shots)]
    rng.shuffle(moves)
    out = []
    for c in range(clips):
        chosen = [photos[order[(c * shots + k) % len(photos)]] for k in range(shots)]
        out.append(make_clip(f"clip_{c:02d}", chosen, moves[c * shots : (c + 1) * shots], frames_per_shot, size,
                             seed=seed * 1000 + c, subjects=subjects))
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
                        shots=clip.shots, motions=np.array(clip.motions), photos=np.array(clip.photos),
                        alpha=clip.alpha.astype(np.float16), subject=clip.subject)
    return video


def historical_clip(
    name: str, photos: Sequence[Path], frames_per_shot: int = 24, size: tuple[int, int] = (480, 320), seed: int = 0,
    grain: float = 4.0, exposure: float = 0.03,
) -> Clip:
    """Real black-and-white photos filmed like old footage (no colour truth; for looking at): shots
    alternate a slow zoom in and a pan, with film grain (std in 8-bit levels) and exposure flicker
    (relative std of each frame's brightness)."""
    moves = [("zoom_in", "pan")[i % 2] for i in range(len(photos))]
    clip = make_clip(name, photos, moves, frames_per_shot, size, seed=seed)
    rng = np.random.default_rng(seed)
    gain = 1 + exposure * rng.standard_normal(len(clip.frames))
    noisy = clip.frames.astype(np.float32) * gain[:, None, None, None]
    noisy += rng.normal(0, grain, size=clip.frames.shape[:3])[..., None]
    clip.frames = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return clip


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def add_clip_args(p: argparse.ArgumentParser) -> None:
    """The options that say which clips :func:`default_clips` makes (shared with ``eval_video.py``)."""
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--frames-per-shot", type=int, default=16)
    p.add_argument("--size", type=parse_size, default=(384, 256), help="WxH")
    p.add_argument("--seed", type=int, default=0)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, required=True)
    add_clip_args(p)
    p.add_argument("--historical", nargs="+", default=None, metavar="NAME",
                   help="instead, film these photos of data/historical as one black-and-white clip (a shot each)")
    args = p.parse_args(argv)
    if args.historical is not None:
        photos = [args.data / "historical" / name for name in args.historical]
        clip = historical_clip("historical", photos, args.frames_per_shot, args.size, args.seed)
        print(f"{write_clip(clip, args.output)}: black-and-white footage, cuts at {clip.cuts}")
        return
    for clip in default_clips(args.data, args.clips, args.shots, args.frames_per_shot, args.size, args.seed):
        path = write_clip(clip, args.output)
        print(f"{path}: {len(clip.frames)} frames, shots {clip.motions}, cuts at {clip.cuts}")


if __name__ == "__main__":
    main()
