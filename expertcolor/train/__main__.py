"""``python -m expertcolor.train [expert|segmenter] ...`` (default: expert training)."""

from __future__ import annotations

import sys


def run(argv: list[str] | None = None) -> None:
    """Dispatch to the expert (default) or segmenter training script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("segmenter", "train-segmenter"):
        from .segmenter import get_args_parser, main

        argv = argv[1:]
    else:
        from .expert import get_args_parser, main

        if argv and argv[0] in ("expert", "train-expert"):
            argv = argv[1:]
    from .._log import configure_cli_logging

    configure_cli_logging()
    try:
        main(get_args_parser().parse_args(argv))
    except (FileNotFoundError, NotADirectoryError, ValueError) as e:  # bad data or arguments: say which
        sys.exit(f"expertcolor.train: error: {e}")


if __name__ == "__main__":
    run()
