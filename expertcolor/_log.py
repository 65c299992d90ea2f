"""How the command-line entry points show the library's ``logging`` messages."""

from __future__ import annotations

import logging
import sys


def configure_cli_logging() -> None:
    """Show ``expertcolor`` messages (INFO and up) as plain lines on stderr.

    Leaves alone a program that configured logging itself (root handlers present, or a level set
    on the ``expertcolor`` logger).
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    package = logging.getLogger("expertcolor")
    if package.level == logging.NOTSET:
        package.setLevel(logging.INFO)
