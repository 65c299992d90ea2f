"""Command-line options shared by the training commands, and how a run records them."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ..argtypes import nonnegative_float, nonnegative_int, positive_int
from .checkpoint import CHECKPOINT_NAME

__all__ = ["add_common_args", "collect_names", "command_line", "resolved_args"]


def add_common_args(parser: argparse.ArgumentParser, resolution: int, batch_size: int, lr: float) -> None:
    """Add the ``training`` option group every training command shares.

    Args:
        parser: the command's parser.
        resolution, batch_size, lr: the command's defaults of ``--resolution``, ``--batch-size``
            and ``--lr``.
    """
    g = parser.add_argument_group("training")
    g.add_argument("--resolution", type=positive_int, default=resolution,
                   help="square training crop side (default %(default)s)")
    g.add_argument("--epochs", type=positive_int, default=10)
    g.add_argument("--batch-size", type=positive_int, default=batch_size, help="per process (default %(default)s)")
    g.add_argument("--lr", type=nonnegative_float, default=lr, help="peak AdamW learning rate (default %(default)s)")
    g.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    g.add_argument("--warmup-steps", type=nonnegative_int, default=None,
                   help="linear warm-up (default: 3%% of steps, <= 300)")
    g.add_argument("--workers", type=nonnegative_int, default=2,
                   help="DataLoader worker processes (default %(default)s)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--init-encoder", type=str, default=None, metavar="PATH",
                   help="ImageNet checkpoint for the encoder, e.g. mobilenet_v2_imagenet_bnstats.safetensors")
    g.add_argument("--max-images", type=positive_int, default=None,
                   help="use at most this many training images (seeded pick)")
    g.add_argument("--max-val-images", type=positive_int, default=512, help="validate on at most this many images")
    g.add_argument("--out", type=str, required=True, metavar="DIR", help="output directory")
    g.add_argument("--resume", action="store_true", help=f"continue from DIR/{CHECKPOINT_NAME}")
    g.add_argument("--device", type=str, default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    g.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision on CUDA (auto: bf16 where supported, else fp16); CPU always fp32")
    g.add_argument("--save-every", type=positive_int, default=200, help="checkpoint every N steps (and every epoch)")
    g.add_argument("--stop-after-steps", type=positive_int, default=None,
                   help="debugging: checkpoint and stop after this global step, as if killed")
    g.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads in the main process")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def collect_names(values: Sequence[str] | None) -> list[str]:
    """Split comma-separated and repeated option values: ``["a,b", "c"] -> ["a", "b", "c"]``."""
    out: list[str] = []
    for v in values or []:
        out += [s.strip() for s in v.split(",") if s.strip()]
    return out


def command_line() -> str:
    """This process's command line, as a user would type it again.

    ``python -m <module>`` when Python runs a module of the package (``python -m expertcolor``,
    ``python -m expertcolor.train``, also under ``torchrun``, ``python -m expertcolor.train.expert``),
    else the program's file name (``expertcolor``).
    """
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None) or ""
    if name == "expertcolor" or name.startswith("expertcolor."):
        prog = "python -m " + name.removesuffix(".__main__")
    else:
        prog = os.path.basename(sys.argv[0])
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])])


def resolved_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options as JSON values (callables left out, others as ``str`` when not JSON), plus the
    command line under ``"command"``."""
    d = {k: v for k, v in vars(args).items() if not callable(v)}
    d["command"] = command_line()
    return json.loads(json.dumps(d, default=str))
