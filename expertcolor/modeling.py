"""Shared plumbing for every network in the package: config + safetensors directories.

A pretrained directory holds ``config.json`` (a dataclass config, plus ``"type"``) and
``model.safetensors``. Nothing here knows about experts or segmentation; both subclass
:class:`PretrainedModel`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from glob import escape as glob_escape
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "PretrainedModel",
    "atomic_write",
    "stale_temp_files",
    "write_json",
    "read_json",
    "sha256_file",
    "load_weights",
    "pad_to_multiple",
    "run_padded",
    "load_encoder_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

T = TypeVar("T", bound="PretrainedModel")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Write a file atomically: ``write(tmp_path)`` then rename over ``path``.

    A crash mid-write leaves the previous file intact instead of a truncated one. The temporary file
    is ``.<name>.<8 random characters>.tmp`` beside ``path`` (see :func:`stale_temp_files`). The
    result gets the mode of any new file, ``0o666`` minus the umask, even when ``write`` replaces
    the temporary file with a private one of its own (safetensors does). A symlink at ``path`` is
    replaced, never written through.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, mode = _create_temp(path)
    try:
        write(tmp)
        st = os.lstat(tmp)
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != mode:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def _create_temp(path: Path) -> tuple[str, int]:
    """A new empty file beside ``path`` for :func:`atomic_write`, and the mode it was created with.

    ``tempfile.mkstemp`` would make it 0600 whatever the umask, and that mode survived
    ``os.replace``. ``os.open(..., 0o666)`` lets the kernel apply the umask instead, so the new
    file's mode is the one to give the result, read without a process-wide ``os.umask`` call
    (which would race with other threads). The random part comes from :mod:`secrets`, not from the
    global ``random`` generator, whose state training checkpoints record.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(f"could not create a temporary file beside {path}")


def stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Temporary files that :func:`atomic_write` left beside ``path`` when it was killed mid-write.

    Only regular files named ``.<name of path>.<8 characters>.tmp`` are returned; deleting them is
    safe once no other process is writing ``path``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = []
    for p in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        m = _TEMP_NAME.fullmatch(p.name)
        if m and m.group("name") == path.name and p.is_file() and not p.is_symlink():
            found.append(p)
    return sorted(found)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(path, _write)


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON object, with an error that names the file when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing {path.name} in {path.parent}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict safely: safetensors, or a torch file with ``weights_only=True``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file cannot be read as weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise ValueError(f"cannot read weights from {path}: {e}") from None
    # Accept training checkpoints ({"model": state_dict, ...}) as well as plain state dicts.
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict")
    return obj


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 64) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the last two dims up to a multiple (encoders downsample by 32).

    Sides are also padded to at least ``min_size``: the deepest features must hold more than one
    value, or GroupNorm layers in decoders fail on tiny images.

    Returns:
        The padded tensor and the original ``(H, W)`` to crop back to.
    """
    h, w = x.shape[-2:]
    ph, pw = max((-h) % multiple, min_size - h), max((-w) % multiple, min_size - w)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def run_padded(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run an smp network on any input size: pad with :func:`pad_to_multiple`, then crop the output
    back to the input's extent at the network's own output stride (1 for full-resolution decoders,
    4 for FPN with ``upsampling=1``; the cropped size is rounded up)."""
    x, (h, w) = pad_to_multiple(x, 32)
    out = net(x)
    stride = x.shape[-1] // out.shape[-1]
    return out[..., : -(-h // stride), : -(-w // stride)]


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Initialise an smp encoder from a local ImageNet checkpoint (torchvision layout).

    Classifier keys are dropped; a 3-channel first conv is summed over RGB when the encoder
    takes one channel (what smp does for its own pretrained weights).

    Raises:
        ValueError: if the checkpoint does not fit the encoder.
    """
    sd = {k: v for k, v in load_weights(path).items() if not k.startswith(("classifier.", "fc."))}
    own = encoder.state_dict()
    for k, v in list(sd.items()):
        if k in own and v.dim() == 4 and own[k].dim() == 4 and v.shape[1] == 3 and own[k].shape[1] == 1:
            sd[k] = v.sum(1, keepdim=True)
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit encoder {type(encoder).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    bad = [k for k in own if own[k].shape != sd[k].shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch for {bad[:3]}")
    nn.Module.load_state_dict(encoder, sd, strict=True)


class PretrainedModel(nn.Module):
    """Base class: a module described by a frozen dataclass ``config``.

    Subclasses set ``config_class`` and ``model_type`` and build their layers from the config
    in ``__init__(config)``.
    """

    config_class: ClassVar[type]
    model_type: ClassVar[str]

    def __init__(self, config: Any) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # -- serialization -------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The JSON form of the config, tagged with the model type."""
        return {"type": self.model_type, **_to_jsonable(dataclasses.asdict(self.config))}

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        Args:
            directory: target folder (created).
            dtype: store floating point weights in this dtype (``torch.float16`` halves the size);
                they are cast back to float32 on load.

        Returns:
            The directory path.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sd = {}
        for k, v in self.state_dict().items():
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            sd[k] = v.contiguous()
        atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(sd, tmp, metadata={"format": "pt"}))
        write_json(directory / CONFIG_NAME, self.config_dict())
        return directory

    @classmethod
    def config_from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Build the config dataclass from JSON, ignoring the ``type`` tag.

        Raises:
            ValueError: on unknown or missing fields.
        """
        data = dict(data)
        data.pop("type", None)
        names = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.config_class.__name__} fields: {unknown}")
        for f in dataclasses.fields(cls.config_class):
            if f.name in data and isinstance(data[f.name], list):
                data[f.name] = tuple(data[f.name])
        try:
            return cls.config_class(**data)
        except TypeError as e:
            raise ValueError(f"invalid {cls.config_class.__name__}: {e}") from None

    @classmethod
    def from_pretrained(cls: type[T], directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> T:
        """Load a model written by :meth:`save_pretrained` (no network access).

        Raises:
            FileNotFoundError: if the directory or one of its files is missing.
            ValueError: if the config or weights do not fit this class.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"model directory not found: {directory}")
        data = read_json(directory / CONFIG_NAME)
        if data.get("type") != cls.model_type:
            raise ValueError(f"{directory} holds a {data.get('type')!r} model, expected {cls.model_type!r}")
        model = cls(cls.config_from_dict(data))
        sd = load_weights(directory / WEIGHTS_NAME)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ValueError(f"weights in {directory} do not fit its config.json: {e}") from None
        return model.to(map_location).eval()


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    return obj
