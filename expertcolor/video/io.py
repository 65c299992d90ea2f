"""Video files through PyAV (FFmpeg's libraries): which files are videos, decoding to RGB frames,
encoding colorized frames with their timing, and copying audio packets unchanged.

PyAV is an optional dependency (``pip install "expertcolor[video]"``); it is imported on first use.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

__all__ = [
    "VIDEO_EXTENSIONS",
    "DEFAULT_CRF",
    "is_video",
    "require_av",
    "container_format",
    "default_codec",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
]

#: Containers read and written (lower case); ``.gif`` counts only when animated (see :func:`is_video`).
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif")

#: FFmpeg muxer for each extension.
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
            ".gif": "gif"}

#: Constant-quality setting per encoder when none is given: "visually lossless" for H.264/H.265,
#: its usual counterpart for VP9 and AV1.
DEFAULT_CRF: dict[str, int] = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libaom-av1": 24, "libsvtav1": 24}

_INSTALL = 'video needs PyAV (FFmpeg\'s libraries, in its wheels): pip install "expertcolor[video]"'


def require_av() -> ModuleType:
    """The ``av`` module.

    Raises:
        ImportError: naming ``pip install "expertcolor[video]"`` when PyAV is not installed.
    """
    try:
        import av
    except ImportError as e:
        raise ImportError(_INSTALL) from e
    return av


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video by its extension (see :data:`VIDEO_EXTENSIONS`); a ``.gif`` is a
    video only when it is an existing animation of more than one frame (a still GIF is a photo)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        return False
    if suffix != ".gif":
        return True
    try:
        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:  # noqa: BLE001 - unreadable or missing: not a video we can handle
        return False


def container_format(path: str | os.PathLike) -> str:
    """FFmpeg's muxer name for the extension of ``path``.

    Raises:
        ValueError: for an extension that is not a video container.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"{path}: {suffix or 'no extension'} is not a video container; use one of {VIDEO_EXTENSIONS}")
    return _FORMATS[suffix]


def default_codec(path: str | os.PathLike) -> str:
    """The encoder used for ``path`` when none is given: VP9 for WebM, GIF for GIF, else H.264."""
    return {"webm": "libvpx-vp9", "gif": "gif"}.get(container_format(path), "libx264")


@dataclass(frozen=True)
class VideoInfo:
    """What a video file declares about its first video stream.

    Attributes:
        width, height: frame size in pixels.
        fps: average frame rate (frames per second).
        time_base: the unit of the stream's timestamps (seconds).
        frames: frames declared by the container (or its duration times ``fps``); ``None`` if neither.
        codec: the video codec's name.
        audio: the codec of every audio stream (copied unchanged into the output).
    """

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int | None
    codec: str
    audio: tuple[str, ...]


def _unreadable(path: Path, err: BaseException) -> ValueError:
    return ValueError(f"{path} is not a readable video: {str(err).strip() or type(err).__name__}")


def _declared_frames(container: Any, stream: Any) -> int | None:
    """Frames the file says it holds: the stream's count, or its (or a DURATION tag's) length times its rate."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif stream.metadata.get("DURATION"):  # Matroska / WebM write one per stream
        try:
            h, m, s = stream.metadata["DURATION"].split(":")
            seconds = int(h) * 3600 + int(m) * 60 + float(s)
        except ValueError:
            seconds = None
    if seconds is None or not rate:
        return None
    return round(seconds * float(rate))


class VideoReader:
    """Decode one video file: its RGB frames in display order, and its audio packets for copying.

    Args:
        path: the video file.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not a readable video or has no video stream.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        av = require_av()
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no such video file: {self.path}")
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a directory, not a video")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as e:
            raise _unreadable(self.path, e) from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{self.path} has no video stream")
        self._video = self._container.streams.video[0]
        self._audio = list(self._container.streams.audio)
        v = self._video
        rate = v.average_rate or v.guessed_rate or v.base_rate
        if not rate or not v.width or not v.height:
            self._container.close()
            raise ValueError(f"{self.path} is not a readable video: no frame size or frame rate in its header")
        self.info = VideoInfo(
            width=int(v.width),
            height=int(v.height),
            fps=Fraction(rate),
            time_base=Fraction(v.time_base) if v.time_base else 1 / Fraction(rate),
            frames=_declared_frames(self._container, v),
            codec=v.codec_context.name,
            audio=tuple(s.codec_context.name for s in self._audio),
        )
        self.decoded = 0
        self.corrupt = 0

    @property
    def format_name(self) -> str:
        """FFmpeg's name for the input's container format (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"avi"``, ...)."""
        return str(self._container.format.name)

    @property
    def audio_streams(self) -> list[Any]:
        """The input's audio streams (templates for the output's)."""
        return list(self._audio)

    def items(self, audio: bool = True) -> Iterator[tuple[str, Any]]:
        """Frames and audio packets in file order: ``("frame", (rgb, pts))`` with ``rgb`` ``(H, W, 3)``
        uint8 and ``pts`` in :attr:`VideoInfo.time_base` units (``None`` when unknown), and
        ``("audio", packet)``.

        Raises:
            ValueError: when the stream cannot be decoded (damaged data).
        """
        av = require_av()
        streams = [self._video, *self._audio] if audio else [self._video]
        try:
            for packet in self._container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.size and packet.dts is not None:
                        yield "audio", packet
                    continue
                for frame in packet.decode():
                    self.decoded += 1
                    self.corrupt += bool(getattr(frame, "is_corrupt", False))
                    yield "frame", (frame.to_ndarray(format="rgb24"), frame.pts)
        except av.FFmpegError as e:
            raise _unreadable(self.path, e) from None

    def frames(self) -> Iterator[np.ndarray]:
        """The RGB frames ``(H, W, 3)`` uint8 only."""
        for kind, item in self.items(audio=False):
            if kind == "frame":
                yield item[0]

    def check_complete(self) -> None:
        """Raise if fewer frames were decoded than the file declares, or a GIF lacks its trailer.

        Raises:
            ValueError: naming the file, what was decoded and what was declared.
        """
        expected = self.info.frames
        if self.decoded == 0:
            raise ValueError(f"{self.path} is not a readable video: no frame could be decoded")
        if expected is not None and self.decoded < expected - max(1, round(0.02 * expected)):
            raise ValueError(
                f"{self.path} is truncated or damaged: decoded {self.decoded} of the {expected} frames its header "
                "declares"
            )
        if self.format_name == "gif" and not _has_gif_trailer(self.path):
            raise ValueError(f"{self.path} is truncated: the GIF ends without its trailer byte")
        if self.corrupt:
            logger.warning("%s: %d of %d frames were decoded from damaged data", self.path, self.corrupt, self.decoded)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_gif_trailer(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b";"


class VideoWriter:
    """Encode RGB frames (and mux copied audio packets) into one video file.

    Args:
        path: the file to write (usually a temporary name; see :func:`~expertcolor.video.colorize_video`).
        format: FFmpeg muxer name (see :func:`container_format`).
        info: the source's :class:`VideoInfo` (size, rate and timestamp unit are kept).
        codec: encoder name (``libx264``, ``libx265``, ``libvpx-vp9``, ``gif``, ...).
        crf: constant-quality level for encoders that have one (see :data:`DEFAULT_CRF`); ``None``: default.
        pix_fmt: pixel format; ``yuv420p`` becomes ``yuv444p`` for odd frame sizes (4:2:0 needs even ones).
            Ignored for GIF, which gets a palette per frame.
        options: extra encoder options (FFmpeg names, e.g. ``{"preset": "slow"}``).
        audio: input audio streams whose packets will be copied.
        index_timestamps: number frames ``0, 1, 2, ...`` at ``1 / fps`` instead of keeping their
            timestamps (for AVI, whose decoded timestamps are unreliable).

    Raises:
        ValueError: for an unknown encoder, a crf the encoder does not take, or audio the container
            cannot hold.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        format: str,
        info: VideoInfo,
        codec: str,
        crf: int | None = None,
        pix_fmt: str = "yuv420p",
        options: Mapping[str, str] | None = None,
        audio: list[Any] | tuple[Any, ...] = (),
        index_timestamps: bool = False,
    ) -> None:
        av = require_av()
        self._container = av.open(str(path), "w", format=format)
        try:
            self._setup(av, info, codec, crf, pix_fmt, dict(options or {}), list(audio), index_timestamps)
        except BaseException:
            self._container.close()
            raise
        self.written = 0
        self._last_pts: int | None = None

    def _setup(self, av: ModuleType, info: VideoInfo, codec: str, crf: int | None, pix_fmt: str,
               options: dict[str, str], audio: list[Any], index_timestamps: bool) -> None:
        supported = self._container.supported_codecs
        try:
            encoder = av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - PyAV raises several kinds for unknown names
            raise ValueError(f"unknown video encoder {codec!r}; e.g. libx264, libx265, libvpx-vp9, gif") from None
        if encoder.type != "video":
            raise ValueError(f"{codec!r} is not a video encoder")
        if codec not in supported and encoder.name not in supported:
            fmt = self._container.format.name
            raise ValueError(f"the {fmt} container cannot hold {codec} video; choose another --codec or container")
        for s in audio:
            if s.codec_context.name not in supported:
                raise ValueError(
                    f"the {self._container.format.name} container cannot hold the input's {s.codec_context.name} "
                    "audio, which is copied unchanged; write a .mkv or .mov, which hold any audio"
                )
        self._gif = codec == "gif"
        self._index = index_timestamps
        self._step = max(1, round(1 / (info.fps * info.time_base)))  # ticks per frame at the average rate
        stream = self._container.add_stream(codec, rate=info.fps)
        stream.width, stream.height = info.width, info.height
        if self._gif:
            pix_fmt = "pal8"
        elif pix_fmt in ("yuv420p", "yuvj420p") and (info.width % 2 or info.height % 2):
            logger.info("odd frame size %dx%d: encoding yuv444p instead of %s", info.width, info.height, pix_fmt)
            pix_fmt = "yuv444p"
        stream.pix_fmt = pix_fmt
        time_base = 1 / info.fps if index_timestamps else info.time_base
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if crf is None:
            crf = DEFAULT_CRF.get(codec)
        elif codec not in DEFAULT_CRF:
            raise ValueError(f"the {codec} encoder has no crf setting; leave it unset (crf is for {list(DEFAULT_CRF)})")
        if crf is not None:
            options.setdefault("crf", str(int(crf)))
            if codec == "libvpx-vp9":
                options.setdefault("b", "0")  # constant quality, no bitrate cap
                options.setdefault("row-mt", "1")
                options.setdefault("deadline", "good")
                options.setdefault("cpu-used", "4")
        self._hd = info.height >= 720
        if pix_fmt.startswith("yuv"):
            stream.codec_context.colorspace = 1 if self._hd else 6  # BT.709 / BT.601 (SMPTE 170M)
            stream.codec_context.color_primaries = 1 if self._hd else 6
            stream.codec_context.color_trc = 1 if self._hd else 6
            stream.codec_context.color_range = 1  # limited ("MPEG")
        stream.options = options
        self._stream = stream
        self._pix_fmt = pix_fmt
        self._audio = {s.index: self._container.add_stream_from_template(s) for s in audio}

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """Encode one frame ``(H, W, 3)`` uint8 with timestamp ``pts`` (source time base; ``None``:
        one frame after the last)."""
        av = require_av()
        if self._index:
            pts = self.written  # the time base is 1 / fps
        elif pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._step
        self._last_pts = pts
        if self._gif:
            frame = _palette_frame(av, rgb)
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if self._pix_fmt.startswith("yuv"):
                frame = frame.reformat(
                    format=self._pix_fmt, dst_colorspace="itu709" if self._hd else "itu601", dst_color_range="MPEG"
                )
        frame.pts = pts
        frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.written += 1

    def mux_audio(self, packet: Any) -> None:
        """Copy one demuxed audio packet into the matching output stream, unchanged."""
        packet.stream = self._audio[packet.stream.index]
        self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()

    def abort(self) -> None:
        """Close without flushing (the file is to be discarded)."""
        with contextlib.suppress(Exception):  # the file is being thrown away
            self._container.close()


def _palette_frame(av: ModuleType, rgb: np.ndarray) -> Any:
    """A ``pal8`` frame: ``rgb`` reduced to its own 256-colour palette (PIL's octree quantizer)."""
    q = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE)
    pal = np.asarray(q.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    argb = np.zeros((256, 4), dtype=np.uint8)
    argb[: len(pal), 0] = 255
    argb[: len(pal), 1:] = pal
    return av.VideoFrame.from_ndarray((np.asarray(q, dtype=np.uint8), argb), format="pal8")
