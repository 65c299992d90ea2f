"""Domain experts: networks that predict Lab chroma (ab) from lightness (L)."""

from .config import ExpertConfig, check_expert_name
from .model import Expert
from .registry import DEFAULT_EXPERT_ARCH, EXPERTS, create_expert, list_experts, register_expert

__all__ = [
    "Expert",
    "ExpertConfig",
    "check_expert_name",
    "create_expert",
    "list_experts",
    "register_expert",
    "EXPERTS",
    "DEFAULT_EXPERT_ARCH",
]
