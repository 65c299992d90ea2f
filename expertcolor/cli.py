"""The ``expertcolor`` command line: parses arguments and dispatches to the library.

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

The work is done elsewhere: :mod:`expertcolor.batch` (colorize many files),
:mod:`expertcolor.modeldir` (assemble, add-expert), :mod:`expertcolor.evaluation`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from ._log import configure_cli_logging
from .argtypes import nonnegative_float, nonnegative_int, positive_int, unit_float
from .batch import SMALL_PIXELS, OutputExistsError, describe_error, first_line
from .train import TRAINING_COMMANDS, list_training_commands

__all__ = ["main", "build_parser"]

PROG = "expertcolor"
# The training commands' registry (expertcolor.train) as a plain dict: command -> module.
TRAIN_COMMANDS = {name: TRAINING_COMMANDS.get(name) for name in list_training_commands()}
# Evaluation studies: each module has get_args_parser() and main(args), like the training commands.
STUDY_COMMANDS = {
    "compare": ("expertcolor.evaluation.stats", "paired bootstrap of two variants' per-photo scores (seeds averaged)"),
    "in-domain": ("expertcolor.evaluation.in_domain", "each expert against the generalist on its own domain"),
    "oracle-routing": ("expertcolor.evaluation.oracle", "evaluate with routing by the true group masks"),
    "tune-context": ("expertcolor.evaluation.tune_context", "choose the context merge on validation photos"),
    "tune-decoding": ("expertcolor.evaluation.tune_decoding", "choose temperature and prior correction"),
}


class UserError(Exception):
    """A problem with the command line or its inputs: printed as one line, exit status 2."""


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
    if getattr(args, "backend", "torch") != "torch":
        overrides["backend"] = args.backend
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


def _cmd_colorize(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    from .batch import collect_inputs, colorize_files, torchrun_shard

    out_dir = Path(args.output)
    files, skipped = collect_inputs(args.inputs, exclude=out_dir)
    videos = _videos(args.inputs, skipped)
    skipped = [p for p in skipped if p not in videos]
    files = [(f, r) for f, r in files if f not in videos]  # an animated .gif is a video
    if not files and not videos:
        raise UserError("no image or video files found in " + ", ".join(args.inputs))
    if videos and torchrun_shard() is not None:
        raise UserError("videos are not sharded under torchrun; colorize them in a plain run")
    # Under torchrun every rank runs this command on the same inputs and takes its share of them.
    shard = torchrun_shard()
    if shard is not None and args.device is None and torch.cuda.is_available():
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', shard[0])) % torch.cuda.device_count()}"
    colorizer = _load_colorizer(args)

    def report(path: Path, err: BaseException) -> None:
        tqdm.write(f"{PROG}: skipping {path}: {_describe(err)}", file=sys.stderr)

    summary = colorize_files(
        colorizer, files, out_dir, details=args.details, saturation=args.saturation, overwrite=args.overwrite,
        workers=args.workers, threads=args.threads, max_pixels=args.max_pixels, on_failure=report,
        shard=shard, progress=shard is None or shard[0] == 0,
    )
    counts = [summary.colorized, len(summary.failed), summary.kept]
    for video in videos:
        ok = _colorize_video(colorizer, video, out_dir / video.name, args, report)
        counts[0 if ok else 1] += 1
    if shard is not None:
        counts = _sum_over_ranks(counts)
        if shard[0] != 0:
            return 1 if counts[1] else 0
    line = f"colorized {counts[0]}, failed {counts[1]}"
    if counts[2]:
        line += f" ({counts[2]} because the output already existed: --overwrite replaces it)"
    if skipped:
        line += f", skipped {len(skipped)} non-image file{'s' if len(skipped) != 1 else ''}"
    if shard is not None:
        line += f" (over {shard[1]} ranks)"
    print(f"{line} -> {out_dir}")
    return 1 if counts[1] else 0


def _videos(inputs: Sequence[str], skipped: Sequence[Path]) -> list[Path]:
    """Video files among the inputs: named ones, and those that photo collection skipped in folders."""
    from .video import is_video

    named = [Path(i) for i in inputs if Path(i).is_file()]
    return list(dict.fromkeys(p for p in [*named, *skipped] if is_video(p)))


def _colorize_video(colorizer: Any, src: Path, dst: Path, args: argparse.Namespace, report: Any) -> bool:
    """One video into ``dst`` (same frame count, size, rate and audio); a failure is reported, not raised."""
    from .video import colorize_video_file

    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        colorize_video_file(colorizer, src, dst, overwrite=args.overwrite, codec=args.codec, crf=args.crf,
                            stabilize=not args.no_stabilize, progress=True, saturation=args.saturation)
        return True
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - reported for this video, which is skipped
        report(src, e)
        return False


def _sum_over_ranks(counts: list[int]) -> list[int]:
    """Sum integer counts over torchrun's ranks (gloo: works on CPU-only machines and beside CUDA)."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    try:
        t = torch.tensor(counts, dtype=torch.int64)
        dist.all_reduce(t)
        return [int(v) for v in t]
    finally:
        dist.destroy_process_group()


def _describe(err: BaseException) -> str:
    """One line for a per-file failure, with the flag that changes it where there is one."""
    if isinstance(err, OutputExistsError):
        return f"{first_line(err)}; --overwrite replaces it"
    return describe_error(err)


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
    from .modeldir import add_expert
    from .modeling import read_json

    for d, what in ((args.model_dir, "model"), (args.expert_dir, "expert")):
        if not Path(d).is_dir():
            raise UserError(f"{what} directory not found: {d}")
    classes = add_expert(args.model_dir, args.expert_dir, args.classes, args.temperature)
    name = read_json(Path(args.expert_dir) / "config.json").get("name")
    print(f"added expert {name!r} to {args.model_dir}; routed: {', '.join(classes)}")
    return 0


def _cmd_assemble(args: argparse.Namespace) -> int:
    from .modeldir import assemble

    colorizer = assemble(
        args.out, args.segmenter, args.expert, merge=_merge_from_arg(args.merge), working_size=args.working_size,
        flip_segmentation=args.flip_segmentation, temperature=args.temperature,
        prior_correction=args.prior_correction, fp16=args.fp16,
    )
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*.safetensors"))
    print(f"wrote {args.out} ({len(colorizer.experts)} experts, {size / 2**20:.1f} MiB of weights): "
          f"{colorizer.routing}")
    return 0


def _run_training(command: str, argv: list[str]) -> int:
    """``expertcolor train-expert ARGS`` = ``python -m expertcolor.train.expert ARGS``; the studies likewise."""
    module_name = TRAIN_COMMANDS[command] if command in TRAIN_COMMANDS else STUDY_COMMANDS[command][0]
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
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="what runs the networks: torch (default) or onnxruntime on the CPU (needs a model "
                   "directory from `export-onnx` and `pip install \"expertcolor[onnx]\"`)")


def build_parser() -> argparse.ArgumentParser:
    """The top-level argument parser (training subcommands are listed; their own parsers do the rest)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Colorize grayscale photos with segmentation-routed domain experts."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("colorize", help="colorize photos and videos (files, globs or folders)")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, globs or folders (recursive)")
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
    v = c.add_argument_group("videos (.mp4 .mov .avi .mkv .webm, animated .gif; needs expertcolor[video])")
    v.add_argument("--codec", help="video encoder (default: libx264, yuv420p; GIFs stay GIFs)")
    v.add_argument("--crf", type=nonnegative_int, help="encoder quality, lower is better (default: visually lossless)")
    v.add_argument("--no-stabilize", action="store_true",
                   help="colorize every frame alone instead of carrying routing and colour along the motion")
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
    for command, (_, what) in STUDY_COMMANDS.items():
        sub.add_parser(command, add_help=False, help=f"{what} (see `{PROG} {command} --help`)")

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

    x = sub.add_parser("export-onnx", help="write a copy of a model directory with ONNX graphs of its networks "
                       "(for --backend onnxruntime)")
    x.add_argument("model_dir", metavar="MODEL_DIR", help="model directory, or 'default' for the embedded weights")
    x.add_argument("out_dir", metavar="OUT_DIR", help="new folder to write (MODEL_DIR itself adds the graphs in place)")
    x.set_defaults(func=_cmd_export_onnx)
    return parser


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from .onnx import export_onnx

    src = None if args.model_dir == "default" else args.model_dir
    out = export_onnx(src, args.out_dir)
    print(f"wrote ONNX graphs -> {out} (use it with --model {out} --backend onnxruntime)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some files failed, 2 usage/user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_cli_logging()
    try:
        if argv and (argv[0] in TRAIN_COMMANDS or argv[0] in STUDY_COMMANDS):
            return _run_training(argv[0], argv[1:])
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except SystemExit as e:  # argparse: --help/--version (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:  # WeightsNotFoundError, a full disk while checkpointing...
        print(f"{PROG}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except ImportError as e:  # an optional extra that is not installed: the message names it
        print(f"{PROG}: error: {first_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
