"""``python -m expertcolor ...``: the ``expertcolor`` command line."""

import sys

from .cli import main

sys.exit(main())
