"""Colorize many files: collect inputs, plan outputs (never an input, existing files kept unless
told), decode ahead in threads, colorize in batches, save atomically, and summarise.

What ``expertcolor colorize`` runs; one photo's failure is reported and skipped, never the end of
the run.
"""

from __future__ import annotations

import glob
import logging
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image
from tqdm.auto import tqdm

from .colorizer import ExpertColorizer
from .files import LoadedImage, load_image, readable_extensions, save_image
from .io import set_max_pixels

logger = logging.getLogger(__name__)

__all__ = [
    "SMALL_PIXELS",
    "Job",
    "BatchSummary",
    "OutputExistsError",
    "collect_inputs",
    "output_path",
    "plan_outputs",
    "torchrun_shard",
    "prefetch",
    "colorize_files",
    "write_details",
    "describe_error",
    "first_line",
]

#: Photos below this many pixels count as small: batches of small photos run on one torch thread.
SMALL_PIXELS = 250_000
T = TypeVar("T")
R = TypeVar("R")


class OutputExistsError(FileExistsError):
    """A photo's output exists already, or an earlier photo of the same run will write it.

    Attributes:
        path: the output (the image or its ``.details`` folder).
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} already exists")
        self.path = path


# -- input collection and output paths ----------------------------------------------------------------
def _is_hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def collect_inputs(inputs: Sequence[str], exclude: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Expand files, globs and folders (recursively) into ``(file, root)`` pairs.

    ``root`` is the folder the output name is taken relative to: the folder argument for files found
    in a folder, the file's parent for a file argument. In folders only files with an extension
    Pillow reads are taken (others are returned as skipped); a file named explicitly is always
    tried. An argument that names an existing file or folder is taken literally, even when it looks
    like a glob (``scan [1].png``); others with ``*``, ``?`` or ``[`` are expanded.

    Args:
        inputs: command-line arguments.
        exclude: the output folder: files in it are skipped when it lies inside a folder argument.

    Returns:
        ``(inputs, skipped)``: unique ``(file, root)`` pairs in argument order, and non-image files
        found in folders.

    Raises:
        FileNotFoundError: if an argument matches nothing.
    """
    exts = readable_extensions()
    exclude = exclude.resolve() if exclude is not None else None
    seen: set[Path] = set()
    found: list[tuple[Path, Path]] = []
    skipped: list[Path] = []

    def add(path: Path, root: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        found.append((path, root))

    for arg in inputs:
        if glob.has_magic(arg) and not os.path.lexists(arg):
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True))]
        else:
            matches = [Path(arg)]
        matches = [m for m in matches if m.exists()]
        if not matches:
            raise FileNotFoundError(f"no such file or folder: {arg}")
        for m in matches:
            if m.is_dir():
                # Skip earlier results when the output folder lies inside the folder being read.
                inner = exclude if exclude is not None and exclude.is_relative_to(m.resolve()) else None
                if inner == m.resolve():
                    inner = None
                for p in sorted(m.rglob("*")):
                    if not p.is_file() or _is_hidden(p.relative_to(m)):
                        continue
                    # Where the entry lies, not where a symlink points: links in the output folder are outputs.
                    if inner is not None and (p.parent.resolve() / p.name).is_relative_to(inner):
                        continue
                    if p.suffix.lower() in exts:
                        add(p, m)
                    else:
                        skipped.append(p)
            else:
                add(m, m.parent)
    return found, skipped


def output_path(path: Path, root: Path, out_dir: Path, roots: Sequence[Path]) -> Path:
    """Where the result for ``path`` goes: its path relative to ``root`` under ``out_dir``.

    When several input roots are used, outputs go to ``out_dir/<root name>/...`` so that equal
    relative paths from different roots do not collide (two roots with one name get ``_2``...).
    """
    rel = path.relative_to(root)
    unique = list(dict.fromkeys(r.resolve() for r in roots))
    if len(unique) <= 1:
        return out_dir / rel
    names: dict[Path, str] = {}
    used: set[str] = set()
    for r in unique:
        base = r.name or "root"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names[r] = name
    return out_dir / names[root.resolve()] / rel


@dataclass(frozen=True)
class Job:
    """One photo to colorize: its file, its output, and the output's ``.details`` folder."""

    source: Path
    target: Path
    details: Path


def plan_outputs(
    files: Sequence[tuple[Path, Path]],
    out_dir: Path,
    *,
    details: bool = False,
    overwrite: bool = False,
    shard: tuple[int, int] | None = None,
) -> tuple[list[Job], list[tuple[Path, Exception]]]:
    """Decide every output before any photo is decoded or colorized.

    A photo whose output would replace its input, or whose output exists (or will be written by an
    earlier photo of this run) while ``overwrite`` is off, is refused without costing a network
    pass. With ``details``, the ``.details`` folder counts as an output too.

    Args:
        files: ``(file, root)`` pairs from :func:`collect_inputs`.
        out_dir: the output folder.
        shard: ``(rank, world_size)``: keep only file ``i`` with ``i % world_size == rank`` (every rank
            plans the same list, so each file belongs to exactly one rank). Outputs claimed by earlier
            files count whichever rank owns them; only a rank's own outputs are looked up on disk, so
            what other ranks are writing meanwhile cannot change the plan.

    Returns:
        ``(jobs, refused)``: the photos to colorize, and ``(file, error)`` for the others
        (:class:`OutputExistsError` for existing outputs, ``ValueError`` for an input in the way).
    """
    if shard is not None and not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard must be (rank, world_size) with 0 <= rank < world_size, got {shard}")
    roots = list(dict.fromkeys(root for _, root in files))  # once each: output_path resolves every root
    jobs: list[Job] = []
    refused: list[tuple[Path, Exception]] = []
    claimed: set[Path] = set()
    for i, (path, root) in enumerate(files):
        mine = shard is None or i % shard[1] == shard[0]
        target = output_path(path, root, out_dir, roots)
        folder = target.with_name(target.name + ".details")
        if target.resolve() == path.resolve():
            if mine:
                refused.append((path, ValueError(f"the output would overwrite the input; choose another output "
                                                 f"folder than {out_dir}")))
            continue
        existing = [t for t in (target, folder)
                    if (t in claimed or (mine and os.path.lexists(t))) and (t == target or details)]
        if existing and not overwrite:
            if mine:
                refused.append((path, OutputExistsError(existing[0])))
            continue
        claimed.update((target, folder))
        if mine:
            jobs.append(Job(path, target, folder))
    return jobs, refused


def torchrun_shard() -> tuple[int, int] | None:
    """``(rank, world_size)`` when this process is one of several started by ``torchrun``, else ``None``."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError as e:
        raise ValueError(f"RANK and WORLD_SIZE must be integers (set by torchrun): {e}") from e
    return (rank, world) if world > 1 else None


# -- decoding ahead -------------------------------------------------------------------------------------
def prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int) -> Iterator[tuple[T, Future[R]]]:
    """Apply ``fn`` to ``items`` in ``workers`` threads, at most ``ahead`` items in advance, in order.

    Yields:
        ``(item, future)`` pairs; ``future.result()`` returns ``fn(item)`` or raises its error.
    """
    if workers <= 0:
        for item in items:
            fut: Future[R] = Future()
            try:
                fut.set_result(fn(item))
            except Exception as e:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(e)
            yield item, fut
        return
    it = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="expertcolor-decode") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        for item in it:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= ahead:
                break
        while pending:
            item, fut = pending.popleft()
            for nxt in it:  # top up by one
                pending.append((nxt, pool.submit(fn, nxt)))
                break
            yield item, fut


def _safe_load(path: Path) -> LoadedImage:
    """:func:`~expertcolor.files.load_image`, with every failure of one file as a ``ValueError``
    (damaged and fuzzed files raise many kinds; one of them must not end a whole folder's run)."""
    try:
        return load_image(path)
    except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
        raise ValueError(describe_error(e)) from None


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its kind when the message is empty."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return first or type(err).__name__


def describe_error(err: BaseException) -> str:
    """One line for a per-file failure: the message, with the error's kind when it is unexpected."""
    if isinstance(err, (ValueError, OSError)):
        return first_line(err)
    return f"{type(err).__name__}: {first_line(err)}"


# -- colorizing -----------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """What :func:`colorize_files` did.

    Attributes:
        colorized: photos colorized and written.
        failed: ``(file, error)`` for every photo that was not, in the order they were reported.
    """

    colorized: int = 0
    failed: list[tuple[Path, BaseException]] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Photos refused because their output already existed (see ``overwrite``)."""
        return sum(isinstance(e, OutputExistsError) for _, e in self.failed)


def write_details(result: Any, loaded: LoadedImage, base: Path, colorizer: Any) -> None:
    """``<name>.details/routing.png`` (expert map + legend) and ``expert-<name>.png`` per active expert."""
    import numpy as np

    from .io import decode_inputs
    from .visualize import expert_rgb, routing_overlay

    base.mkdir(parents=True, exist_ok=True)
    decoded = decode_inputs(loaded.image)[0]
    gray = np.asarray(loaded.image.convert("L"))
    save_image(routing_overlay(result, gray), base / "routing.png")
    for name in result.expert_ab:
        rgb = expert_rgb(result, name, decoded.L, upsample=colorizer.upsample)
        save_image(Image.fromarray(rgb), base / f"expert-{name}.png")


def _colorize_batch(colorizer: ExpertColorizer, images: list[Image.Image], details: bool,
                    saturation: float) -> list[Any]:
    """Colorize a batch; on failure retry one by one so that one bad image fails alone."""
    try:
        return colorizer.colorize(images, return_details=details, saturation=saturation)
    except Exception as e:  # noqa: BLE001 - handed back per image, reported and skipped
        if len(images) == 1:
            return [e]
    out: list[Any] = []
    for img in images:
        try:
            out.append(colorizer.colorize(img, return_details=details, saturation=saturation))
        except Exception as e:  # noqa: BLE001 - as above
            out.append(e)
    return out


def colorize_files(
    colorizer: ExpertColorizer,
    files: Sequence[tuple[Path, Path]],
    out_dir: str | os.PathLike,
    *,
    details: bool = False,
    saturation: float = 1.0,
    overwrite: bool = False,
    workers: int = 0,
    threads: int | None = None,
    max_pixels: int | None = None,
    on_failure: Callable[[Path, BaseException], None] | None = None,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Colorize photos into ``out_dir``, keeping each one's relative path, format, ICC profile and EXIF.

    Outputs are planned first (:func:`plan_outputs`); photos are then decoded ``workers`` threads
    ahead, colorized ``colorizer.batch_size`` at a time and written atomically. A photo that fails
    at any step is handed to ``on_failure`` and skipped.

    Args:
        colorizer: the model.
        files: ``(file, root)`` pairs from :func:`collect_inputs`.
        out_dir: the output folder.
        details: also write ``<output>.details/`` (routing map, each expert's output).
        saturation: chroma multiplier (1 = as predicted).
        overwrite: replace outputs that exist (default: refuse those photos).
        workers: decoding threads (0: decode in this thread).
        threads: torch threads; default: one for batches whose photos are all below
            :data:`SMALL_PIXELS` (more only add overhead there), torch's own for larger ones.
            The previous setting is restored afterwards.
        max_pixels: pixel limit for this run (see :func:`expertcolor.io.set_max_pixels`), restored
            afterwards; ``None`` keeps the current one.
        on_failure: called with ``(file, error)`` for every failed photo, as it fails; default: a
            warning in the log.
        shard: ``(rank, world_size)``: colorize only this rank's share of ``files`` (see
            :func:`plan_outputs`; :func:`torchrun_shard` reads it from torchrun's environment).
        progress: show a progress bar (on a terminal).

    Returns:
        How many photos were written and which failed.
    """
    default_threads = torch.get_num_threads()
    previous_limit = set_max_pixels(max_pixels) if max_pixels is not None else None
    try:
        with warnings.catch_warnings():
            # Photos above the limit are refused with an error of their own; Pillow's warning about
            # photos near its limit would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if threads is not None:
                torch.set_num_threads(threads)
            return _colorize_files(colorizer, files, Path(out_dir), details, saturation, overwrite, workers,
                                   threads, default_threads, on_failure, shard, progress)
    finally:
        torch.set_num_threads(default_threads)
        if max_pixels is not None:
            set_max_pixels(previous_limit)


def _colorize_files(
    colorizer: ExpertColorizer,
    files: Sequence[tuple[Path, Path]],
    out_dir: Path,
    details: bool,
    saturation: float,
    overwrite: bool,
    workers: int,
    threads: int | None,
    default_threads: int,
    on_failure: Callable[[Path, BaseException], None] | None,
    shard: tuple[int, int] | None,
    progress: bool,
) -> BatchSummary:
    summary = BatchSummary()
    jobs, refused = plan_outputs(files, out_dir, details=details, overwrite=overwrite, shard=shard)
    bar = tqdm(total=len(jobs) + len(refused), desc="colorize", unit="img", disable=None if progress else True)

    def fail(path: Path, err: BaseException) -> None:
        summary.failed.append((path, err))
        if on_failure is not None:
            on_failure(path, err)
        else:
            logger.warning("skipping %s: %s", path, describe_error(err))
        bar.update(1)

    for path, err in refused:
        fail(path, err)

    batch: list[tuple[Job, LoadedImage]] = []

    def flush() -> None:
        if not batch:
            return
        if threads is None:  # one thread for small photos: more only add overhead
            small = all(loaded.image.width * loaded.image.height < SMALL_PIXELS for _, loaded in batch)
            want = 1 if small else default_threads
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
        results = _colorize_batch(colorizer, [loaded.image for _, loaded in batch], details, saturation)
        for (job, loaded), res in zip(batch, results):
            if isinstance(res, BaseException):
                fail(job.source, res)
                continue
            try:
                save_image(res.rgb if details else res, job.target, loaded)
                if details:
                    write_details(res, loaded, job.details, colorizer)
            except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
                fail(job.source, e)
                continue
            summary.colorized += 1
            bar.update(1)
        batch.clear()

    ahead = max(2 * workers, colorizer.batch_size)
    for job, fut in prefetch(lambda j: _safe_load(j.source), jobs, workers, ahead):
        try:
            loaded = fut.result()
        except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
            fail(job.source, e)
            continue
        batch.append((job, loaded))
        if len(batch) >= colorizer.batch_size:
            flush()
    flush()
    bar.close()
    return summary
