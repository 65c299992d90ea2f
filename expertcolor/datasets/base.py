"""Shared sample logic: decode, skip bad files, augment, convert to (L, ab).

Every dataset in this package is a list of image files (plus an optional crop box per file) and
inherits :class:`LabDataset`, which turns item ``i`` into ``(L, ab)``:

* decode with PIL (JPEG draft mode when the file is much larger than needed), EXIF-orient, RGB;
* skip files that cannot be read or are grayscale (mean of ``max(R,G,B) - min(R,G,B)`` below
  ``min_chroma`` on the 0..255 scale) — the item is replaced by the next good one and the skip is
  recorded in a shared-memory table, so counts survive DataLoader worker processes;
* augment with a random resized crop and a horizontal flip drawn from a generator seeded by
  ``(seed, epoch, index)``: the result does not depend on worker count or order, and a resumed
  run sees the same samples;
* convert to Lab with :func:`expertcolor.color.rgb_to_lab`.

With :meth:`LabDataset.use_cache` the first three steps happen once per photo
(:mod:`expertcolor.datasets.cache`) and an item is a crop of the stored uint8 Lab.

With :meth:`LabDataset.with_pixel_weights` the item's target carries a third channel: a per-pixel
loss weight looked up from a label map that mirrors the image (same crop and flip), so an expert
can learn only from the pixels routing will send it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import ConcatDataset, Dataset, Subset

from ..color import rgb_to_lab
from ..files import IMAGE_EXTENSIONS, MIN_CHROMA, list_images, mean_chroma, open_label_map
from .cache import NOT_CACHED, LabCache, decode_lab_u8

__all__ = [
    "IMG_EXTENSIONS",
    "LabelMapError",
    "Sample",
    "Augment",
    "LabDataset",
    "ImageDataset",
    "list_images",
    "seeded_split",
    "set_epoch",
    "skip_stats",
    "iter_base_datasets",
]

IMG_EXTENSIONS = IMAGE_EXTENSIONS  # the older name, kept for imports

#: Codes of the shared skip table.
OK, UNREADABLE, GRAYSCALE = 0, 1, 2


@dataclass(frozen=True)
class Sample:
    """One image file, optionally cropped to ``box = (left, top, right, bottom)`` (original pixels)."""

    path: str
    box: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random resized crop (area fraction ``scale``, aspect ``ratio``) + flip.

    ``Augment(enabled=False)`` gives the evaluation transform: centre square crop, resize.
    """

    enabled: bool = True
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True


def seeded_split(items: Sequence, split: str, val_fraction: float, seed: int) -> list:
    """Deterministic train/val split of ``items`` (sorted first, so listing order does not matter).

    Args:
        items: anything sortable.
        split: ``"train"`` or ``"val"`` (``"test"`` is an alias of ``"val"``).
        val_fraction: fraction in ``[0, 1)`` held out for validation (at least one item when > 0).
        seed: split seed (independent of the training seed).
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    items = sorted(items)
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = max(1, round(val_fraction * len(items))) if val_fraction > 0 and len(items) > 1 else 0
    chosen = sorted(order[:n_val]) if split != "train" else sorted(order[n_val:])
    return [items[i] for i in chosen]


def _crop_params(
    width: float, height: float, aug: Augment, rng: np.random.Generator
) -> tuple[float, float, float, float]:
    """torchvision ``RandomResizedCrop.get_params`` with a numpy generator; returns (l, t, r, b)."""
    area = width * height
    log_ratio = (math.log(aug.ratio[0]), math.log(aug.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*aug.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, int(height - h) + 1))
            left = int(rng.integers(0, int(width - w) + 1))
            return left, top, left + w, top + h
    return _center_square(width, height)


def _center_square(width: float, height: float) -> tuple[float, float, float, float]:
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def decode_rgb(path: str, min_side: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Open an image as RGB, EXIF-oriented.

    Args:
        path: image file.
        min_side: when set, JPEGs are decoded in draft mode (DCT scaling) to the smallest size whose
            sides stay at least this large — much faster for big photos.

    Returns:
        The RGB image and its original ``(width, height)`` (after EXIF orientation), so crop boxes
        given in original pixels can be rescaled.

    Raises:
        OSError / ValueError: when PIL cannot read the file.
    """
    with Image.open(path) as im:
        orig = im.size
        transposed = _exif_transposes(im)
        if min_side is not None and im.format == "JPEG":
            im.draft("RGB", (min_side, min_side))
        im.load()
        img = ImageOps.exif_transpose(im) if transposed else im
        img = img.convert("RGB")
    if transposed:
        orig = (orig[1], orig[0])
    return img, orig


def _exif_transposes(im: Image.Image) -> bool:
    try:
        return im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:  # noqa: BLE001 - broken EXIF is not our problem
        return False


def rgb_uint8_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor ``(3, H, W)`` in ``[0, 1]``."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255.0)


class ImageDataset(Dataset):
    """Base for datasets of image files with lazy validation, shared skip counting and seeded
    per-(epoch, index) augmentation. Subclasses implement :meth:`_load`.

    Args:
        samples: the files (:class:`Sample` or paths).
        resolution: output side in pixels (square).
        augment: augmentation; ``None`` = :class:`Augment` (enabled).
        seed: augmentation seed.
        name: short description for messages.
    """

    def __init__(
        self,
        samples: Sequence[Sample | str | os.PathLike],
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        name: str = "images",
    ) -> None:
        self.samples = [s if isinstance(s, Sample) else Sample(str(s)) for s in samples]
        if not self.samples:
            raise ValueError(f"{name}: no images found")
        if int(resolution) < 8:
            raise ValueError(f"resolution must be >= 8, got {resolution}")
        self.resolution = int(resolution)
        self.augment = augment if augment is not None else Augment()
        self.seed = int(seed)
        self.name = name
        self.epoch = 0
        # One byte per item in shared memory: DataLoader workers (fork or spawn) write, the main
        # process reads. Known-bad items are skipped without decoding them again.
        self._status = torch.zeros(len(self.samples), dtype=torch.uint8).share_memory_()

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call before building the epoch's loader)."""
        self.epoch = int(epoch)

    def _rng(self, index: int, attempt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index, attempt])

    def _crop_box(self, size: tuple[float, float], rng: np.random.Generator) -> tuple[float, float, float, float]:
        if self.augment.enabled:
            return _crop_params(size[0], size[1], self.augment, rng)
        return _center_square(*size)

    def _draft_side(self) -> int:
        s = self.augment.scale[0] if self.augment.enabled else 1.0
        return int(math.ceil(self.resolution / math.sqrt(max(s, 1e-3))))

    def _load(self, sample: Sample, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        for attempt in range(n):
            j = (index + attempt) % n
            if int(self._status[j]) != OK:
                continue
            try:
                return self._load(self.samples[j], j, self._rng(index, attempt))
            except _GrayscaleError:
                self._status[j] = GRAYSCALE
            except LabelMapError:
                raise
            except Exception:  # noqa: BLE001 - any decode error: skip the file, count it
                self._status[j] = UNREADABLE
        raise NoUsableImagesError(f"{self.name}: none of the {n} images could be used (all unreadable or grayscale)")

    # -- skip accounting ---------------------------------------------------------------------------
    def skip_counts(self) -> dict[str, int]:
        """Files skipped so far (in any process): ``{"unreadable": n, "grayscale": n}``."""
        s = self._status
        return {"unreadable": int((s == UNREADABLE).sum()), "grayscale": int((s == GRAYSCALE).sum())}

    def skipped_paths(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file skipped so far."""
        names = {UNREADABLE: "unreadable", GRAYSCALE: "grayscale"}
        idx = torch.nonzero(self._status).flatten().tolist()
        return [(self.samples[i].path, names[int(self._status[i])]) for i in idx]

    def validate(self) -> dict[str, int]:
        """Decode every file once now (in this process) and return :meth:`skip_counts`."""
        for i, s in enumerate(self.samples):
            if int(self._status[i]) == OK:
                try:
                    self._load(s, i, self._rng(i, 0))
                except _GrayscaleError:
                    self._status[i] = GRAYSCALE
                except Exception:  # noqa: BLE001
                    self._status[i] = UNREADABLE
        return self.skip_counts()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, n={len(self)}, resolution={self.resolution})"


class _GrayscaleError(Exception):
    pass


class NoUsableImagesError(ValueError):
    """Every image of a dataset is unreadable or grayscale, so it has nothing to train on."""


class LabelMapError(ValueError):
    """A label map that does not fit its image. Raised, never skipped: a silent skip would train on
    the wrong pixels or quietly drop data."""


class LabDataset(ImageDataset):
    """Colour photos as ``(L, ab)`` training pairs.

    Items:
        ``L``: ``(1, R, R)`` float32 in ``[0, 100]``; ``ab``: ``(2, R, R)`` float32 in Lab units
        (roughly ``[-110, 110]``), ``R = resolution``. After :meth:`with_pixel_weights` the target
        is ``(3, R, R)``: ab, then a per-pixel loss weight in ``[0, 1]``.

    Args:
        samples: image files (:class:`Sample` for a crop box).
        resolution: output side.
        augment: see :class:`Augment`; pass ``Augment(enabled=False)`` for validation.
        seed: augmentation seed.
        min_chroma: images whose mean chroma (0..255 scale) is below this are skipped as grayscale.
        name: description for messages.
    """

    def __init__(
        self,
        samples: Sequence[Sample | str | os.PathLike],
        resolution: int = 128,
        augment: Augment | None = None,
        seed: int = 0,
        min_chroma: float = MIN_CHROMA,
        name: str = "images",
    ) -> None:
        super().__init__(samples, resolution, augment, seed, name)
        self.min_chroma = float(min_chroma)
        self.label_paths: list[str] | None = None
        self.pixel_weight_table: np.ndarray | None = None
        self._cache: LabCache | None = None

    def with_pixel_weights(
        self,
        table: np.ndarray | None = None,
        images_root: str | os.PathLike | None = None,
        labels_root: str | os.PathLike | None = None,
    ) -> LabDataset:
        """Give every pixel a loss weight: ``table[label]`` from a label map mirroring the image, or
        1 everywhere without ``labels_root`` (a source whose every pixel counts, trained beside
        labelled ones: the targets of one batch must have the same channels).

        The label of ``images_root/<rel>/<stem>.<ext>`` is ``labels_root/<rel>/<stem>.png`` (8-bit
        class ids at the image's size, e.g. a segmentation teacher's output), cropped, resized
        (nearest) and flipped with the image.

        Args:
            table: ``(256,)`` weights in ``[0, 1]``, indexed by class id (needed with ``labels_root``).
            images_root: the folder the samples' paths are relative to (the dataset root).
            labels_root: the mirrored folder of label maps; ``None`` = weight 1 everywhere.

        Returns:
            ``self``.

        Raises:
            FileNotFoundError: if ``labels_root`` or any sample's label map is missing.
            ValueError: if ``table`` is not 256 weights in ``[0, 1]`` or a sample lies outside
                ``images_root``.
        """
        if labels_root is None:
            self.label_paths, self.pixel_weight_table = None, np.ones(256, np.float32)
            return self
        self._cache = None  # a cache holds the label maps it was built with: attach labels first
        table = np.asarray(table, dtype=np.float32) if table is not None else np.zeros(0, np.float32)
        if table.shape != (256,) or not np.all((table >= 0) & (table <= 1)):
            raise ValueError(f"pixel weight table must be 256 values in [0, 1], got shape {table.shape}")
        if images_root is None:
            raise ValueError("images_root is needed to mirror the images into labels_root")
        images_root, labels_root = Path(images_root).resolve(), Path(labels_root)
        if not labels_root.is_dir():
            raise FileNotFoundError(f"label folder not found: {labels_root}")
        paths, missing = [], []
        for s in self.samples:
            try:
                rel = Path(s.path).resolve().relative_to(images_root)
            except ValueError:
                raise ValueError(f"{s.path} is not below {images_root}; cannot mirror it into {labels_root}") from None
            lbl = labels_root / rel.with_suffix(".png")
            paths.append(str(lbl))
            if not lbl.is_file():
                missing.append(str(lbl))
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(paths)} images of {self.name} have no label map in {labels_root} "
                f"(first: {missing[0]})"
            )
        self.label_paths, self.pixel_weight_table = paths, table
        return self

    def load_rgb(self, sample: Sample, rng: np.random.Generator) -> torch.Tensor:
        """The augmented RGB crop ``(3, R, R)`` in ``[0, 1]`` (raises on bad / grayscale files)."""
        return rgb_uint8_to_tensor(self._augmented(sample, rng)[0])

    def _decoded(
        self, sample: Sample, label_path: str | None, min_side: int
    ) -> tuple[Image.Image, Image.Image | None]:
        """The photo in its crop box, checked for colour, and its label map in its own pixels.

        JPEGs are draft-decoded to the smallest size whose sides stay at least ``min_side``; the label
        map (when ``label_path``) keeps its full size, cropped to the same box.
        """
        img, orig = decode_rgb(sample.path, min_side)
        label = None
        if label_path is not None:
            label = open_label_map(label_path)
            if label.size != orig:
                raise LabelMapError(f"label map {label_path} is {label.size}, image {sample.path} is {orig}")
        sx, sy = img.size[0] / orig[0], img.size[1] / orig[1]
        if sample.box is not None:
            x0, y0, x1, y1 = sample.box
            img = img.crop((round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)))
            if label is not None:
                label = label.crop((round(x0), round(y0), round(x1), round(y1)))
        if self.min_chroma > 0 and mean_chroma(img) < self.min_chroma:
            raise _GrayscaleError(sample.path)
        return img, label

    def _augmented(
        self, sample: Sample, rng: np.random.Generator, label_path: str | None = None
    ) -> tuple[Image.Image, Image.Image | None]:
        """The augmented crop, and the label map under the same crop and flip when ``label_path``."""
        img, label = self._decoded(sample, label_path, self._draft_side())
        return self._crop_flip(img, label, rng)

    def _crop_flip(
        self, img: Image.Image, label: Image.Image | None, rng: np.random.Generator
    ) -> tuple[Image.Image, Image.Image | None]:
        """Random resized crop (or the centre square) to ``resolution``, then the random flip."""
        box = self._crop_box(img.size, rng)
        size = (self.resolution, self.resolution)
        out = img.resize(size, Image.BILINEAR, box=box)
        if label is not None:  # the same box in the label's own pixels (the image may be draft-decoded)
            fx, fy = label.size[0] / img.size[0], label.size[1] / img.size[1]
            label = label.resize(size, Image.NEAREST, box=(box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy))
        if self.augment.enabled and self.augment.flip and rng.random() < 0.5:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
            if label is not None:
                label = label.transpose(Image.FLIP_LEFT_RIGHT)
        return out, label

    def use_cache(self, cache: LabCache | None) -> LabDataset:
        """Draw items from a decode-once cache (:func:`~expertcolor.datasets.cache.build_lab_cache`
        of this dataset) instead of decoding files; ``None`` goes back to the files.

        Returns:
            ``self``.

        Raises:
            ValueError: if the cache holds a different number of photos or lacks the label channel.
        """
        if cache is not None:
            if len(cache) != len(self.samples):
                raise ValueError(f"{self.name}: the cache at {cache.path} has {len(cache)} photos, "
                                 f"the dataset {len(self.samples)}; build the cache of this dataset")
            if (cache.channels == 4) != (self.label_paths is not None):
                raise ValueError(f"{self.name}: the cache at {cache.path} was built "
                                 f"{'with' if cache.channels == 4 else 'without'} label maps; rebuild it "
                                 "after attaching the dataset's route labels")
            known = cache.status != NOT_CACHED
            self._status[torch.from_numpy(known)] = torch.from_numpy(cache.status[known])
        self._cache = cache
        return self

    def _load(self, sample: Sample, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None and self._cache.has(index):
            arr = self._cache[index]
            img = Image.fromarray(np.ascontiguousarray(arr[..., :3]))  # Lab bytes: resized channel-wise
            label = Image.fromarray(np.ascontiguousarray(arr[..., 3])) if arr.shape[-1] == 4 else None
            out, label = self._crop_flip(img, label, rng)
            L, ab = decode_lab_u8(np.asarray(out))
        else:
            label_path = self.label_paths[index] if self.label_paths is not None else None
            img, label = self._augmented(sample, rng, label_path)
            lab = rgb_to_lab(rgb_uint8_to_tensor(img))
            L, ab = lab[:1].contiguous(), lab[1:].contiguous()
        if self.pixel_weight_table is None:
            return L, ab
        if label is None:
            weight = torch.ones(L.shape[-2:])
        else:
            weight = torch.from_numpy(self.pixel_weight_table[np.asarray(label, dtype=np.uint8)])
        return L, torch.cat([ab, weight[None]], 0)


# -- helpers that see through Subset / ConcatDataset ---------------------------------------------------
def iter_base_datasets(ds: Dataset) -> Iterator[ImageDataset]:
    """Every :class:`ImageDataset` inside ``ds`` (through ``Subset`` and ``ConcatDataset``)."""
    if isinstance(ds, ImageDataset):
        yield ds
    elif isinstance(ds, Subset):
        yield from iter_base_datasets(ds.dataset)
    elif isinstance(ds, ConcatDataset):
        for d in ds.datasets:
            yield from iter_base_datasets(d)


def check_usable(ds: Dataset) -> None:
    """Load one item of every :class:`ImageDataset` inside ``ds``, in this process, before training.

    A dataset whose images are all unreadable or grayscale (or whose label maps do not fit) fails
    here with its own message, instead of as a traceback from inside a DataLoader worker mid-run.
    Each probe stops at the first usable image, and items are seeded by index, so nothing that
    training draws later changes.

    Raises:
        NoUsableImagesError: naming the dataset that has no usable image.
        LabelMapError: for a label map that does not fit its image.
    """
    for d in iter_base_datasets(ds):
        if len(d):
            d[0]


def set_epoch(ds: Dataset, epoch: int) -> None:
    """Call ``set_epoch`` on every dataset inside ``ds``."""
    for d in iter_base_datasets(ds):
        d.set_epoch(epoch)


def skip_stats(ds: Dataset) -> dict[str, int]:
    """Summed :meth:`ImageDataset.skip_counts` of every dataset inside ``ds``."""
    total = {"unreadable": 0, "grayscale": 0}
    for d in iter_base_datasets(ds):
        for k, v in d.skip_counts().items():
            total[k] += v
    return total
