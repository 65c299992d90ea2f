"""Video: files in and out (frames, size, timing, audio, GIF), damaged inputs, cuts, temporal stability, frame API."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor.video import (
    FrameColorizer,
    TemporalConfig,
    colorize_frames,
    colorize_video,
    colorize_video_file,
    create_motion,
    is_video,
    require_av,
    video_strip,
)
from expertcolor.video.motion import warp

W, H, FPS = 96, 64, 12


def texture(seed: int, h: int = 160, w: int = 240) -> np.ndarray:
    """A smooth random colour texture ``(h, w, 3)`` uint8 (structure at several scales, so motion is visible)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((h, w, 3), dtype=np.float32)
    for cells in (4, 9, 20):
        coarse = torch.from_numpy(rng.random((1, 3, cells, cells * w // h), dtype=np.float32))
        up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        out += up[0].permute(1, 2, 0).numpy() / 3
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def panning_frames(n: int, seed: int = 0, dx: int = 2, dy: int = 1, start: int = 0) -> list[np.ndarray]:
    """``n`` frames ``(H, W, 3)`` of a camera moving ``(dx, dy)`` pixels per frame over one texture."""
    tex = texture(seed)
    return [tex[10 + (start + t) * dy : 10 + (start + t) * dy + H, 10 + (start + t) * dx : 10 + (start + t) * dx + W]
            for t in range(n)]


def gray(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(Image.fromarray(rgb).convert("L"))[..., None], 3, axis=2)


def write_clip(path: Path, frames: list[np.ndarray], audio: bool = False, codec: str = "libx264") -> None:
    """A black-and-white clip of ``frames`` (with a 440 Hz AAC tone when ``audio``)."""
    av = pytest.importorskip("av")
    frames = [gray(f) for f in frames]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=FPS)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        a = out.add_stream("aac", rate=22050) if audio else None
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        if a is not None:
            t = np.arange(int(22050 * len(frames) / FPS)) / 22050
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 22050
            for p in [*a.encode(frame), *a.encode(None)]:
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)


def probe(path: Path) -> dict:
    av = pytest.importorskip("av")
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"size": (v.width, v.height), "rate": Fraction(v.average_rate),
                "audio": [(s.codec_context.name, s.sample_rate) for s in c.streams.audio]}
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    info["times"] = [round(t, 4) for t, _ in frames]
    info["frames"] = [f for _, f in frames]
    if info["audio"]:
        with av.open(str(path)) as c:
            info["audio_packets"] = [bytes(p) for p in c.demux(audio=0) if p.size]
    return info


def chroma(rgb: np.ndarray) -> float:
    a = rgb.astype(np.int16)
    return float((a.max(axis=2) - a.min(axis=2)).mean())


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


# -- files -----------------------------------------------------------------------------------------


def test_is_video_by_extension_and_gif_animation(tmp_path) -> None:
    assert is_video("a.MP4") and is_video("b.mkv") and is_video("c.webm") and is_video("d.mov") and is_video("e.avi")
    assert not is_video("photo.jpg") and not is_video("notes.txt")
    still, anim = tmp_path / "still.gif", tmp_path / "anim.gif"
    Image.new("RGB", (8, 8), "red").save(still)
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100)
    assert not is_video(still) and is_video(anim)


@pytest.mark.parametrize("ext", [".mkv", ".mov"])
def test_frames_size_rate_and_audio_preserved(tiny_colorizer, clip_dir, tmp_path, ext) -> None:
    src = clip_dir / f"with_audio{ext}"
    if not src.exists():
        write_clip(src, panning_frames(10), audio=True)
    dst = tmp_path / f"out{ext}"
    report = colorize_video(tiny_colorizer, src, dst, progress=False)
    a, b = probe(src), probe(dst)
    assert len(b["frames"]) == len(a["frames"]) == report.frames == 10
    assert b["size"] == a["size"] == (W, H) and (report.width, report.height) == (W, H)
    assert b["rate"] == a["rate"] == FPS and report.fps == FPS
    assert b["times"] == a["times"]  # every frame keeps its timestamp
    assert b["audio"] == a["audio"] and report.audio_streams == 1
    assert b["audio_packets"] == a["audio_packets"]  # copied unchanged, byte for byte
    assert np.mean([chroma(f) for f in a["frames"]]) < 2 < 5 < np.mean([chroma(f) for f in b["frames"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == [dst.name]  # no temporary left behind


def test_gif_animation_in_and_out(tiny_colorizer, tmp_path) -> None:
    src, dst = tmp_path / "in.gif", tmp_path / "out" / "out.gif"
    frames = [Image.fromarray(f).convert("L").convert("P") for f in panning_frames(6)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=[80, 80, 120, 80, 80, 160], loop=0)
    report = colorize_video(tiny_colorizer, src, dst, progress=False)
    a, b = probe(src), probe(dst)
    assert report.codec == "gif" and report.frames == len(b["frames"]) == 6
    assert b["size"] == a["size"] and b["times"] == a["times"]  # per-frame delays kept
    assert chroma(b["frames"][2]) > 3


def test_odd_frame_size_kept(tiny_colorizer, tmp_path) -> None:
    src, dst = tmp_path / "odd.mkv", tmp_path / "odd_out.mkv"
    write_clip(src, [f[:63, :95] for f in panning_frames(4)], codec="ffv1")
    colorize_video(tiny_colorizer, src, dst, progress=False)
    out = probe(dst)
    assert out["size"] == (95, 63) and len(out["frames"]) == 4


def test_truncated_file_is_an_error_and_leaves_no_output(tiny_colorizer, clip_dir, tmp_path) -> None:
    whole = clip_dir / "whole.mkv"
    write_clip(whole, panning_frames(12))
    data = whole.read_bytes()
    src = tmp_path / "cut_short.mkv"
    src.write_bytes(data[: len(data) * 6 // 10])
    dst = tmp_path / "out" / "cut_short.mkv"
    with pytest.raises(ValueError, match="truncated"):
        colorize_video(tiny_colorizer, src, dst, progress=False)
    assert not dst.exists() and list(dst.parent.iterdir()) == []


def test_truncated_gif_is_an_error(tiny_colorizer, tmp_path) -> None:
    src = tmp_path / "in.gif"
    frames = [Image.fromarray(f) for f in panning_frames(4)]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100)
    src.write_bytes(src.read_bytes()[:-1])  # no trailer
    with pytest.raises(ValueError, match="truncated"):
        colorize_video(tiny_colorizer, src, tmp_path / "out.gif", progress=False)
    assert not (tmp_path / "out.gif").exists()


def test_unreadable_and_missing_files(tiny_colorizer, tmp_path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    with pytest.raises(ValueError, match="not a readable video"):
        colorize_video(tiny_colorizer, junk, tmp_path / "out.mp4", progress=False)
    with pytest.raises(FileNotFoundError):
        colorize_video(tiny_colorizer, tmp_path / "missing.mp4", tmp_path / "out.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]


def test_overwrite_refused_unless_asked(tiny_colorizer, clip_dir, tmp_path) -> None:
    src = clip_dir / "short.mkv"
    write_clip(src, panning_frames(3))
    dst = tmp_path / "out.mkv"
    dst.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        colorize_video_file(tiny_colorizer, src, dst, overwrite=False, codec=None, crf=None, stabilize=True,
                            progress=False)
    assert dst.read_bytes() == b"keep me"
    report = colorize_video_file(tiny_colorizer, src, dst, overwrite=True, codec="libx264", crf=23, stabilize=False,
                                 progress=False)
    assert report.frames == 3 and report.crf == 23 and len(probe(dst)["frames"]) == 3
    with pytest.raises(ValueError, match="overwrite the input"):
        colorize_video(tiny_colorizer, src, src, overwrite=True, progress=False)


def test_encoder_settings_checked(tiny_colorizer, clip_dir, tmp_path) -> None:
    src = clip_dir / "short.mkv"
    if not src.exists():
        write_clip(src, panning_frames(3))
    with pytest.raises(ValueError, match="unknown video encoder"):
        colorize_video(tiny_colorizer, src, tmp_path / "a.mkv", codec="no-such-codec", progress=False)
    with pytest.raises(ValueError, match="no crf"):
        colorize_video(tiny_colorizer, src, tmp_path / "b.gif", crf=10, progress=False)
    with pytest.raises(ValueError, match="not a video container"):
        colorize_video(tiny_colorizer, src, tmp_path / "c.png", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_colorizer_method_delegates(tiny_colorizer, clip_dir, tmp_path) -> None:
    src = clip_dir / "short.mkv"
    if not src.exists():
        write_clip(src, panning_frames(3))
    report = tiny_colorizer.colorize_video(src, tmp_path / "m.mp4", progress=False)
    assert report.frames == 3 and (tmp_path / "m.mp4").is_file()


def test_missing_pyav_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"expertcolor\[video\]"):
        require_av()


# -- temporal stability ----------------------------------------------------------------------------


def test_motion_estimators_recover_a_known_shift() -> None:
    tex = texture(3, 200, 300).astype(np.float32).mean(axis=2) * 100 / 255
    prev = torch.from_numpy(tex[20:148, 30:222].copy())[None, None]
    cur = torch.from_numpy(tex[22:150, 33:225].copy())[None, None]  # the camera moved 3 right, 2 down
    for name in ("translation", "affine", "flow"):
        flow = create_motion(name)(prev, cur)
        centre = flow[0, :, 20:-20, 20:-20].mean(dim=(1, 2))
        assert torch.allclose(centre, torch.tensor([3.0, 2.0]), atol=0.35), (name, centre)
        warped, inside = warp(prev, flow)
        assert float(((warped - cur).abs() * inside)[..., 8:-8, 8:-8].mean()) < 1.0
    with pytest.raises(ValueError, match="choose from"):
        create_motion("optical-magic")


def test_cut_detected_and_state_reset(tiny_colorizer) -> None:
    frames = panning_frames(6, seed=1) + panning_frames(6, seed=2)
    step = FrameColorizer(tiny_colorizer)
    for f in frames:
        step(f)
    assert step.cuts == [6]
    brighter = [np.clip(f.astype(np.int16) + 12 * (i % 2), 0, 255).astype(np.uint8)
                for i, f in enumerate(panning_frames(8, seed=1))]  # exposure flicker is no cut
    step = FrameColorizer(tiny_colorizer)
    for f in brighter:
        step(f)
    assert step.cuts == []


def _flicker(outputs: list[np.ndarray], dx: int, dy: int) -> float:
    """Mean |ab_t - ab_{t-1}| after aligning consecutive frames by the known shift."""
    from expertcolor.metrics import rgb_to_lab

    ab = [rgb_to_lab(o)[..., 1:] for o in outputs]
    return float(np.mean([np.linalg.norm(b[:-dy or None, :-dx or None] - a[dy:, dx:], axis=-1).mean()
                          for a, b in zip(ab[:-1], ab[1:])]))


def test_stabilisation_reduces_flicker_on_a_moving_clip(tiny_colorizer) -> None:
    rng = np.random.default_rng(0)
    frames = [np.clip(f + rng.normal(0, 6, f.shape[:2])[..., None], 0, 255).astype(np.uint8)  # film grain
              for f in panning_frames(10, seed=4)]
    plain = list(colorize_frames(tiny_colorizer, frames, stabilize=False))
    steady = list(colorize_frames(tiny_colorizer, frames))
    f_plain, f_steady = _flicker(plain, 2, 1), _flicker(steady, 2, 1)
    assert f_plain > 1.0  # the clip does flicker frame by frame
    assert f_steady < 0.6 * f_plain, (f_steady, f_plain)


def test_frame_api_types_and_per_frame_identity(tiny_colorizer) -> None:
    frames = panning_frames(3)
    plain = list(colorize_frames(tiny_colorizer, frames, stabilize=False))
    for f, out in zip(frames, plain):  # without state: exactly the photo path's pixels
        np.testing.assert_array_equal(out, tiny_colorizer.colorize(f))
    pil = list(colorize_frames(tiny_colorizer, (Image.fromarray(f) for f in frames)))
    assert all(isinstance(p, Image.Image) and p.size == (W, H) and p.mode == "RGB" for p in pil)
    tensors = list(colorize_frames(tiny_colorizer, [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames],
                                   stabilize=TemporalConfig(motion="translation")))
    assert all(t.shape == (3, H, W) and t.dtype == torch.float32 for t in tensors)
    with pytest.raises(ValueError, match="carry_ab"):
        TemporalConfig(carry_ab=1.0)
    with pytest.raises(ValueError, match="unknown motion"):
        TemporalConfig(motion="warp-drive")


def test_video_strip_from_frames_and_file(clip_dir) -> None:
    frames = panning_frames(9)
    strip = video_strip(frames, n=4, height=32, gap=2)
    assert strip.size == (4 * 48 + 3 * 2, 32) and strip.mode == "RGB"
    src = clip_dir / "strip.mkv"
    write_clip(src, frames)
    assert video_strip(src, n=20, height=16, gap=0).size == (9 * 24, 16)  # fewer frames than asked


def test_cli_colorizes_photos_and_videos_together(tiny_model_dir, clip_dir, tmp_path) -> None:
    from PIL import Image

    from expertcolor.cli import main

    src = tmp_path / "in"
    src.mkdir()
    clip = src / "clip.mkv"
    write_clip(clip, panning_frames(6), audio=True)
    Image.fromarray(texture(3)).save(src / "photo.png")
    out = tmp_path / "out"
    assert main(["colorize", str(src), "-o", str(out), "--model", str(tiny_model_dir), "--device", "cpu"]) == 0
    assert (out / "photo.png").is_file()
    got, want = probe(out / clip.name), probe(clip)
    assert len(got["frames"]) == len(want["frames"]) == 6 and got["audio"] == want["audio"]
    assert main(["colorize", str(src / clip.name), "-o", str(out), "--model", str(tiny_model_dir)]) == 1  # exists
