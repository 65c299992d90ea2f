"""Choose the context merge on validation photos: how much should a photo's main subject colour its surroundings?

The command line of :mod:`expertcolor.evaluation.tune_context` (see its docstring and ``--help``).
"""

from expertcolor.evaluation.tune_context import get_args_parser, main

if __name__ == "__main__":
    main(get_args_parser().parse_args())
