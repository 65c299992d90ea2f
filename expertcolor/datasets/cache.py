"""Decode-once training cache: every photo of a :class:`LabDataset` kept as uint8 Lab at training size.

Training draws a new random resized crop of every photo each epoch. Without a cache each draw decodes
the file, checks that it is in colour and converts the crop to Lab (about 9 ms a photo on one core,
most of it the Lab conversion, on top of a training step's compute on the same two cores). With a
cache the photo is decoded, checked, shrunk and converted once; a draw is then a crop and resize of
uint8 arrays.

What is stored, per photo: the decoded image (after the sample's crop box) shrunk so that its short
side is the dataset's decoding size (``resolution / sqrt(smallest crop area)``, the size JPEG draft
decoding aims for; never enlarged), as Lab in uint8: ``round(2.55 L)``, ``a + 128``, ``b + 128``
(clipped to 0..255), plus the label map (nearest) as a fourth channel when the dataset has route
labels. The quantisation (0.39 L, 1 ab unit) is far below the loss's 10-unit colour bins. Files that
cannot be read or are grayscale are recorded as such and skipped without another decode.

Layout: ``<cache_dir>/<key>/pixels.u8`` (every photo's ``(h, w, C)`` array back to back) and
``index.npy`` (``(n, 4)`` int64: byte offset, h, w, status). ``key`` hashes the samples (path, crop
box, size and mtime of every file and label map) and the decoding parameters, so a changed photo or
setting builds a new entry and an unchanged one is reused by every later run, resume included. A
build is written to a temporary folder and renamed into place, so a killed build leaves nothing that
a later run would read.

Cached items are seeded by ``(seed, epoch, index)`` like uncached ones (so a resumed run draws the
same crops) and follow the same augmentation distribution, but they are not the same pixels: the crop
box is drawn on the cached pixel grid, the photo is resampled once more, and Lab is quantised. A run
should not switch between the two mid-way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from ..color import rgb_to_lab

__all__ = ["LabCache", "build_lab_cache", "cache_datasets", "reachable_items", "encode_lab_u8", "decode_lab_u8"]

logger = logging.getLogger(__name__)

#: Bump when what is stored changes: old entries are then never read.
CACHE_VERSION = 1
#: Index status of a photo left on file (not among the items the entry was built for).
NOT_CACHED = 255
_INDEX, _PIXELS = "index.npy", "pixels.u8"


def encode_lab_u8(lab: torch.Tensor) -> np.ndarray:
    """Lab ``(3, H, W)`` float (L in ``[0, 100]``, ab in Lab units) -> ``(H, W, 3)`` uint8."""
    q = torch.stack([lab[0] * 2.55, lab[1] + 128.0, lab[2] + 128.0], -1)
    return q.round_().clamp_(0, 255).to(torch.uint8).numpy()


def decode_lab_u8(arr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H, W, 3)`` uint8 from :func:`encode_lab_u8` -> ``L`` ``(1, H, W)``, ``ab`` ``(2, H, W)`` float32."""
    t = torch.from_numpy(np.array(arr, np.uint8)).permute(2, 0, 1).float()  # a copy: arr may be read-only
    return t[:1].div_(2.55).contiguous(), t[1:].sub_(128.0).contiguous()


class LabCache:
    """A built cache entry: item ``i`` is photo ``i``'s ``(h, w, C)`` uint8 array.

    The pixel file is memory-mapped on first access in each process (DataLoader workers included),
    so workers share the page cache instead of holding copies.

    Args:
        path: the entry's folder (``<cache_dir>/<key>``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.index = np.load(self.path / _INDEX)
        if self.index.ndim != 2 or self.index.shape[1] != 4:
            raise ValueError(f"{self.path / _INDEX} is not a cache index; delete {self.path} to rebuild it")
        meta = json.loads((self.path / "meta.json").read_text())
        self.channels = int(meta["channels"])
        self._pixels: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.index)

    @property
    def status(self) -> np.ndarray:
        """Per-photo code: 0 usable, 1 unreadable, 2 grayscale (as :class:`ImageDataset` keeps skips),
        :data:`NOT_CACHED` for a photo left on file."""
        return self.index[:, 3].astype(np.uint8)

    def has(self, i: int) -> bool:
        """Whether photo ``i``'s pixels are stored."""
        return int(self.index[i, 3]) != NOT_CACHED

    def __getitem__(self, i: int) -> np.ndarray:
        if self._pixels is None:
            self._pixels = np.memmap(self.path / _PIXELS, dtype=np.uint8, mode="r")
        offset, h, w, _ = (int(v) for v in self.index[i])
        return self._pixels[offset : offset + h * w * self.channels].reshape(h, w, self.channels)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}  # each process maps the file itself


def _stat(path: str | None) -> list:
    if path is None:
        return []
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def cache_key(ds, side: int, items: Sequence[int] | None = None) -> str:
    """Hash of everything a cache entry depends on (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "side": side, "min_chroma": ds.min_chroma,
                         "labels": ds.label_paths is not None, "items": items}).encode())
    labels = ds.label_paths or [None] * len(ds.samples)
    for s, lbl in zip(ds.samples, labels):
        try:
            stats = _stat(s.path) + _stat(lbl)
        except OSError:
            stats = ["missing"]
        h.update(json.dumps([os.path.abspath(s.path), s.box, lbl, stats]).encode())
    return h.hexdigest()[:24]


def build_lab_cache(
    ds, cache_dir: str | os.PathLike, items: Sequence[int] | None = None, progress: bool = False
) -> LabCache:
    """The cache entry of ``ds`` in ``cache_dir``, built now if it does not exist yet.

    Args:
        ds: a :class:`~expertcolor.datasets.base.LabDataset` (route labels attached first, if any).
        cache_dir: folder of cache entries (created when missing).
        items: store only these indices (a capped run's subset); the others stay on file and are
            decoded when drawn (e.g. as the replacement of a skipped photo). Default: all.
        progress: show a tqdm bar while building.

    Raises:
        LabelMapError: for a label map that does not fit its image (never skipped, as in training).
    """
    from .base import OK, UNREADABLE, GRAYSCALE, LabelMapError, _GrayscaleError  # noqa: I001 - cycle

    side = ds._draft_side()
    cache_dir = Path(cache_dir)
    wanted = None if items is None else sorted(set(int(i) for i in items))
    final = cache_dir / cache_key(ds, side, wanted)
    if (final / _INDEX).is_file():
        return LabCache(final)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    channels = 4 if ds.label_paths is not None else 3
    index = np.zeros((len(ds.samples), 4), np.int64)
    index[:, 3] = NOT_CACHED
    todo = range(len(ds.samples)) if wanted is None else wanted
    from tqdm.auto import tqdm

    offset = 0
    logger.info("caching %d photos of %s at short side %d in %s", len(todo), ds.name, side, final)
    with open(tmp / _PIXELS, "wb") as f:
        for i in tqdm(todo, desc=f"cache {ds.name}", unit="img", disable=not progress):
            sample = ds.samples[i]
            label_path = ds.label_paths[i] if ds.label_paths is not None else None
            try:
                arr = _entry(ds, sample, label_path, side)
            except _GrayscaleError:
                index[i] = (offset, 0, 0, GRAYSCALE)
                continue
            except LabelMapError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            except Exception:  # noqa: BLE001 - any decode error: recorded and skipped, as in training
                index[i] = (offset, 0, 0, UNREADABLE)
                continue
            f.write(arr.tobytes())
            index[i] = (offset, arr.shape[0], arr.shape[1], OK)
            offset += arr.size
    np.save(tmp / _INDEX, index)
    (tmp / "meta.json").write_text(json.dumps({
        "version": CACHE_VERSION, "channels": channels, "side": side, "dataset": ds.name,
        "photos": len(ds.samples), "cached": len(todo), "bytes": offset,
        "skipped": int(((index[:, 3] != OK) & (index[:, 3] != NOT_CACHED)).sum()),
    }, indent=1))
    try:
        os.rename(tmp, final)
    except OSError:  # another process finished the same entry first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / _INDEX).is_file():
            raise
    return LabCache(final)


def _entry(ds, sample, label_path: str | None, side: int) -> np.ndarray:
    """One photo as stored: decoded, boxed, checked, shrunk to short side ``side``, uint8 Lab (+ label)."""
    from .base import rgb_uint8_to_tensor

    img, label = ds._decoded(sample, label_path, side)
    w, h = img.size
    scale = side / min(w, h)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.BILINEAR)
    arr = encode_lab_u8(rgb_to_lab(rgb_uint8_to_tensor(img)))
    if label is None:
        return arr
    label = label.resize(img.size, Image.NEAREST)
    return np.concatenate([arr, np.asarray(label, np.uint8)[..., None]], -1)


def reachable_items(ds: Dataset, items: Sequence[int] | None = None) -> list[tuple[Any, list[int]]]:
    """The :class:`ImageDataset` items that ``ds`` (or its ``items``) can draw, through ``Subset`` and
    ``ConcatDataset``: ``[(base dataset, sorted indices), ...]``."""
    from .base import ImageDataset

    found: dict[int, tuple[Any, set[int]]] = {}

    def walk(d: Dataset, idx: Sequence[int]) -> None:
        if isinstance(d, ImageDataset):
            found.setdefault(id(d), (d, set()))[1].update(idx)
        elif isinstance(d, Subset):
            walk(d.dataset, [d.indices[i] for i in idx])
        elif isinstance(d, ConcatDataset):
            starts = [0, *d.cumulative_sizes[:-1]]
            for k, sub in enumerate(d.datasets):
                lo = starts[k]
                walk(sub, [i - lo for i in idx if lo <= i < lo + len(sub)])

    walk(ds, range(len(ds)) if items is None else items)
    return [(d, sorted(ix)) for d, ix in found.values() if ix]


def cache_datasets(
    ds: Dataset, cache_dir: str | os.PathLike, items: Sequence[int] | None = None, progress: bool = False
) -> None:
    """Build (or reuse) caches of the photos ``ds`` can draw (all, or those of its ``items``) and make
    every :class:`LabDataset` inside it read them; photos a cap leaves out are never decoded."""
    from .base import LabDataset

    for d, idx in reachable_items(ds, items):
        if isinstance(d, LabDataset):
            d.use_cache(build_lab_cache(d, cache_dir, None if len(idx) == len(d) else idx, progress))
