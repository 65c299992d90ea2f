"""Load whichever segmenter a directory holds."""

from __future__ import annotations

import os
from pathlib import Path

from ..modeling import read_json
from .base import Segmenter
from .smp_segmenter import GraySegmenter
from .torchvision_segmenter import TorchvisionSegmenter

_TYPES = {cls.model_type: cls for cls in (GraySegmenter, TorchvisionSegmenter)}


def load_segmenter(directory: str | os.PathLike) -> Segmenter:
    """Load a segmenter saved with ``save_pretrained`` (dispatches on ``config.json``'s type).

    Raises:
        FileNotFoundError: if the directory or its files are missing.
        ValueError: for an unknown segmenter type.
    """
    kind = read_json(Path(directory) / "config.json").get("type")
    if kind not in _TYPES:
        raise ValueError(f"{directory}: unknown segmenter type {kind!r}; known: {sorted(_TYPES)}")
    return _TYPES[kind].from_pretrained(directory)
