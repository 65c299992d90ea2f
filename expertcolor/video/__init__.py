"""Video: colorize films and clips frame by frame with state carried between frames, and keep their timing and sound.

Public API::

    from expertcolor import ExpertColorizer
    from expertcolor.video import colorize_video, colorize_frames

    colorizer = ExpertColorizer.from_pretrained()
    report = colorize_video(colorizer, "clip.mp4", "clip_color.mp4")   # needs PyAV: expertcolor[video]
    for rgb in colorize_frames(colorizer, my_frames):                  # frames you bring yourself
        ...

Decoding and encoding need PyAV (``pip install "expertcolor[video]"``), imported on first use; the
frame API (:func:`colorize_frames`, :class:`FrameColorizer`) does not.
"""

from .colorize import FrameColorizer, VideoReport, colorize_frames, colorize_video, colorize_video_file, video_strip
from .io import DEFAULT_CRF, VIDEO_EXTENSIONS, VideoInfo, VideoReader, VideoWriter, is_video, require_av
from .motion import create_motion, list_motions
from .stabilize import TemporalConfig, TemporalSmoother

__all__ = [
    "VIDEO_EXTENSIONS",
    "DEFAULT_CRF",
    "is_video",
    "require_av",
    "colorize_video",
    "colorize_video_file",
    "colorize_frames",
    "FrameColorizer",
    "VideoReport",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "TemporalConfig",
    "TemporalSmoother",
    "create_motion",
    "list_motions",
    "video_strip",
]
