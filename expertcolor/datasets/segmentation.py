"""Image + label-map pairs for training the grayscale segmenter.

Layout: an images root and a labels root whose relative paths mirror each other; the label of
``images/<rel>/<stem>.<ext>`` is ``labels/<rel>/<stem>.png`` (8-bit class ids, 255 = ignore; read
with :func:`~expertcolor.files.open_label_map`). Several such root pairs train on their union
(:func:`segmentation_pairs`). Which pairs are held out (:data:`SPLIT_RULES`):

* ``"seeded"``: a seeded ``val_fraction`` of each root's pairs;
* ``"layout"``: each images root's own split where it has one — ``train/`` beside ``val/`` (or
  ``test/``) subfolders, as ``--dataset folder`` reads them, or a CUB-200-2011 tree (``images.txt``
  and ``train_test_split.txt`` in the root or in its ``CUB_200_2011/``) by its official flags —
  and a seeded split for a root without one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..files import open_label_map, read_label_map
from .base import Augment, ImageDataset, Sample, decode_rgb, list_images, seeded_split
from .cub import _read_table
from .folder import split_dir

__all__ = ["IGNORE_INDEX", "SPLIT_RULES", "SegmentationPairs", "find_pairs", "split_pairs", "segmentation_pairs"]

IGNORE_INDEX = 255
#: How :func:`split_pairs` holds out validation pairs (see the module docstring).
SPLIT_RULES: tuple[str, ...] = ("seeded", "layout")


def find_pairs(images_root: str | os.PathLike, labels_root: str | os.PathLike) -> list[tuple[str, str]]:
    """``(image, label)`` paths for every image below ``images_root`` whose mirrored label exists.

    Raises:
        FileNotFoundError: if a root does not exist.
    """
    images_root, labels_root = Path(images_root), Path(labels_root)
    for r, what in ((images_root, "images"), (labels_root, "labels")):
        if not r.is_dir():
            raise FileNotFoundError(f"{what} root not found: {r}")
    pairs = []
    for img in list_images(images_root):
        lbl = labels_root / img.relative_to(images_root).with_suffix(".png")
        if lbl.is_file():
            pairs.append((str(img), str(lbl)))
    return pairs


def _cub_dir(root: Path) -> Path | None:
    """The CUB-200-2011 folder at ``root`` (itself or its ``CUB_200_2011/``), if there is one."""
    return next((c for c in (root, root / "CUB_200_2011") if (c / "images.txt").is_file()), None)


def split_pairs(
    images_root: str | os.PathLike,
    labels_root: str | os.PathLike,
    split: str | None = "train",
    rule: str = "seeded",
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> list[tuple[str, str]]:
    """The ``(image, label)`` pairs of one mirrored root pair (:func:`find_pairs`) in ``split``.

    Args:
        images_root, labels_root: the mirrored roots.
        split: ``"train"``, ``"val"`` (``"test"`` = ``"val"``), or None for every pair.
        rule: one of :data:`SPLIT_RULES`: ``"seeded"``, or ``"layout"`` (the images root's own
            split when it has one, else seeded).
        val_fraction, split_seed: the seeded split.

    Raises:
        FileNotFoundError: if a root (or a CUB tree's ``train_test_split.txt``) is missing.
        ValueError: for an unknown ``split`` or ``rule``.
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; choose from {list(SPLIT_RULES)}")
    if split not in ("train", "val", "test", None):
        raise ValueError(f"split must be 'train', 'val', 'test' or None, got {split!r}")
    images_root = Path(images_root)
    pairs = find_pairs(images_root, labels_root)
    if split is None:
        return pairs
    if rule == "layout":
        cub = _cub_dir(images_root)
        if cub is not None:
            images = _read_table(cub / "images.txt", 1)
            flags = _read_table(cub / "train_test_split.txt", 1)
            want = "1" if split == "train" else "0"
            keep = {(cub / "images" / rel).as_posix() for i, (rel,) in images.items() if flags.get(i, ["0"])[0] == want}
            return [(i, lb) for i, lb in pairs if Path(i).as_posix() in keep]  # images outside images.txt: neither
        own = split_dir(images_root, split)
        if own is not None:
            return [(i, lb) for i, lb in pairs if Path(i).relative_to(images_root).parts[0] == own.name]
    return seeded_split(pairs, split, val_fraction, split_seed)


def segmentation_pairs(
    images_roots: Sequence[str | os.PathLike],
    labels_roots: Sequence[str | os.PathLike],
    split: str | None = "train",
    rule: str = "seeded",
    val_fraction: float = 0.1,
    split_seed: int = 0,
) -> list[tuple[str, str]]:
    """:func:`split_pairs` of several root pairs, concatenated in their order.

    Raises:
        ValueError: if the counts of images and labels roots differ, or no pair is found.
        FileNotFoundError: see :func:`split_pairs`.
    """
    images_roots, labels_roots = list(images_roots), list(labels_roots)
    if len(images_roots) != len(labels_roots):
        raise ValueError(f"{len(images_roots)} images roots but {len(labels_roots)} labels roots; "
                         "give one labels root per images root")
    pairs = [p for i, lb in zip(images_roots, labels_roots)
             for p in split_pairs(i, lb, split, rule, val_fraction, split_seed)]
    if not pairs:
        where = "" if split is None else f" for split {split!r}"
        raise ValueError(f"no image/label pairs{where} in {[str(r) for r in images_roots]} "
                         f"(labels <stem>.png at the mirrored path in {[str(r) for r in labels_roots]})")
    return pairs


class SegmentationPairs(ImageDataset):
    """``(L, label)`` pairs with the same random crop and flip on both.

    Items:
        ``L``: ``(1, R, R)`` float32 in ``[0, 100]``; ``label``: ``(R, R)`` int64 class ids, 255 =
        ignore (pixels outside the image never occur: crops stay inside).

    Args:
        pairs: ``(image path, label path)``; the label must have the image's size.
        resolution, augment, seed: see :class:`~expertcolor.datasets.base.ImageDataset`.
        name: description for messages.
        mosaic: probability that a training item is a 2x2 mosaic of four items (0 = never).
        paste: probability that 1-3 subjects cut out of other items (by their labels) are pasted
            onto a training item at a smaller scale (copy-paste augmentation; 0 = never).
        paste_scale: the pasted subject's longer side as a fraction of ``resolution`` (min, max).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]],
        resolution: int = 160,
        augment: Augment | None = None,
        seed: int = 0,
        name: str = "segmentation pairs",
        mosaic: float = 0.0,
        paste: float = 0.0,
        paste_scale: tuple[float, float] = (0.2, 0.7),
    ) -> None:
        for what, v in (("mosaic", mosaic), ("paste", paste)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{what} must be a probability in [0, 1], got {v}")
        lo, hi = (float(x) for x in paste_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"paste_scale must be (min, max) with 0 < min <= max <= 1, got {paste_scale}")
        self.mosaic = float(mosaic)
        self.paste = float(paste)
        self.paste_scale = (lo, hi)
        self.label_paths = [str(lb) for _, lb in pairs]
        super().__init__([Sample(str(i)) for i, _ in pairs], resolution, augment, seed, name)

    def load_label(self, index: int) -> np.ndarray:
        """The full label map ``(H, W)`` uint8 of item ``index`` (no augmentation)."""
        return read_label_map(self.label_paths[index])

    def _load(self, sample: Sample, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        from ..color import rgb_to_lab
        from .base import rgb_uint8_to_tensor

        r = self.resolution
        if self.augment.enabled and self.mosaic > 0 and rng.random() < self.mosaic:
            img, label = self._mosaic(index, rng)
        else:
            img, label = self._tile(sample.path, index, rng, (r, r))
        if self.augment.enabled and self.paste > 0 and rng.random() < self.paste:
            img, label = self._paste(img, np.array(label, dtype=np.uint8), rng)
        L = rgb_to_lab(rgb_uint8_to_tensor(img))[:1].contiguous()
        return L, torch.from_numpy(np.asarray(label, dtype=np.int64).copy())

    def _tile(
        self, path: str, index: int, rng: np.random.Generator, size: tuple[int, int]
    ) -> tuple[Image.Image, Image.Image]:
        """Image and label of item ``index``, cropped (randomly when augmenting), resized to ``size`` (w, h)."""
        img, orig = decode_rgb(path, self._draft_side())
        label = open_label_map(self.label_paths[index])
        self._check_size(index, label.size, orig)
        box = self._crop_box(orig, rng)
        img = _resize_box(img, orig, box, size)
        label = label.resize(size, Image.NEAREST, box=box)
        if self.augment.enabled and self.augment.flip and rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            label = label.transpose(Image.FLIP_LEFT_RIGHT)
        return img, label

    def _check_size(self, index: int, label_size: tuple[int, int], image_size: tuple[int, int]) -> None:
        if tuple(label_size) != tuple(image_size):
            raise ValueError(f"label {self.label_paths[index]} is {tuple(label_size)}, "
                             f"image {self.samples[index].path} is {tuple(image_size)}")

    def _mosaic(self, index: int, rng: np.random.Generator) -> tuple[Image.Image, Image.Image]:
        """Four items on a 2x2 grid split at a random point: several smaller subjects in one
        picture, closer to mixed-subject photos than the single-subject crops the data holds."""
        r = self.resolution
        cx, cy = (int(r * f) for f in rng.uniform(0.3, 0.7, size=2))
        others = rng.integers(0, len(self.samples), size=3).tolist()
        img, label = Image.new("RGB", (r, r)), np.zeros((r, r), np.uint8)
        boxes = [(0, 0, cx, cy), (cx, 0, r, cy), (0, cy, cx, r), (cx, cy, r, r)]
        for j, (x0, y0, x1, y1) in zip([index, *others], boxes):
            try:
                ti, tl = self._tile(self.samples[j].path, j, rng, (x1 - x0, y1 - y0))
            except Exception:  # noqa: BLE001 - a bad neighbour must not mark this item unreadable
                ti, tl = self._tile(self.samples[index].path, index, rng, (x1 - x0, y1 - y0))
            img.paste(ti, (x0, y0))
            label[y0:y1, x0:x1] = np.asarray(tl)  # class ids (a "P" label must not go through convert)
        return img, label

    def _subject(self, index: int, rng: np.random.Generator, side: int) -> tuple[Image.Image, np.ndarray] | None:
        """The labelled pixels of item ``index`` cut to their bounding box, longer side ``side``
        (image, label); ``None`` when the item has (almost) no labelled object, or one that fills
        the frame (a face crop cut out is a rectangle, not a subject)."""
        label = self.load_label(index)
        fg = (label != 0) & (label != IGNORE_INDEX)
        if fg.sum() < 16 or fg.mean() > 0.85:
            return None
        ys, xs = np.nonzero(fg)
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        f = side / max(x1 - x0, y1 - y0)
        # Draft-decode just large enough that the subject keeps >= ``side`` pixels.
        img, orig = decode_rgb(self.samples[index].path, math.ceil(min(label.shape) * min(f, 1.0)))
        self._check_size(index, label.shape[::-1], orig)
        size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
        cut = _resize_box(img, orig, (x0, y0, x1, y1), size)
        lab = np.asarray(Image.fromarray(label[y0:y1, x0:x1]).resize(size, Image.NEAREST))
        if self.augment.flip and rng.random() < 0.5:
            cut, lab = cut.transpose(Image.FLIP_LEFT_RIGHT), lab[:, ::-1]
        return cut, lab

    def _paste(
        self, img: Image.Image, label: np.ndarray, rng: np.random.Generator
    ) -> tuple[Image.Image, np.ndarray]:
        """Paste 1-3 subjects of random other items (only their labelled pixels) at random places:
        people, birds and animals small and whole inside other scenes, as in mixed-subject photos."""
        r = self.resolution
        canvas = np.array(img)
        for _ in range(int(rng.integers(1, 4))):
            j = int(rng.integers(0, len(self.samples)))
            side = max(4, round(r * rng.uniform(*self.paste_scale)))
            try:
                got = self._subject(j, rng, side)
            except Exception:  # noqa: BLE001 - a bad donor must not mark this item unreadable
                got = None
            if got is None:
                continue
            cut, lab = got
            h, w = lab.shape
            x0, y0 = int(rng.integers(0, r - w + 1)), int(rng.integers(0, r - h + 1))
            m = (lab != 0) & (lab != IGNORE_INDEX)
            canvas[y0 : y0 + h, x0 : x0 + w][m] = np.asarray(cut)[m]
            label[y0 : y0 + h, x0 : x0 + w][m] = lab[m]
        return Image.fromarray(canvas), label


def _resize_box(
    img: Image.Image, orig: tuple[int, int], box: Sequence[float], size: tuple[int, int]
) -> Image.Image:
    """``box`` (in the photo's original pixels) of ``img`` resized to ``size``; ``img`` may have been
    draft-decoded smaller than the original size ``orig``."""
    sx, sy = img.size[0] / orig[0], img.size[1] / orig[1]
    return img.resize(size, Image.BILINEAR, box=(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
