"""Deprecated alias of :mod:`expertcolor.modeldir`, the model directory format; import from there.

``add_expert_to_model_dir`` is :func:`expertcolor.modeldir.add_expert`.
"""

import warnings

from .modeldir import (
    FORMAT_VERSION,
    WeightsNotFoundError,
    default_model_dir,
    expert_subdir,
    verify_manifest,
    write_manifest,
)
from .modeldir import add_expert as add_expert_to_model_dir

__all__ = [
    "FORMAT_VERSION",
    "default_model_dir",
    "write_manifest",
    "verify_manifest",
    "add_expert_to_model_dir",
    "expert_subdir",
    "WeightsNotFoundError",
]

warnings.warn("expertcolor.hub is deprecated: import from expertcolor.modeldir "
              "(add_expert_to_model_dir is modeldir.add_expert)", DeprecationWarning, stacklevel=2)
