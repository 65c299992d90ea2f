"""Segmenter types by name: build one (``create_segmenter``) or load whichever a directory holds
(``load_segmenter``, dispatching on its ``config.json`` type)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._registry import Registry, UnknownNameError
from ..modeling import read_json
from .base import Segmenter
from .smp_segmenter import GraySegmenter
from .torchvision_segmenter import TorchvisionSegmenter

__all__ = ["SEGMENTERS", "list_segmenters", "create_segmenter", "load_segmenter"]

#: Segmenter classes by the ``type`` their ``config.json`` carries.
SEGMENTERS: Registry[type[Segmenter]] = Registry("segmenter type")
for _cls in (GraySegmenter, TorchvisionSegmenter):
    SEGMENTERS.register(_cls.model_type, _cls)
del _cls


def list_segmenters() -> list[str]:
    """Names of the segmenter types, sorted."""
    return SEGMENTERS.names()


def create_segmenter(kind: str, config: Any = None) -> Segmenter:
    """A new (untrained) segmenter of type ``kind`` from its config (``None``: the type's defaults).

    Raises:
        KeyError: for an unknown ``kind`` (the message lists the choices).
        TypeError: if ``config`` is not the type's config class.
    """
    return SEGMENTERS.create(kind, config)


def load_segmenter(directory: str | os.PathLike) -> Segmenter:
    """Load a segmenter saved with ``save_pretrained`` (dispatches on ``config.json``'s type).

    Raises:
        FileNotFoundError: if the directory or its files are missing.
        ValueError: for an unknown segmenter type (the message names the directory and the choices).
    """
    kind = read_json(Path(directory) / "config.json").get("type")
    try:
        cls = SEGMENTERS.get(kind)
    except UnknownNameError as e:
        raise ValueError(f"{directory}: {e}") from None
    return cls.from_pretrained(directory)
