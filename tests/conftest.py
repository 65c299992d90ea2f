"""Shared fixtures: tiny random-weight models and the optional ../shared/data folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from expertcolor import ExpertColorizer, GraySegmenter, create_expert

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXPERT_NAMES = ("animals", "birds", "faces", "places")
TOOLS = Path(__file__).resolve().parents[1] / "tools"


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` (developer scripts, not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


def make_colorizer(seed: int = 0, **kwargs) -> ExpertColorizer:
    """Four random-weight experts and a random segmenter (no network access)."""
    torch.manual_seed(seed)
    experts = [create_expert(name=n) for n in EXPERT_NAMES]
    for e in experts:
        # Random init gives nearly neutral output; scale the head so colours are strong.
        with torch.no_grad():
            e.net.segmentation_head[0].weight.mul_(20)
    return ExpertColorizer(experts, GraySegmenter(), device="cpu", **kwargs)


@pytest.fixture(scope="session")
def tiny_colorizer() -> ExpertColorizer:
    return make_colorizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_colorizer) -> Path:
    """A model directory written by ``save_pretrained`` from random-weight models."""
    d = tmp_path_factory.mktemp("model")
    tiny_colorizer.save_pretrained(d)
    return d


@pytest.fixture
def rgb_image() -> np.ndarray:
    """A small synthetic colour photo: gradients plus a saturated square, 45x61."""
    h, w = 45, 61
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.5 * np.sin(x / 5.0)], axis=2)
    img[10:25, 20:40] = [0.9, 0.1, 0.1]
    return (img * 255).astype(np.uint8)
