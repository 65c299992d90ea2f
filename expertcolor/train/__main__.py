"""``python -m expertcolor.train [expert|segmenter] ...`` (default: expert training; also under ``torchrun``)."""

from __future__ import annotations

import sys

from . import list_training_commands, load_training_command
from .command import run_module


def run(argv: list[str] | None = None) -> None:
    """Run the training command named first in ``argv`` (``expert``, ``segmenter`` or their
    ``train-`` names), or ``train-expert`` when the first word is an option."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = "train-expert"
    if argv and f"train-{argv[0]}" in list_training_commands():
        command, argv = f"train-{argv[0]}", argv[1:]
    elif argv and argv[0] in list_training_commands():
        command, argv = argv[0], argv[1:]
    run_module(load_training_command(command), argv)


if __name__ == "__main__":
    run()
