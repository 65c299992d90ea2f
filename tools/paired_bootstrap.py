"""How sure is a difference between two evaluated variants? A paired bootstrap over photos.

The command line of :mod:`expertcolor.evaluation.stats` (see its docstring and ``--help``).
"""

import sys

from expertcolor.evaluation.stats import get_args_parser, main

if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (KeyError, ValueError, FileNotFoundError) as e:
        sys.exit(f"paired_bootstrap: {e}")
