"""How much would perfect routing buy? Evaluate a model routed by the ground-truth group masks.

The command line of :mod:`expertcolor.evaluation.oracle` (see its docstring and ``--help``).
"""

import sys

from expertcolor.evaluation.oracle import get_args_parser, main

if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (ValueError, NotADirectoryError, FileNotFoundError) as e:
        sys.exit(f"oracle_routing: {e}")
