"""expertcolor: colorize grayscale photos with a team of segmentation-routed domain experts.

Public API::

    from expertcolor import ExpertColorizer
    colorizer = ExpertColorizer.from_pretrained()
    rgb = colorizer.colorize("old_photo.jpg")
"""

from .colorizer import ColorizationResult, ExpertColorizer
from .experts import Expert, ExpertConfig, create_expert, list_experts
from .merge import create_merge, list_merges
from .modeldir import WeightsNotFoundError
from .segmentation import GraySegmenter, RoutingTable, Segmenter, SegmenterConfig, TorchvisionSegmenter

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "ExpertColorizer",
    "ColorizationResult",
    "Expert",
    "ExpertConfig",
    "create_expert",
    "list_experts",
    "Segmenter",
    "GraySegmenter",
    "SegmenterConfig",
    "TorchvisionSegmenter",
    "RoutingTable",
    "create_merge",
    "list_merges",
    "WeightsNotFoundError",
]
