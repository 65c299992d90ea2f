"""ONNX export and the onnxruntime backend: same photos as torch up to float rounding."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from expertcolor import ExpertColorizer
from expertcolor.cli import main
from expertcolor.onnx import ONNX_NAME, OnnxNetwork, export_onnx, has_onnx

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_dir(tiny_model_dir, tmp_path_factory):
    return export_onnx(tiny_model_dir, tmp_path_factory.mktemp("onnx") / "model")


def test_export_writes_a_graph_per_network_into_the_manifest(onnx_dir, tiny_model_dir):
    assert has_onnx(onnx_dir) and not has_onnx(tiny_model_dir)
    manifest = json.loads((onnx_dir / "manifest.json").read_text())["files"]
    graphs = sorted(k for k in manifest if k.endswith(ONNX_NAME))
    assert graphs == sorted([f"segmenter/{ONNX_NAME}"] + [f"experts/{n}/{ONNX_NAME}"
                                                         for n in ("animals", "birds", "faces", "places")])


@pytest.mark.parametrize("shape", [(45, 61), (64, 128), (130, 97)])
def test_onnxruntime_matches_torch(onnx_dir, shape):
    torch.manual_seed(1)
    L = torch.rand(1, 1, *shape) * 100
    ref = ExpertColorizer.from_pretrained(onnx_dir, device="cpu")
    fast = ExpertColorizer.from_pretrained(onnx_dir, device="cpu", backend="onnxruntime")
    assert isinstance(fast.segmenter.net, OnnxNetwork)
    with torch.no_grad():
        a, b = ref.predict_ab(L), fast.predict_ab(L)
    assert torch.allclose(a["probs"], b["probs"], atol=1e-4)
    # Lab ab units: 1e-2 is far below what a display shows (one 8-bit step is ~0.4).
    assert float((a["ab"] - b["ab"]).abs().max()) < 1e-2
    rgb = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    diff = np.abs(ref.colorize(rgb).astype(int) - fast.colorize(rgb).astype(int))
    assert diff.max() <= 1


def test_batches_and_thread_counts_get_their_own_sessions(onnx_dir):
    net = OnnxNetwork(onnx_dir / "segmenter" / ONNX_NAME)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1 = net(torch.zeros(3, 1, 64, 96))
        torch.set_num_threads(2)
        y2 = net(torch.zeros(3, 1, 64, 96))
    finally:
        torch.set_num_threads(before)
    assert y1.shape[0] == 3 and torch.allclose(y1, y2, atol=1e-5)
    assert len(net._sessions) >= 2


def test_missing_graphs_and_bad_backend_are_clear_errors(tiny_model_dir, onnx_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="export-onnx"):
        ExpertColorizer.from_pretrained(tiny_model_dir, device="cpu", backend="onnxruntime")
    with pytest.raises(ValueError, match="backend must be"):
        ExpertColorizer.from_pretrained(tiny_model_dir, device="cpu", backend="tensorrt")
    with pytest.raises(FileExistsError, match="not empty"):
        export_onnx(tiny_model_dir, onnx_dir)
    tampered = tmp_path / "tampered"
    shutil.copytree(onnx_dir, tampered)
    (tampered / "segmenter" / ONNX_NAME).write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="manifest"):  # a replaced graph is caught before it is parsed
        ExpertColorizer.from_pretrained(tampered, device="cpu", backend="onnxruntime")


def test_cli_export_and_colorize_with_onnxruntime(tiny_model_dir, tmp_path, rgb_image):
    from PIL import Image

    out = tmp_path / "m"
    assert main(["export-onnx", str(tiny_model_dir), str(out)]) == 0
    Image.fromarray(rgb_image).save(tmp_path / "a.png")
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", str(out),
                 "--backend", "onnxruntime", "--device", "cpu"]) == 0
    assert (tmp_path / "o" / "a.png").is_file()
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "--model",
                 str(tiny_model_dir), "--backend", "onnxruntime", "--device", "cpu"]) == 2
