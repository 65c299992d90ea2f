"""The training commands, by name: ``train-expert`` (:mod:`expertcolor.train.expert`) and
``train-segmenter`` (:mod:`expertcolor.train.segmenter`), each a module with ``get_args_parser()``
and ``main(args)``.

Example::

    from expertcolor.train import list_training_commands, load_training_command

    module = load_training_command("train-expert")
    module.main(module.get_args_parser().parse_args(["--root", "photos", "--out", "runs/x"]))

The package imports no command module until one is asked for.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .._registry import Registry

__all__ = ["TRAINING_COMMANDS", "list_training_commands", "load_training_command"]

#: Command name -> the module that implements it (a dotted name, imported on demand).
TRAINING_COMMANDS: Registry[str] = Registry("training command")
TRAINING_COMMANDS.register("train-expert", f"{__name__}.expert")
TRAINING_COMMANDS.register("train-segmenter", f"{__name__}.segmenter")


def list_training_commands() -> list[str]:
    """The training command names, sorted: ``["train-expert", "train-segmenter"]``."""
    return TRAINING_COMMANDS.names()


def load_training_command(name: str) -> ModuleType:
    """Import the module of training command ``name`` (it has ``get_args_parser()`` and ``main(args)``).

    Raises:
        KeyError: if ``name`` is not a training command; the message lists the choices.
        ModuleNotFoundError: if the module or a package it needs is missing from the installation.
    """
    return importlib.import_module(TRAINING_COMMANDS.get(name))
