"""The evaluation loop: colorize the L of every colour photo in a folder with each variant and score it.

Each colour photo is reduced to its lightness L, colorized by one or more variants (see
:mod:`expertcolor.evaluation.variants`), and compared with its true colours (8-bit RGB at full
resolution; see :mod:`expertcolor.evaluation.scores` for the metrics and how they are aggregated).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .. import metrics as M
from ..colorizer import ExpertColorizer
from ..experts import Expert
from ..files import is_grayscale, list_images, read_label_map
from ..io import open_image
from .report import build_report
from .scores import image_metrics
from .variants import build_variants, default_generalist_dir, resolve_variants

__all__ = ["EvalPhoto", "list_photos", "load_eval_photo", "evaluate"]


def list_photos(directory: str | os.PathLike) -> list[Path]:
    """The photos an evaluation reads: image files below ``directory`` (:func:`expertcolor.files.list_images`:
    recursive, sorted, hidden files skipped, :data:`~expertcolor.files.IMAGE_EXTENSIONS`).

    Raises:
        NotADirectoryError: if ``directory`` is not a folder.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"image folder not found: {directory}")
    return list_images(directory)


@dataclass
class EvalPhoto:
    """One colour photo with what its scores need.

    Attributes:
        name: path relative to the image folder (POSIX), the key of every per-image record.
        rgb: the true colours ``(H, W, 3)`` uint8.
        groups: its ground-truth group mask ``(H, W)`` (0..3, 255 ignored), or ``None`` without one.
        lab: ``rgb`` in CIELAB ``(H, W, 3)``.
        band: the boundary band of ``groups`` ``(H, W)`` bool, or ``None``.
    """

    name: str
    rgb: np.ndarray
    groups: np.ndarray | None
    lab: np.ndarray
    band: np.ndarray | None


def _load_groups(groups_dir: Path | None, image: Path, images_dir: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if groups_dir is None:
        return None
    path = groups_dir / image.relative_to(images_dir).with_suffix(".png")
    if not path.is_file():
        return None
    groups = read_label_map(path)
    if groups.shape != shape:
        raise ValueError(f"{path}: mask size {groups.shape[::-1]} differs from the photo's {shape[::-1]}")
    return groups


def load_eval_photo(path: Path, images_dir: Path, groups_dir: Path | None, band_width: int) -> EvalPhoto:
    """A photo with its group mask ``groups_dir/<relative path>.png`` (``None`` without one), boundary band
    and CIELAB.

    Raises:
        ValueError: for an unreadable photo, or a mask whose size differs from the photo's.
    """
    rgb = np.asarray(open_image(path).convert("RGB"))
    groups = _load_groups(groups_dir, path, images_dir, rgb.shape[:2])
    band = M.boundary_band(groups, band_width) if groups is not None else None
    return EvalPhoto(path.relative_to(images_dir).as_posix(), rgb, groups, M.rgb_to_lab(rgb), band)


def evaluate(
    colorizer: ExpertColorizer,
    images_dir: str | os.PathLike,
    groups_dir: str | os.PathLike | None = None,
    variants: str | Sequence[str] | None = ("routed", "gray"),
    generalist: str | os.PathLike | Expert | None = None,
    band_width: int = 8,
    max_images: int | None = None,
    saturation: float = 1.0,
    progress: bool | None = None,
    prior_correction: float | None = None,
) -> dict[str, Any]:
    """Colorize the L of every colour photo in ``images_dir`` and compare with the true colours.

    Args:
        colorizer: the routed model (also supplies the experts for ``expert:<name>`` variants).
        images_dir: folder of colour photos (searched recursively).
        groups_dir: folder of group masks ``<relative path>.png`` (0 background, 1 person, 2 bird,
            3 animal, 255 ignore); photos without a mask get overall metrics only.
        variants: a list of names (see :mod:`~expertcolor.evaluation.variants`; ``"experts"`` expands
            to every expert), or a comma-separated string of variants to compare with ``"routed"``
            (see :func:`~expertcolor.evaluation.variants.resolve_variants`); ``None``: routed,
            generalist (when available), experts, gray.
        generalist: expert directory (or :class:`~expertcolor.Expert`) for the ``generalist``
            variant; default :func:`~expertcolor.evaluation.variants.default_generalist_dir`.
        band_width: boundary band half-width in pixels.
        max_images: evaluate only the first N photos (sorted by path).
        saturation: chroma multiplier for the model variants.
        progress: show a progress bar (``None``: only on a terminal).
        prior_correction: decode the generalist with this ``prior_correction`` (pass the value
            the routed model's experts use, so both decode alike); ``None``: its own.

    Returns:
        ``{"images_dir", "groups_dir", "variants": [...], "aggregation": {...},
        "results": {variant: {"overall", "groups", "boundary"}}, "per_image": {variant: {image: {...}}},
        "grayscale_photos": [image, ...]}``; the last lists the photos without colour (their metrics
        reward no colour; :func:`~expertcolor.evaluation.report.to_markdown` warns about them).

    Raises:
        NotADirectoryError: if a folder is missing.
        ValueError: for no images, unknown variants, ``oracle`` without ``groups_dir``, or
            mismatched masks.
    """
    images_dir = Path(images_dir)
    groups_path = Path(groups_dir) if groups_dir is not None else None
    if groups_path is not None and not groups_path.is_dir():
        raise NotADirectoryError(f"group mask folder not found: {groups_path}")
    paths = list_photos(images_dir)[:max_images]
    if not paths:
        raise ValueError(f"no images found in {images_dir}")
    if generalist is None:
        generalist = default_generalist_dir()
    names = resolve_variants(variants, colorizer.experts, generalist is not None)
    if "oracle" in names and groups_path is None:
        raise ValueError("variant 'oracle' routes by the ground-truth group masks: give their folder (--groups DIR)")
    runners = build_variants(colorizer, names, generalist, saturation, prior_correction)
    per_image: dict[str, dict[str, Any]] = {v: {} for v in names}
    grayscale: list[str] = []
    for path in tqdm(paths, desc="evaluate", unit="img", disable=None if progress is None else not progress):
        photo = load_eval_photo(path, images_dir, groups_path, band_width)
        if is_grayscale(Image.fromarray(photo.rgb)):  # the rule training skips them by
            grayscale.append(photo.name)
        for v, run in runners.items():
            out = np.asarray(run(photo.rgb, photo.groups))[..., :3]
            per_image[v][photo.name] = image_metrics(
                out, photo.rgb, photo.groups, band_width, lab_gt=photo.lab, band=photo.band
            )
    report = build_report(per_image, images_dir, groups_path, repr(colorizer), band_width)
    # A black-and-white "ground truth" has no colour to compare with: it rewards no colour.
    report["grayscale_photos"] = grayscale
    return report
