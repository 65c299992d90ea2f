"""The one ``main()`` of the training commands: each command supplies its options and what it trains, this runs it.

A command module (``expertcolor.train.expert``, ``expertcolor.train.segmenter``) has, in the style of
torchvision's reference scripts, ``get_args_parser()`` and ``main(args)``; its ``main`` is
``run_training(args, build)`` with its own ``build``. The steps, the same for every command:

1. parse the options (``get_args_parser().parse_args()``, or ``expertcolor train-...``);
2. distributed setup (:func:`~expertcolor.train.distributed.setup_distributed`) and ``--threads``;
3. ``build(args, dist)``: the command resolves the options that depend on its data or its start
   model (``--loss auto``, ``--classes``, ``--init-from``...) and builds data, model, loss and
   evaluation into a :class:`TrainingRun`;
4. :class:`~expertcolor.train.trainer.Trainer`: records the resolved options in ``OUT/args.json``
   (after comparing them with the checkpoint's on ``--resume``), trains, checkpoints, evaluates;
5. the command's ``save`` writes the trained model beside them (rank 0, finished runs only);
6. cleanup of the process group, also after an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from .distributed import DistInfo, cleanup_distributed, setup_distributed
from .trainer import Trainer

__all__ = ["TrainingRun", "run_training", "run_module"]

logger = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """What a training command builds from its options (every rank builds the same).

    Attributes:
        model: the module trained; ``model(x)`` gives what ``criterion`` scores.
        criterion: ``loss = criterion(model(x), target)``.
        train_set: yields ``(x, target)``.
        evaluate: ``metrics = evaluate(model)`` after every epoch (see :class:`~expertcolor.train.trainer.Trainer`).
        save: ``save(result, wall_time_s)`` writes the trained model once the run finished (rank 0
            only) and returns what to add to the result, e.g. ``{"expert_dir": ...}``.
        description: what is trained on what, for the log line at the start.
        sample_weights: per-item draw weights ``(len(train_set),)``; None draws a permutation.
    """

    model: nn.Module
    criterion: nn.Module
    train_set: Dataset
    evaluate: Callable[[nn.Module], dict[str, float]]
    save: Callable[[dict[str, Any], float], dict[str, Any]]
    description: str
    sample_weights: torch.Tensor | None = None


def run_training(
    args: argparse.Namespace, build: Callable[[argparse.Namespace, DistInfo], TrainingRun]
) -> dict[str, Any]:
    """Train as the options say, with the command's ``build``.

    Args:
        args: the command's parsed options (with :func:`~expertcolor.train.options.add_common_args`'s).
        build: ``build(args, dist) -> TrainingRun``; may complete ``args`` (resolved options are
            what ``args.json`` and the model's provenance record).

    Returns:
        The final training state (``epoch``, ``global_step``, ``images_seen``, ``train_time``,
        ``history``, ``stopped``) plus what ``save`` returned when the run finished.
    """
    t_start = time.time()
    dist = setup_distributed(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        run = build(args, dist)
        trainer = Trainer(args, run.model, run.criterion, run.train_set, run.evaluate, dist,
                          sample_weights=run.sample_weights)
        if dist.is_main:
            logger.info("%s, %d steps/epoch x %d epochs, device %s, world size %d", run.description,
                        trainer.steps_per_epoch, args.epochs, dist.device, dist.world_size)
        result = trainer.fit()
        if result["stopped"] or not dist.is_main:
            return result
        result.update(run.save(result, time.time() - t_start))
        return result
    finally:
        cleanup_distributed(dist)


def run_module(module: ModuleType, argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    """The command-line entry of a training command module: parse ``argv``, show log lines, run.

    Bad data or options (``FileNotFoundError``, ``NotADirectoryError``, ``ValueError``) end the
    process with a one-line message and exit status 1 instead of a traceback.
    """
    from .._log import configure_cli_logging

    parser = module.get_args_parser()
    if prog:
        parser.prog = prog
    configure_cli_logging()
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        module.main(args)
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:
        sys.exit(f"{parser.prog}: error: {e}")
