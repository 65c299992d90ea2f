"""Segmentation: grayscale L -> class probabilities, and routing of classes to experts."""

from .base import Segmenter
from .categories import DEFAULT_EXPERT, DEFAULT_ROUTES, VOC_CATEGORIES
from .registry import SEGMENTERS, create_segmenter, list_segmenters, load_segmenter
from .routing import RoutingTable
from .smp_segmenter import GraySegmenter, SegmenterConfig
from .torchvision_segmenter import TORCHVISION_SEGMENTERS, TorchvisionSegmenter, TorchvisionSegmenterConfig

__all__ = [
    "Segmenter",
    "GraySegmenter",
    "SegmenterConfig",
    "TorchvisionSegmenter",
    "TorchvisionSegmenterConfig",
    "TORCHVISION_SEGMENTERS",
    "RoutingTable",
    "VOC_CATEGORIES",
    "DEFAULT_ROUTES",
    "DEFAULT_EXPERT",
    "load_segmenter",
    "create_segmenter",
    "list_segmenters",
    "SEGMENTERS",
]
