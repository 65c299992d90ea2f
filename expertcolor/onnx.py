"""ONNX export of a model directory's networks, and the onnxruntime backend that runs them on CPU.

Only the networks (the segmenter's and each expert's encoder-decoder) run in onnxruntime; the rest
of the pipeline (routing, merging, decoding the 225 colour bins, finishing at full resolution)
stays in torch, so the two backends give the same photos up to float rounding.

Example::

    expertcolor export-onnx MODEL_DIR OUT_DIR        # or export_onnx(MODEL_DIR, OUT_DIR)
    colorizer = ExpertColorizer.from_pretrained(OUT_DIR, backend="onnxruntime")
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import modeldir

logger = logging.getLogger(__name__)

__all__ = ["ONNX_NAME", "BACKENDS", "OnnxNetwork", "export_onnx", "use_onnxruntime", "has_onnx"]

#: The file, beside each network's ``model.safetensors``, that holds its ONNX graph.
ONNX_NAME = "model.onnx"
#: Names accepted by ``ExpertColorizer.from_pretrained(..., backend=...)``.
BACKENDS = ("torch", "onnxruntime")
_OPSET = 17
_INSTALL = 'pip install "expertcolor[onnx]"'


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(f"the onnxruntime backend needs the onnxruntime package: {_INSTALL}") from e
    return onnxruntime


class _OutDict(nn.Module):
    """Wraps a network that returns ``{"out": tensor}`` (torchvision segmentation) for export."""

    def __init__(self, net: nn.Module, key: str) -> None:
        super().__init__()
        self.net, self.key = net, key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[self.key]


class OnnxNetwork(nn.Module):
    """An onnxruntime session behind the interface of the torch network it replaces.

    Input and output are float32 tensors ``(B, C, H, W)`` with any batch, height and width the
    original network accepts. A session is made per torch thread count on first use, so that
    ``torch.set_num_threads`` (which ``expertcolor colorize`` lowers for small photos) also sets
    onnxruntime's intra-op threads.

    Args:
        path: the ``.onnx`` file.
        output_key: when set, ``forward`` returns ``{output_key: tensor}`` like the network it replaces.
    """

    def __init__(self, path: str | os.PathLike, output_key: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist: export the model first with "
                                    "`expertcolor export-onnx MODEL_DIR OUT_DIR`")
        self.output_key = output_key
        self._sessions: dict[int, Any] = {}
        self._session()  # fail at load time, not at the first photo

    def _session(self) -> Any:
        threads = torch.get_num_threads()
        if threads not in self._sessions:
            ort = _ort()
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Without this, onnxruntime's idle threads spin after each run and slow torch's next op
            # (the merge and finishing run in torch between network calls).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                self._sessions[threads] = ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # onnxruntime raises its own exception types
                raise ValueError(f"{self.path} is not a loadable ONNX model ({e}); export it again") from e
        return self._sessions[threads]

    def forward(self, x: torch.Tensor) -> Any:
        if x.device.type != "cpu":
            raise ValueError(f"the onnxruntime backend runs on the CPU; got a tensor on {x.device}")
        session = self._session()
        name = session.get_inputs()[0].name
        y = torch.from_numpy(session.run(None, {name: x.detach().float().contiguous().numpy()})[0])
        return {self.output_key: y} if self.output_key else y

    def extra_repr(self) -> str:
        return str(self.path)


def _networks(colorizer: Any) -> dict[str, tuple[nn.Module, str | None]]:
    """``{relative folder: (network module, output key)}`` for the segmenter and every expert."""
    from .segmentation import TorchvisionSegmenter

    seg = colorizer.segmenter
    if not isinstance(getattr(seg, "net", None), nn.Module):
        raise TypeError(f"cannot export segmenter {type(seg).__name__}: it has no `.net` network")
    out: dict[str, tuple[nn.Module, str | None]] = {
        modeldir.SEGMENTER_DIR: (seg.net, "out" if isinstance(seg, TorchvisionSegmenter) else None)
    }
    for name, expert in colorizer.experts.items():
        out[modeldir.expert_subdir(".", name).as_posix()] = (expert.net, None)
    return out


def _export_one(net: nn.Module, key: str | None, path: Path, in_channels: int) -> None:
    module = (_OutDict(net, key) if key else net).float().eval()
    x = torch.zeros(1, in_channels, 64, 96)
    axes = {0: "batch", 2: "height", 3: "width"}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with torch.inference_mode():
            # The TorchScript exporter: dynamic height and width, no extra dependency at export time.
            torch.onnx.export(module, (x,), tmp, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": axes}, opset_version=_OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _in_channels(net: nn.Module) -> int:
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    raise TypeError(f"cannot tell the input channels of {type(net).__name__}")


def export_onnx(model_dir: str | os.PathLike | None, out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir``: a copy of the model directory with an ONNX graph beside every network.

    Args:
        model_dir: a model directory; ``None`` exports the default weights embedded in the package.
        out_dir: the output folder; may be ``model_dir`` itself (the graphs are added in place).
            An existing ``out_dir`` that is another model directory is refused.

    Returns:
        ``out_dir``, loadable with ``ExpertColorizer.from_pretrained(out_dir, backend="onnxruntime")``
        (and still with the torch backend).
    """
    from .colorizer import ExpertColorizer

    try:
        import onnx  # noqa: F401 - torch's exporter writes the graph through it
    except ImportError as e:
        raise ImportError(f"export-onnx needs the onnx package: {_INSTALL}") from e
    src = Path(modeldir.default_model_dir() if model_dir is None else model_dir)
    out = Path(out_dir)
    colorizer = ExpertColorizer.from_pretrained(src, device="cpu")  # also verifies the manifest
    if out.resolve() != src.resolve():
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not empty: choose a new folder, or export in place "
                                  f"with OUT_DIR = MODEL_DIR")
        shutil.copytree(src, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(ONNX_NAME, ".*"))
    for rel, (net, key) in _networks(colorizer).items():
        path = out / rel / ONNX_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        _export_one(net, key, path, _in_channels(net))
        logger.info("wrote %s", path)
    modeldir.write_manifest(out)
    return out


def has_onnx(model_dir: str | os.PathLike) -> bool:
    """Whether ``model_dir`` holds an ONNX graph for its segmenter (written by :func:`export_onnx`)."""
    return (Path(model_dir) / modeldir.SEGMENTER_DIR / ONNX_NAME).is_file()


def use_onnxruntime(colorizer: Any, model_dir: str | os.PathLike) -> Any:
    """Swap the colorizer's networks for onnxruntime sessions of the graphs in ``model_dir``.

    Returns:
        ``colorizer`` (changed in place).

    Raises:
        FileNotFoundError: if a graph is missing (the message says how to export one).
        ValueError: if the colorizer is not on the CPU.
    """
    if colorizer.device.type != "cpu":
        raise ValueError(f"the onnxruntime backend runs on the CPU; the colorizer is on {colorizer.device}")
    _ort()
    model_dir = Path(model_dir)
    owners = {modeldir.SEGMENTER_DIR: colorizer.segmenter}
    owners.update({modeldir.expert_subdir(".", n).as_posix(): e for n, e in colorizer.experts.items()})
    for rel, (_, key) in _networks(colorizer).items():
        owners[rel].net = OnnxNetwork(model_dir / rel / ONNX_NAME, output_key=key)
    return colorizer
