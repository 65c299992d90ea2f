"""Pick the experts' decoding (temperature, prior correction) on their own validation photos, not on mixed/.

The command line of :mod:`expertcolor.evaluation.tune_decoding` (see its docstring and ``--help``).
"""

from expertcolor.evaluation.tune_decoding import get_args_parser, main

if __name__ == "__main__":
    main(get_args_parser().parse_args())
