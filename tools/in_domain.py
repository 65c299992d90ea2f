"""Does each expert beat the generalist on its own domain? Expert vs generalist on the domain's validation photos.

The command line of :mod:`expertcolor.evaluation.in_domain` (see its docstring and ``--help``).
"""

import sys

from expertcolor.evaluation.in_domain import get_args_parser, main

if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as e:
        sys.exit(f"in_domain: {e}")
