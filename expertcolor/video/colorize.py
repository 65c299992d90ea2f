"""The video colorization loop: frames in order through one colorizer with temporal state, and whole
video files (frames, timing and sound) written atomically.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from ..colorizer import _resize
from ..io import ImageInput, decode_inputs, encode_output
from ..modeling import atomic_write
from .io import DEFAULT_CRF, VideoReader, VideoWriter, container_format, default_codec
from .stabilize import TemporalConfig, TemporalSmoother

if TYPE_CHECKING:
    from ..colorizer import ExpertColorizer

logger = logging.getLogger(__name__)

__all__ = ["VideoReport", "FrameColorizer", "colorize_frames", "colorize_video", "colorize_video_file", "video_strip"]

#: Parts of a frame's cost that :attr:`FrameColorizer.timings` reports (seconds, summed over frames).
PARTS = ("segment", "experts", "motion", "carry", "finish")


@dataclass
class VideoReport:
    """What :func:`colorize_video` did.

    Attributes:
        src, dst: the input and the output file.
        frames: frames written (equal to the frames decoded).
        width, height: frame size (kept).
        fps: average frame rate (kept; every frame's timestamp is kept too).
        audio_streams: audio streams copied unchanged.
        cuts: indices of the frames detected as the first of a new shot (empty without stabilisation).
        seconds: wall-clock time.
        codec, crf, pix_fmt: the encoder settings used.
        stabilize: whether state was carried between frames.
        timings: milliseconds per frame of each part (:data:`PARTS`, plus ``"decode"`` and ``"encode"``).
    """

    src: Path
    dst: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    audio_streams: int
    cuts: list[int]
    seconds: float
    codec: str
    crf: int | None
    pix_fmt: str
    stabilize: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        """Processing speed (frames colorized per wall-clock second)."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _config(stabilize: bool | TemporalConfig | Mapping[str, Any]) -> TemporalConfig | None:
    if isinstance(stabilize, TemporalConfig):
        return stabilize
    if isinstance(stabilize, Mapping):
        return TemporalConfig(**stabilize)
    if isinstance(stabilize, bool):
        return TemporalConfig() if stabilize else None
    kind = type(stabilize).__name__
    raise TypeError(f"stabilize must be a bool, a TemporalConfig or a dict of its fields, not {kind}")


class FrameColorizer:
    """Colorize the frames of one video, in order, carrying routing and chroma from frame to frame.

    Args:
        colorizer: the :class:`~expertcolor.ExpertColorizer`.
        stabilize: ``True`` (default settings), ``False`` (every frame on its own: the same pixels as
            ``colorizer.colorize(frame)``), or a :class:`~expertcolor.video.TemporalConfig`.
        saturation: chroma multiplier, as in :meth:`ExpertColorizer.colorize`.

    Example:
        >>> step = FrameColorizer(colorizer)                       # doctest: +SKIP
        >>> colored = [step(frame) for frame in frames]           # doctest: +SKIP
    """

    def __init__(
        self, colorizer: ExpertColorizer, stabilize: bool | TemporalConfig = True, saturation: float = 1.0
    ) -> None:
        if not np.isfinite(saturation) or saturation < 0:
            raise ValueError(f"saturation must be a finite number >= 0, got {saturation}")
        self.colorizer = colorizer
        self.config = _config(stabilize)
        self.saturation = float(saturation)
        self.smoother = TemporalSmoother(self.config) if self.config is not None else None
        self.frames = 0
        self.timings: dict[str, float] = dict.fromkeys(PARTS, 0.0)

    @property
    def cuts(self) -> list[int]:
        """Indices of the frames detected as the first of a new shot."""
        return list(self.smoother.cuts) if self.smoother is not None else []

    def reset(self) -> None:
        """Forget the previous frame (for a new video, or a known cut)."""
        if self.smoother is not None:
            self.smoother.reset()

    def __call__(self, frame: ImageInput) -> Any:
        """Colorize the next frame: a PIL image, an ndarray ``(H, W[, 3|4])`` or a tensor ``(1|3, H, W)``
        (colour is reduced to L); returns it in the same type (tensors as ``(3, H, W)``)."""
        if isinstance(frame, torch.Tensor) and frame.dim() == 3:
            frame = frame[None]
        decoded = decode_inputs(frame)
        if len(decoded) != 1:
            raise ValueError(f"one frame at a time: got a batch of {len(decoded)}; iterate over it")
        rgb = self.colorize_L(decoded[0].L)
        return encode_output(rgb, decoded[0])

    @torch.inference_mode()
    def colorize_L(self, L_full: torch.Tensor) -> torch.Tensor:
        """Colorize the next frame's lightness ``(1, 1, H, W)`` in ``[0, 100]``; sRGB ``(1, 3, H, W)`` in ``[0, 1]``."""
        c = self.colorizer
        clock = _Clock(self.timings)
        L_full = L_full.to(c.device)
        L_small = _resize(L_full, c.working_shape(*L_full.shape[-2:]))
        if self.smoother is None:
            with clock("experts"):
                ab = c.predict_ab(L_small)["ab"]
        else:
            s = self.smoother
            with clock("motion"):
                alignment = s.align(L_small)
            with clock("segment"):
                probs = c.segment(L_small)
            with clock("carry"):
                probs = s.carry("probs", probs, alignment)
            with clock("experts"):
                ab = c.predict_ab(L_small, probs=probs)["ab"]
            with clock("carry"):
                ab = s.carry("ab", ab, alignment)
                s.update(L_small, probs=probs, ab=ab)
        with clock("finish"):
            rgb = c._full_resolution_rgb(ab * self.saturation, L_small, L_full)
        self.frames += 1
        return rgb

    def milliseconds_per_frame(self) -> dict[str, float]:
        """Mean milliseconds per frame of each part (:data:`PARTS`)."""
        return {k: 1000 * v / max(1, self.frames) for k, v in self.timings.items()}


class _Clock:
    """``with clock("part"):`` adds the block's wall-clock seconds to ``totals["part"]``."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self._part = ""

    def __call__(self, part: str) -> _Clock:
        self._part = part
        return self

    def __enter__(self) -> None:
        self._t = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.totals[self._part] = self.totals.get(self._part, 0.0) + time.perf_counter() - self._t


def colorize_frames(
    colorizer: ExpertColorizer,
    frames: Iterable[ImageInput],
    *,
    stabilize: bool | TemporalConfig = True,
    saturation: float = 1.0,
) -> Iterator[Any]:
    """Colorize a sequence of frames you bring yourself (one video, in order), lazily.

    Args:
        colorizer: the colorizer.
        frames: PIL images, ndarrays ``(H, W[, 3|4])`` or tensors ``(1|3, H, W)``; colour is reduced to L.
        stabilize: see :class:`FrameColorizer`.
        saturation: chroma multiplier.

    Yields:
        Each colorized frame in its input's type (PIL -> PIL RGB, uint8 array -> uint8 ``(H, W, 3)``,
        float array -> float, tensor -> ``(3, H, W)``).
    """
    step = FrameColorizer(colorizer, stabilize=stabilize, saturation=saturation)
    for frame in frames:
        yield step(frame)


def colorize_video(
    colorizer: ExpertColorizer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    codec: str | None = None,
    crf: int | None = None,
    pix_fmt: str = "yuv420p",
    options: Mapping[str, str] | None = None,
    stabilize: bool | TemporalConfig = True,
    saturation: float = 1.0,
    progress: bool = True,
    overwrite: bool = False,
) -> VideoReport:
    """Colorize a video file: same frames, size and timing, audio streams copied unchanged.

    The output is written under a temporary name beside ``dst`` and renamed when complete, so an
    error (an unreadable or truncated input, a full disk) leaves nothing under ``dst``.

    Args:
        colorizer: the colorizer.
        src: the input video (.mp4, .m4v, .mov, .mkv, .webm, .avi or an animated .gif).
        dst: the output file; its extension picks the container.
        codec: video encoder; ``None``: H.264 (``libx264``), VP9 for .webm, GIF for .gif.
        crf: constant quality for x264/x265/VP9/AV1 (lower is better; ``None``: see
            :data:`~expertcolor.video.io.DEFAULT_CRF`, 18 for H.264).
        pix_fmt: pixel format (``yuv420p`` plays everywhere; odd frame sizes get ``yuv444p``).
        options: extra encoder options (FFmpeg names, e.g. ``{"preset": "slow"}``).
        stabilize: carry state between frames (see :class:`FrameColorizer`).
        saturation: chroma multiplier.
        progress: show a tqdm bar over frames.
        overwrite: replace an existing ``dst``.

    Returns:
        A :class:`VideoReport`.

    Raises:
        ImportError: without PyAV (``pip install "expertcolor[video]"``).
        FileNotFoundError: if ``src`` does not exist.
        FileExistsError: if ``dst`` exists and ``overwrite`` is false.
        ValueError: for an unreadable or truncated input, an output that would replace the input,
            an unknown container or encoder, or audio the output container cannot hold.
    """
    from tqdm.auto import tqdm

    src, dst = Path(src), Path(dst)
    fmt = container_format(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"the output would overwrite the input {src}; choose another output")
    if os.path.lexists(dst) and not overwrite:
        raise FileExistsError(f"{dst} already exists; pass overwrite=True (--overwrite) to replace it")
    codec = codec or default_codec(dst)
    step = FrameColorizer(colorizer, stabilize=stabilize, saturation=saturation)
    timings = {"decode": 0.0, "encode": 0.0}
    clock = _Clock(timings)
    start = time.perf_counter()
    with VideoReader(src) as reader:
        info = reader.info
        audio = reader.audio_streams
        if fmt == "gif" and audio:
            logger.warning("%s: a GIF has no sound; the %d audio stream(s) are left out", dst, len(audio))
            audio = []

        def write(tmp: str) -> None:
            writer = VideoWriter(tmp, format=fmt, info=info, codec=codec, crf=crf, pix_fmt=pix_fmt, options=options,
                                 audio=audio, index_timestamps=reader.format_name == "avi")
            bar = tqdm(total=info.frames, desc=src.name, unit="frame", disable=None if progress else True)
            try:
                items = reader.items(audio=bool(audio))
                while True:
                    with clock("decode"):
                        item = next(items, None)
                    if item is None:
                        break
                    kind, value = item
                    if kind == "audio":
                        writer.mux_audio(value)
                        continue
                    rgb, pts = value
                    with clock("decode"):
                        decoded = decode_inputs(rgb)[0]
                    out = encode_output(step.colorize_L(decoded.L), decoded)
                    with clock("encode"):
                        writer.write(out, pts)
                    bar.update(1)
                reader.check_complete()
                with clock("encode"):
                    writer.close()
            except BaseException:
                writer.abort()
                raise
            finally:
                bar.close()

        atomic_write(dst, write)
    seconds = time.perf_counter() - start
    per_frame = step.milliseconds_per_frame()
    per_frame.update({k: 1000 * v / max(1, step.frames) for k, v in timings.items()})
    return VideoReport(
        src=src, dst=dst, frames=step.frames, width=info.width, height=info.height, fps=info.fps,
        audio_streams=len(audio), cuts=step.cuts, seconds=seconds, codec=codec,
        crf=crf if crf is not None else DEFAULT_CRF.get(codec), pix_fmt="pal8" if codec == "gif" else pix_fmt,
        stabilize=step.config is not None, timings=per_frame,
    )


def colorize_video_file(
    colorizer: ExpertColorizer,
    src: Path,
    dst: Path,
    *,
    overwrite: bool,
    codec: str | None,
    crf: int | None,
    stabilize: bool,
    progress: bool,
    saturation: float = 1.0,
) -> VideoReport:
    """Everything the command line does for one video: :func:`colorize_video`, then one log line."""
    report = colorize_video(
        colorizer, src, dst, codec=codec, crf=crf, stabilize=stabilize, saturation=saturation, progress=progress,
        overwrite=overwrite,
    )
    logger.info(
        "%s -> %s: %d frames %dx%d at %.3g fps, %d audio stream(s) copied, %d cut(s), %.1f frames/s",
        src, dst, report.frames, report.width, report.height, float(report.fps), report.audio_streams,
        len(report.cuts), report.frames_per_second,
    )
    return report


def video_strip(
    frames: Sequence[ImageInput] | str | os.PathLike, n: int = 6, height: int = 160, gap: int = 4
) -> Image.Image:
    """A strip of ``n`` evenly spaced frames side by side (for galleries).

    Args:
        frames: frames (PIL images, ndarrays ``(H, W[, 3])`` uint8, tensors ``(3, H, W)`` in ``[0, 1]``)
            or a video file.
        n: frames to show (fewer if the video is shorter).
        height: height of each frame in the strip (pixels); widths keep the aspect ratio.
        gap: white pixels between frames.

    Returns:
        An RGB image.
    """
    if n < 1 or height < 1 or gap < 0:
        raise ValueError(f"video_strip needs n >= 1, height >= 1 and gap >= 0, got {n}, {height}, {gap}")
    if isinstance(frames, (str, os.PathLike)):
        picked = _frames_from_file(Path(frames), n)
    else:
        count = len(frames)
        if count == 0:
            raise ValueError("video_strip needs at least one frame")
        picked = [frames[i] for i in _spread(count, n)]
    images = [_to_pil(f) for f in picked]
    images = [im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS) for im in images]
    strip = Image.new("RGB", (sum(im.width for im in images) + gap * (len(images) - 1), height), "white")
    x = 0
    for im in images:
        strip.paste(im, (x, 0))
        x += im.width + gap
    return strip


def _spread(count: int, n: int) -> list[int]:
    """``min(n, count)`` indices spread evenly over ``range(count)``, first and last included."""
    if n >= count:
        return list(range(count))
    if n == 1:
        return [0]
    return sorted({round(i * (count - 1) / (n - 1)) for i in range(n)})


def _frames_from_file(path: Path, n: int) -> list[np.ndarray]:
    with VideoReader(path) as reader:
        count = reader.info.frames
        if count is None:
            count = sum(1 for _ in reader.frames())
    wanted = set(_spread(count, n))
    out: list[np.ndarray] = []
    with VideoReader(path) as reader:
        for i, rgb in enumerate(reader.frames()):
            if i in wanted:
                out.append(rgb)
    if not out:
        raise ValueError(f"{path}: no frame could be decoded")
    return out


def _to_pil(frame: ImageInput) -> Image.Image:
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    if isinstance(frame, torch.Tensor):
        t = frame.detach().float().cpu()
        t = t[0] if t.dim() == 4 else t
        t = t.expand(3, -1, -1) if t.shape[0] == 1 else t
        return Image.fromarray((t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(arr).convert("RGB")
