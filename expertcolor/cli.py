"""The ``expertcolor`` command line.

::

    expertcolor colorize old_photos/ -o colorized/ [--details] [--saturation 1.2]
    expertcolor colorize scans/ -o colorized/ [--overwrite] [--max-pixels N] [--threads N]
    expertcolor evaluate --images mixed/images --groups mixed/groups --out eval/
    expertcolor train-expert ...       # = python -m expertcolor.train.expert ...
    expertcolor train-segmenter ...    # = python -m expertcolor.train.segmenter ...
    expertcolor add-expert MODEL_DIR EXPERT_DIR [--classes cat dog]
    expertcolor assemble --segmenter runs/seg/segmenter --expert runs/*/expert --out my_model [--fp16]

Exit status: 0 on success, 1 when some files could not be colorized or written (each one is
reported on stderr and skipped; an output that already exists counts, unless ``--overwrite``), 2 for
bad usage or other user errors (printed as one line, without a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import importlib
import logging
import os
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from . import __version__
from ._log import configure_cli_logging
from .argtypes import nonnegative_float, nonnegative_int, positive_int, unit_float

__all__ = ["main", "build_parser", "collect_inputs", "output_path", "rgb_icc", "save_image", "prefetch"]

PROG = "expertcolor"
TRAIN_COMMANDS = {"train-expert": "expertcolor.train.expert", "train-segmenter": "expertcolor.train.segmenter"}
_ORIENTATION_TAG = 0x0112
_QUALITY_FORMATS = {"JPEG", "WEBP"}
_METADATA_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}
#: Photos below this many pixels count as small: batches of small photos run on one torch thread.
SMALL_PIXELS = 250_000
T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


class UserError(Exception):
    """A problem with the command line or its inputs: printed as one line, exit status 2."""


# -- input collection ---------------------------------------------------------------------------------
def _image_extensions() -> set[str]:
    return {ext.lower() for ext in Image.registered_extensions()}


def _is_hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def collect_inputs(inputs: Sequence[str], exclude: Path | None = None) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Expand files, globs and folders (recursively) into ``(file, root)`` pairs.

    ``root`` is the folder the output name is taken relative to: the folder argument for files found
    in a folder, the file's parent for a file argument. In folders only files with an image
    extension are taken (others are returned as skipped); a file named explicitly is always tried.
    An argument that names an existing file or folder is taken literally, even when it looks like
    a glob (``scan [1].png``); others with ``*``, ``?`` or ``[`` are expanded.

    Args:
        inputs: command-line arguments.
        exclude: the output folder: files in it are skipped when it lies inside a folder argument.

    Returns:
        ``(inputs, skipped)``: unique ``(file, root)`` pairs in argument order, and non-image files
        found in folders.

    Raises:
        UserError: if an argument matches nothing.
    """
    exts = _image_extensions()
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
            raise UserError(f"no such file or folder: {arg}")
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


# -- decoding ahead and saving ------------------------------------------------------------------------
@dataclass
class _Loaded:
    image: Image.Image
    icc: bytes | None
    exif: bytes | None
    format: str | None


def _load(path: Path) -> _Loaded:
    from .io import open_image

    img = open_image(path)  # pixel limit checked, EXIF orientation applied; clean error if unreadable
    with Image.open(path) as probe:  # the header again (decoding is done): format, frames, bit depth
        fmt = probe.format
        frames = getattr(probe, "n_frames", 1) if fmt != "MPO" else 1  # MPO: a camera JPEG and its previews
        bits = _bit_depth(probe)
    if frames > 1:
        logger.warning("%s: only the first frame is colorized (the file has %d)", path, frames)
    if bits > 8:
        logger.warning("%s: %d-bit input is written as 8-bit", path, bits)
    exif = img.getexif()
    exif.pop(_ORIENTATION_TAG, None)
    return _Loaded(img, rgb_icc(img.info.get("icc_profile")), exif.tobytes() if len(exif) else None, fmt)


def _bit_depth(probe: Image.Image) -> int:
    """Bits per sample of an opened, not yet decoded file: 8, 16 or 32 (from its mode and raw mode)."""
    if probe.mode in ("I", "F"):
        return 32 if not any("16" in _rawmode(t) for t in getattr(probe, "tile", ())) else 16
    raw = [_rawmode(t) for t in getattr(probe, "tile", ())]
    if probe.mode.startswith("I;16") or any(";16" in r and not r.startswith("BGR;") for r in raw):  # BGR;16: 5-6-5
        return 16
    return 8


def _rawmode(tile: Any) -> str:
    args = getattr(tile, "args", None)
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def rgb_icc(profile: bytes | None) -> bytes | None:
    """``profile`` if it describes RGB data (the output is RGB), else ``None`` (gray/CMYK profiles)."""
    if profile and len(profile) >= 20 and profile[16:20] == b"RGB ":
        return profile
    return None


def _safe_load(path: Path) -> _Loaded:
    """:func:`_load`, with every failure of one file as a ``ValueError`` (damaged and fuzzed files
    raise many kinds; one of them must not end a whole folder's run)."""
    try:
        return _load(path)
    except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
        raise ValueError(_describe(e)) from None


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


def _format_for(path: Path, fallback: str | None) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt or fallback or "PNG"


def save_image(image: Image.Image, path: Path, loaded: _Loaded | None = None) -> None:
    """Save with the format of ``path``'s extension (JPEG/WebP quality 95), keeping ICC and EXIF.

    The orientation tag is dropped: pixels are already upright. The file is written to a temporary
    file in the same folder and renamed over ``path``: an interrupted run leaves no half-written
    image, and a symlink at ``path`` is replaced, not written through. Whether ``path`` may be
    replaced at all is the caller's decision (``colorize`` keeps existing files unless
    ``--overwrite``).
    """
    from .modeling import atomic_write

    fmt = _format_for(path, loaded.format if loaded else None)
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    kwargs: dict[str, Any] = {}
    if fmt in _QUALITY_FORMATS:
        kwargs["quality"] = 95
    if loaded is not None and fmt in _METADATA_FORMATS:
        if loaded.icc:
            kwargs["icc_profile"] = loaded.icc
        if loaded.exif:
            kwargs["exif"] = loaded.exif
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt, **kwargs))


# -- colorize -----------------------------------------------------------------------------------------
def _merge_from_arg(spec: str) -> Any:
    """The merge strategy of a ``--merge`` value (``soft``, ``context:strength=0.75``, ...)."""
    from .merge import create_merge, list_merges

    try:
        return create_merge(spec)
    except ValueError as e:
        raise UserError(f"--merge {spec}: {e} (strategies: {', '.join(list_merges())})") from None


def _load_colorizer(args: argparse.Namespace) -> Any:
    from .colorizer import ExpertColorizer

    overrides: dict[str, Any] = {}
    if getattr(args, "merge", None):
        overrides["merge"] = _merge_from_arg(args.merge)
    if getattr(args, "working_size", None):
        overrides["working_size"] = args.working_size
    if getattr(args, "batch_size", None):
        overrides["batch_size"] = args.batch_size
    if getattr(args, "flip_segmentation", None) is not None:
        overrides["flip_segmentation"] = args.flip_segmentation == "on"
    if getattr(args, "prior_correction", None) is not None:
        overrides["prior_correction"] = args.prior_correction
    return ExpertColorizer.from_pretrained(args.model, device=_device(getattr(args, "device", None)), **overrides)


def _device(name: str | None) -> Any:
    """Validate ``--device`` (a clean error instead of a deep torch failure)."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"invalid --device {name!r}; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def _write_details(result: Any, loaded: _Loaded, base: Path, colorizer: Any) -> None:
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


def _colorize_batch(colorizer: Any, images: list[Image.Image], details: bool, saturation: float) -> list[Any]:
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


def _cmd_colorize(args: argparse.Namespace) -> int:
    import torch

    from .io import set_max_pixels

    default_threads = torch.get_num_threads()
    previous_limit = set_max_pixels(args.max_pixels) if args.max_pixels is not None else None
    try:
        with warnings.catch_warnings():
            # Photos above the limit are refused with an error of their own; Pillow's warning about
            # photos near its limit would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if args.threads is not None:
                torch.set_num_threads(args.threads)
            return _colorize_files(args, default_threads)
    finally:
        torch.set_num_threads(default_threads)
        if args.max_pixels is not None:
            set_max_pixels(previous_limit)


def _colorize_files(args: argparse.Namespace, default_threads: int) -> int:
    import torch
    from tqdm.auto import tqdm

    out_dir = Path(args.output)
    files, skipped = collect_inputs(args.inputs, exclude=out_dir)
    if not files:
        raise UserError("no image files found in " + ", ".join(args.inputs))
    colorizer = _load_colorizer(args)
    roots = [root for _, root in files]
    n_ok, failed, kept = 0, [], 0
    bar = tqdm(total=len(files), desc="colorize", unit="img", disable=None)

    def fail(path: Path, err: BaseException) -> None:
        failed.append(path)
        tqdm.write(f"{PROG}: skipping {path}: {_describe(err)}", file=sys.stderr)
        bar.update(1)

    # Outputs are decided before any photo is decoded or colorized: a photo whose output would
    # replace its input, or a file that exists (or that an earlier input of this run will write),
    # is reported and skipped without costing a network pass.
    todo: list[tuple[Path, Path, Path]] = []
    claimed: set[Path] = set()
    for path, root in files:
        target = output_path(path, root, out_dir, roots)
        details = target.with_name(target.name + ".details")
        if target.resolve() == path.resolve():
            fail(path, UserError(f"the output would overwrite the input; choose another -o than {out_dir}"))
            continue
        existing = [t for t in (target, details)
                    if (os.path.lexists(t) or t in claimed) and (t == target or args.details)]
        if existing and not args.overwrite:
            kept += 1
            fail(path, UserError(f"{existing[0]} already exists; --overwrite replaces it"))
            continue
        claimed.update((target, details))
        todo.append((path, target, details))

    batch: list[tuple[Path, Path, Path, _Loaded]] = []

    def flush() -> None:
        nonlocal n_ok
        if not batch:
            return
        if args.threads is None:  # one thread for small photos: more only add overhead (see --threads)
            small = all(b[3].image.width * b[3].image.height < SMALL_PIXELS for b in batch)
            want = 1 if small else default_threads
            if torch.get_num_threads() != want:
                torch.set_num_threads(want)
        results = _colorize_batch(colorizer, [b[3].image for b in batch], args.details, args.saturation)
        for (path, target, details, loaded), res in zip(batch, results):
            if isinstance(res, BaseException):
                fail(path, res)
                continue
            try:
                save_image(res.rgb if args.details else res, target, loaded)
                if args.details:
                    _write_details(res, loaded, details, colorizer)
            except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
                fail(path, e)
                continue
            n_ok += 1
            bar.update(1)
        batch.clear()

    ahead = max(2 * args.workers, colorizer.batch_size)
    for (path, target, details), fut in prefetch(lambda item: _safe_load(item[0]), todo, args.workers, ahead):
        try:
            loaded = fut.result()
        except Exception as e:  # noqa: BLE001 - reported for this file, which is skipped
            fail(path, e)
            continue
        batch.append((path, target, details, loaded))
        if len(batch) >= colorizer.batch_size:
            flush()
    flush()
    bar.close()
    summary = f"colorized {n_ok}, failed {len(failed)}"
    if kept:
        summary += f" ({kept} because the output already existed: --overwrite replaces it)"
    if skipped:
        summary += f", skipped {len(skipped)} non-image file{'s' if len(skipped) != 1 else ''}"
    print(f"{summary} -> {out_dir}")
    return 1 if failed else 0


def _describe(err: BaseException) -> str:
    """One line for a per-file failure: the message, with the error's kind when it is unexpected."""
    if isinstance(err, (UserError, ValueError, OSError)):
        return _message(err)
    return f"{type(err).__name__}: {_message(err)}"


# -- evaluate -----------------------------------------------------------------------------------------
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import (
        default_generalist_dir,
        evaluate,
        evaluate_routing,
        routing_markdown,
        to_markdown,
        write_report,
    )

    colorizer = _load_colorizer(args)
    generalist = Path(args.generalist) if args.generalist else default_generalist_dir()
    if generalist is not None and not (generalist / "config.json").is_file():
        raise UserError(f"--generalist {generalist}: not an expert directory (no config.json)")
    report = evaluate(
        colorizer,
        args.images,
        args.groups,
        variants=args.compare,
        generalist=generalist,
        band_width=args.band_width,
        max_images=args.max_images,
        saturation=args.saturation,
        prior_correction=args.prior_correction,
    )
    if args.groups:
        report["routing"] = evaluate_routing(
            colorizer, args.images, args.groups, teacher_dir=args.teacher, voc_dir=args.voc, max_images=args.max_images
        )
    json_path, md_path = write_report(report, args.out)
    print(to_markdown(report))
    if "routing" in report:
        print(routing_markdown(report["routing"]))
    print(f"wrote {json_path} and {md_path}")
    return 0


# -- add-expert and training --------------------------------------------------------------------------
def _cmd_add_expert(args: argparse.Namespace) -> int:
    from .hub import add_expert_to_model_dir
    from .modeling import read_json

    for d, what in ((args.model_dir, "model"), (args.expert_dir, "expert")):
        if not Path(d).is_dir():
            raise UserError(f"{what} directory not found: {d}")
    classes = add_expert_to_model_dir(args.model_dir, args.expert_dir, args.classes, args.temperature)
    name = read_json(Path(args.expert_dir) / "config.json").get("name")
    print(f"added expert {name!r} to {args.model_dir}; routed: {', '.join(classes)}")
    return 0


def _cmd_assemble(args: argparse.Namespace) -> int:
    import torch

    from .colorizer import ExpertColorizer
    from .experts import Expert
    from .segmentation import load_segmenter

    for d in [args.segmenter, *args.expert]:
        if not (Path(d) / "config.json").is_file():
            raise UserError(f"not a model directory (no config.json): {d}")
    merge = _merge_from_arg(args.merge)
    experts = [Expert.from_pretrained(d) for d in args.expert]
    if args.temperature is not None:
        if not 0 < args.temperature <= 1:
            raise UserError(f"--temperature must be in (0, 1], got {args.temperature}")
        for e in experts:
            if e.config.head == "classification":
                e.config = dataclasses.replace(e.config, temperature=args.temperature)
    if args.prior_correction is not None:
        for e in experts:
            if e.config.head == "classification":
                e.with_prior_correction(args.prior_correction)
    names = [e.name for e in experts]
    if len(set(names)) != len(names):
        raise UserError(f"expert names must be distinct, got {names}")
    segmenter = load_segmenter(args.segmenter)
    colorizer = ExpertColorizer(
        experts, segmenter, merge=merge, working_size=args.working_size, device="cpu",
        flip_segmentation=args.flip_segmentation,
    )
    for e in experts:  # route each expert's own classes (the default table covers the four defaults)
        if e.config.classes:
            colorizer.add_expert(e, e.config.classes)
    colorizer.save_pretrained(args.out, dtype=torch.float16 if args.fp16 else None)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*.safetensors"))
    print(f"wrote {args.out} ({len(experts)} experts, {size / 2**20:.1f} MiB of weights): {colorizer.routing}")
    return 0


def _run_training(command: str, argv: list[str]) -> int:
    """``expertcolor train-expert ARGS`` = ``python -m expertcolor.train.expert ARGS``."""
    module_name = TRAIN_COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise UserError(f"{command} is not available in this installation ({module_name} not found)") from None
        raise UserError(f"{command} needs a missing package: {e.name}") from None
    parser = module.get_args_parser()
    parser.prog = f"{PROG} {command}"
    result = module.main(parser.parse_args(argv))
    return result if isinstance(result, int) else 0


# -- parser and entry point ---------------------------------------------------------------------------
PRIOR_CORRECTION_HELP = ("how much of the training's boost of rare colours the experts undo: "
                         "0 vivid as trained ... 1 calibrated, more neutral (default: as saved)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", help="model directory (default: the embedded default weights)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    p.add_argument("--merge", metavar="NAME", help="merge strategy override: hard, soft, feather, guided, context; "
                   "parameters as NAME:KEY=VALUE,... (e.g. context:strength=0.75)")
    p.add_argument("--working-size", type=positive_int, metavar="N", help="long side at which the networks run")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="images per forward pass")
    p.add_argument("--flip-segmentation", choices=("on", "off"),
                   help="average segmentation over the photo and its mirror image (default: as saved)")
    p.add_argument("--prior-correction", type=unit_float, metavar="A", help=PRIOR_CORRECTION_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The top-level argument parser (training subcommands are listed; their own parsers do the rest)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Colorize grayscale photos with segmentation-routed domain experts."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("colorize", help="colorize photos (files, globs or folders)")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, globs or folders (recursive)")
    c.add_argument("-o", "--output", default="colorized", metavar="OUTDIR", help="output folder (default: colorized)")
    _add_model_args(c)
    c.add_argument("--workers", type=nonnegative_int, default=min(4, os.cpu_count() or 1),
                   help="decoding threads (0: none)")
    c.add_argument("--saturation", type=nonnegative_float, default=1.0, help="chroma multiplier (default 1)")
    c.add_argument("--details", action="store_true", help="also write the routing map and each expert's output")
    c.add_argument("--overwrite", action="store_true",
                   help="replace output files that already exist (default: report and skip those photos)")
    c.add_argument("--max-pixels", type=nonnegative_int, metavar="N",
                   help="refuse photos with more than N pixels, read from the header before decoding "
                   "(a guard against decompression bombs and corrupt files; 0: no limit; default: Pillow's "
                   "own limit, about 179 Mpx). Large photos are decoded in strips, so memory stays bounded")
    c.add_argument("--threads", type=positive_int, metavar="N",
                   help=f"torch threads (default: 1 for batches whose photos are all below "
                   f"{SMALL_PIXELS / 1e6:g} Mpx, where more threads only add overhead, and torch's default "
                   "for larger photos)")
    c.set_defaults(func=_cmd_colorize)

    e = sub.add_parser("evaluate", help="colorize colour photos from their L and compare with the truth")
    e.add_argument("--images", required=True, metavar="DIR", help="folder of colour photos")
    e.add_argument("--groups", metavar="DIR", help="group masks <name>.png (0 bg, 1 person, 2 bird, 3 animal)")
    _add_model_args(e)
    e.add_argument("--generalist", metavar="DIR", help="generalist expert directory (default: bundled, if any)")
    e.add_argument(
        "--compare",
        metavar="LIST",
        help="extra variants besides routed: generalist,experts,gray, expert:<name> or oracle (routed by "
        "the --groups masks) (default: generalist, experts and gray, those that are available)",
    )
    e.add_argument("--out", default="evaluation", metavar="DIR", help="where report.json/report.md go")
    e.add_argument("--band-width", type=positive_int, default=8, help="boundary band half-width in pixels")
    e.add_argument("--max-images", type=positive_int, help="only the first N photos")
    e.add_argument("--saturation", type=nonnegative_float, default=1.0, help="chroma multiplier (default 1)")
    e.add_argument("--teacher", metavar="DIR", help="reference VOC label maps to score routing against (with --groups)")
    e.add_argument("--voc", metavar="DIR", help="VOC-21 ground truth for the segmenter's VOC mIoU (with --groups)")
    e.set_defaults(func=_cmd_evaluate)

    for command, module in TRAIN_COMMANDS.items():
        sub.add_parser(command, add_help=False, help=f"train (see `{PROG} {command} --help`; = python -m {module})")

    a = sub.add_parser("add-expert", help="copy a trained expert into a model directory and route classes to it")
    a.add_argument("model_dir", metavar="MODEL_DIR")
    a.add_argument("expert_dir", metavar="EXPERT_DIR")
    a.add_argument("--classes", nargs="+", metavar="CLASS", help="categories to route (default: the expert's own)")
    a.add_argument("--temperature", type=float, help="annealed-mean temperature of the copy (default: its own)")
    a.set_defaults(func=_cmd_add_expert)

    m = sub.add_parser("assemble", help="build a model directory from a trained segmenter and experts")
    m.add_argument("--segmenter", required=True, metavar="DIR", help="segmenter directory (train-segmenter output)")
    m.add_argument("--expert", required=True, nargs="+", metavar="DIR", help="expert directories (train-expert output)")
    m.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    m.add_argument("--merge", default="soft",
                   help="merge strategy stored in the model, NAME or NAME:KEY=VALUE,... (default %(default)s)")
    m.add_argument("--working-size", type=positive_int, default=256, help="stored working size (default %(default)s)")
    m.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    m.add_argument("--flip-segmentation", action="store_true",
                   help="store test-time flip averaging of segmentation (one more segmenter pass)")
    m.add_argument("--temperature", type=float, help="annealed-mean temperature for every classification expert")
    m.add_argument("--prior-correction", type=unit_float, metavar="A",
                   help="stored for every classification expert: "
                   + PRIOR_CORRECTION_HELP.replace("as saved", "each one's own"))
    m.set_defaults(func=_cmd_assemble)
    return parser


def _message(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    return first or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some files failed, 2 usage/user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_cli_logging()
    try:
        if argv and argv[0] in TRAIN_COMMANDS:
            return _run_training(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except SystemExit as e:  # argparse: --help/--version (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # WeightsNotFoundError, a full disk while checkpointing...
        print(f"{PROG}: error: {_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
