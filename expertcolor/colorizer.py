"""ExpertColorizer: wires segmentation, routing, experts and merging into one call.

It holds no colour maths, routing rule or network code of its own (see ``color``,
``segmentation``, ``experts`` and ``merge``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import modeldir
from .color import lab_to_rgb_gamut
from .experts import Expert, check_expert_name
from .io import DecodedImage, ImageInput, decode_inputs, encode_output, output_dtype, to_uint8
from .merge import MergeStrategy, blend, create_merge, upsample_ab, weight_region
from .segmentation import DEFAULT_EXPERT, DEFAULT_ROUTES, RoutingTable, Segmenter

__all__ = ["ExpertColorizer", "ColorizationResult"]

#: Full-resolution pixels finished at once (rows of about this many pixels per strip); 4 Mpx keeps
#: a 24-Mpx photo's peak memory near its strip's, not the whole photo's.
FINISH_STRIP_PIXELS = 1 << 20


@dataclass
class ColorizationResult:
    """Everything one colorization produced, for inspection and galleries.

    Maps are at working resolution ``(h, w)``; ``rgb`` is at the input's full resolution.

    Attributes:
        rgb: the colorized image, in the caller's type (PIL, ndarray or tensor).
        L: working-resolution lightness ``(h, w)`` in ``[0, 100]``.
        ab: merged chroma ``(2, h, w)``.
        expert_ab: ``{expert: (2, h, w)}`` for every expert that ran; 0 outside the box it ran on
            (see ``crop_margin``).
        weights: ``{expert: (h, w)}`` blend weights (all experts; they sum to 1 per pixel).
        labels: ``(h, w)`` index of the most probable segmentation category.
        categories: category names indexed by ``labels``.
    """

    rgb: Any
    L: np.ndarray
    ab: np.ndarray
    expert_ab: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    labels: np.ndarray
    categories: tuple[str, ...]
    routing: dict[str, np.ndarray] = field(default_factory=dict)

    def expert_map(self) -> np.ndarray:
        """``(h, w)`` index into ``list(weights)`` of the expert with the largest weight."""
        return np.stack(list(self.weights.values())).argmax(0)


class ExpertColorizer:
    """Colorize grayscale photos with a team of domain experts routed by segmentation.

    Args:
        experts: the experts, as a sequence (named by their configs) or ``{name: expert}``.
        segmenter: maps L to class probabilities.
        routing: category -> expert table; default routes VOC person/bird/animals/rest.
        merge: a :class:`~expertcolor.merge.MergeStrategy` or its name.
        working_size: long side (pixels) at which the networks run; smaller images run as they are.
        upsample: ``"guided"`` or ``"bilinear"`` upsampling of chroma to full resolution.
        device: where the networks run (default: CUDA when available, else CPU).
        batch_size: images per forward pass when colorizing lists.
        flip_segmentation: average the segmenter's probabilities over the photo and its mirror image
            (test-time augmentation: one more segmenter pass, steadier routing).
        crop_margin: each expert runs only on the box around the pixels it has weight on, widened
            by this many working-resolution pixels of context (and snapped to the encoder's
            stride); ``None`` runs every active expert on the whole photo.

    Example:
        >>> colorizer = ExpertColorizer.from_pretrained()          # doctest: +SKIP
        >>> rgb = colorizer.colorize("old_photo.jpg")              # doctest: +SKIP
    """

    def __init__(
        self,
        experts: Sequence[Expert] | Mapping[str, Expert],
        segmenter: Segmenter,
        routing: RoutingTable | None = None,
        merge: MergeStrategy | str = "soft",
        working_size: int = 256,
        upsample: str = "guided",
        device: str | torch.device | None = None,
        batch_size: int = 8,
        flip_segmentation: bool = False,
        crop_margin: int | None = 64,
    ) -> None:
        if isinstance(experts, Mapping):
            named = dict(experts)
        else:
            named = {e.name: e for e in experts}
        if not named:
            raise ValueError("ExpertColorizer needs at least one expert")
        for name, e in named.items():
            check_expert_name(name)  # names become folders in model directories
            if not isinstance(e, Expert):
                raise TypeError(f"expert {name!r} is a {type(e).__name__}, not an Expert")
        if not isinstance(segmenter, Segmenter):
            raise TypeError(f"segmenter must be a Segmenter, got {type(segmenter).__name__}")
        self.experts: dict[str, Expert] = named
        self.segmenter = segmenter
        if routing is None:
            routing = _default_routing(segmenter.categories, list(named))
        self.routing = routing.with_experts(list(named))
        if self.routing.categories != tuple(segmenter.categories):
            raise ValueError("routing table categories differ from the segmenter's")
        self.merge = create_merge(merge) if isinstance(merge, str) else merge
        if int(working_size) < 32:
            raise ValueError(f"working_size must be >= 32, got {working_size}")
        self.working_size = int(working_size)
        if upsample not in ("guided", "bilinear"):
            raise ValueError(f"upsample must be 'guided' or 'bilinear', got {upsample!r}")
        self.upsample = upsample
        if int(batch_size) < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = int(batch_size)
        self.flip_segmentation = bool(flip_segmentation)
        if crop_margin is not None and int(crop_margin) < 0:
            raise ValueError(f"crop_margin must be >= 0 or None, got {crop_margin}")
        self.crop_margin = None if crop_margin is None else int(crop_margin)
        self.device = torch.device(device) if device is not None else _default_device()
        self.to(self.device)

    # -- construction / persistence -------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, device: str | torch.device | None = None, **overrides: Any
    ) -> ExpertColorizer:
        """Load a model directory written by :meth:`save_pretrained`; no network access.

        Args:
            path: the directory; ``None`` loads the default weights embedded in the package.
            device: where to run.
            **overrides: constructor arguments that replace the saved ones (``merge``,
                ``working_size``, ``upsample``, ``batch_size``, ``flip_segmentation``, ``crop_margin``), and
                ``prior_correction`` (``[0, 1]``) for every classification expert: how much of
                the training's boost of rare colours to undo (0 vivid as trained, 1 calibrated and
                more neutral; see :meth:`Expert.decode`), and ``backend``: ``"torch"`` (default) or
                ``"onnxruntime"`` (CPU; the directory needs the graphs written by
                :func:`expertcolor.onnx.export_onnx`).

        Raises:
            FileNotFoundError: if the directory (or the embedded default) does not exist.
            ValueError: if files are inconsistent or corrupted.
        """
        directory = modeldir.default_model_dir() if path is None else Path(path)
        backend = overrides.pop("backend", "torch")
        if backend not in ("torch", "onnxruntime"):
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")
        parts = modeldir.load(directory)
        alpha = overrides.pop("prior_correction", None)
        if alpha is not None:
            for e in parts.experts.values():
                if e.config.head == "classification":
                    e.with_decoding(prior_correction=alpha)
        kwargs = {**parts.settings, **overrides}
        colorizer = cls(parts.experts, parts.segmenter, parts.routing, device=device, **kwargs)
        if backend == "onnxruntime":
            from .onnx import use_onnxruntime

            use_onnxruntime(colorizer, directory)
        return colorizer

    def config_dict(self) -> dict[str, Any]:
        """The JSON written to ``config.json`` (see :func:`expertcolor.modeldir.model_config`)."""
        return modeldir.model_config(
            working_size=self.working_size,
            upsample=self.upsample,
            batch_size=self.batch_size,
            flip_segmentation=self.flip_segmentation,
            crop_margin=self.crop_margin,
            merge=self.merge.to_dict(),
            routing=self.routing.to_dict(),
            experts=list(self.experts),
        )

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write the whole model (config, routing, segmenter, experts, manifest) to ``directory``.

        Args:
            directory: target folder; its ``experts/`` and ``segmenter/`` are replaced.
            dtype: optional storage dtype for weights (``torch.float16`` halves the size).
        """
        return modeldir.save(directory, self.config_dict(), self.segmenter, self.experts, dtype=dtype)

    def add_expert(self, expert: Expert, classes: Iterable[str] | None = None) -> None:
        """Add (or replace) an expert and route ``classes`` (default: ``expert.config.classes``) to it.

        Raises:
            ValueError: if a class is unknown to the segmenter.
        """
        classes = list(expert.config.classes if classes is None else classes)
        self.experts[expert.name] = expert.to(self.device).eval()
        routes = dict(self.routing.routes)
        routes.update({c: expert.name for c in classes})
        self.routing = RoutingTable(routes, self.routing.default, self.segmenter.categories, list(self.experts))

    def to(self, device: str | torch.device) -> ExpertColorizer:
        """Move every network to ``device``."""
        self.device = torch.device(device)
        self.segmenter.to(self.device).eval()
        for e in self.experts.values():
            e.to(self.device).eval()
        return self

    # -- inference --------------------------------------------------------------------------------
    def working_shape(self, height: int, width: int) -> tuple[int, int]:
        """Size at which the networks see an ``height x width`` photo (never upscaled)."""
        scale = min(1.0, self.working_size / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))

    @torch.inference_mode()
    def colorize(
        self, images: ImageInput | list[ImageInput], return_details: bool = False, saturation: float = 1.0
    ) -> Any:
        """Colorize one image or a list of images.

        Args:
            images: a path, PIL image, ndarray ``(H, W)``/``(H, W, 3|4)``, tensor ``(B, 1|3, H, W)``,
                or a list of these (batched by size). Colour input is reduced to L first.
            return_details: return :class:`ColorizationResult` objects instead of bare images.
            saturation: chroma multiplier applied before gamut mapping (1 = as predicted).

        Returns:
            The colorized image in the input's type (PIL for paths and PIL, ndarray for ndarrays,
            ``(B, 3, H, W)`` tensor for tensors); a list for list inputs. With ``return_details``
            a result (or a list of results; a tensor batch always gives a list).

        Raises:
            FileNotFoundError, ValueError, TypeError: for missing, unreadable or malformed inputs.
        """
        if not math.isfinite(saturation) or saturation < 0:
            raise ValueError(f"saturation must be a finite number >= 0, got {saturation}")
        is_list = isinstance(images, (list, tuple))
        items = list(images) if is_list else [images]
        if is_list and not items:
            return []
        decoded: list[list[DecodedImage]] = [decode_inputs(x) for x in items]
        flat = [d for group in decoded for d in group]
        results = self._run(flat, return_details, saturation)
        # Re-assemble: tensor inputs come back as one batch tensor per input.
        out: list[Any] = []
        i = 0
        for item, group in zip(items, decoded):
            res = results[i : i + len(group)]
            i += len(group)
            if isinstance(item, torch.Tensor):
                out.append(res if return_details else torch.stack(res))
            else:
                out.append(res[0])
        return out if is_list else out[0]

    def _run(self, images: list[DecodedImage], details: bool, saturation: float) -> list[Any]:
        results: list[Any] = [None] * len(images)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, d in enumerate(images):
            by_shape.setdefault(self.working_shape(*d.L.shape[-2:]), []).append(i)
        for shape, idx in by_shape.items():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                fulls = [images[i].L.to(self.device) for i in chunk]
                small = torch.cat([_resize(L, shape) for L in fulls])
                out = self.predict_ab(small)
                for j, i in enumerate(chunk):
                    rgb = self._full_resolution_rgb(out["ab"][j : j + 1] * saturation, small[j : j + 1], fulls[j],
                                                    dtype=output_dtype(images[i]))
                    image = encode_output(rgb, images[i])
                    results[i] = self._details(image, small[j], out, j) if details else image
        return results

    def _full_resolution_rgb(
        self, ab_small: torch.Tensor, L_small: torch.Tensor, L_full: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """Upsample ab, join it with the photo's own L and convert to sRGB ``(1, 3, H, W)``.

        Large photos go in strips of rows: the full-resolution intermediates (ab, its guided model,
        Lab, the gamut search) then never exist for the whole photo at once. With ``dtype=torch.uint8``
        each strip is rounded to 8 bits as it is finished (a channels-last view of an ``(H, W, 3)``
        buffer, as :func:`~expertcolor.io.encode_output` hands it on), else floats in ``[0, 1]``.
        """
        H, W = L_full.shape[-2:]
        step = max(1, FINISH_STRIP_PIXELS // W)
        if dtype == torch.uint8:
            rgb = torch.empty((1, H, W, 3), dtype=torch.uint8, device=L_full.device).permute(0, 3, 1, 2)
        elif step >= H:
            return lab_to_rgb_gamut(torch.cat([L_full, upsample_ab(ab_small, L_small, L_full, mode=self.upsample)], 1))
        else:
            rgb = L_full.new_empty((1, 3, H, W))
        for r0 in range(0, H, step):
            r1 = min(H, r0 + step)
            ab = upsample_ab(ab_small, L_small, L_full, mode=self.upsample, rows=(r0, r1))
            strip = lab_to_rgb_gamut(torch.cat([L_full[..., r0:r1, :], ab], 1))
            rgb[..., r0:r1, :] = to_uint8(strip) if dtype == torch.uint8 else strip
        return rgb

    def predict_ab(self, L_small: torch.Tensor, probs: torch.Tensor | None = None) -> dict[str, Any]:
        """Run segmentation, routing, the experts that receive pixels, and the merge.

        Args:
            L_small: working-resolution lightness ``(B, 1, h, w)`` in ``[0, 100]``.
            probs: class probabilities ``(B, C, h, w)`` to route by instead of segmenting ``L_small``
                (the video loop passes probabilities smoothed over frames); ``None`` segments.

        Returns:
            ``{"ab": (B, 2, h, w), "weights": (B, E, h, w), "probs": (B, C, h, w),
            "routing": (B, E, h, w), "expert_ab": {name: (B, 2, h, w)}}``.
        """
        if probs is None:
            probs = self.segment(L_small)
        routed = self.routing(probs)
        weights = self.merge(routed, L_small / 100.0, background=self.routing.experts.index(self.routing.default),
                             experts=self.routing.experts)
        names = list(self.routing.experts)
        active = [e for e in range(len(names)) if bool((weights[:, e] > 0).any())]
        expert_ab = {names[e]: self._run_expert(names[e], L_small, weights[:, e]) for e in active}
        stacked = torch.stack([expert_ab[names[e]] for e in active], dim=1)
        ab = blend(stacked, weights[:, active])
        return {"ab": ab, "weights": weights, "probs": probs, "routing": routed, "expert_ab": expert_ab}

    def _run_expert(self, name: str, L_small: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Expert ``name``'s ab ``(B, 2, h, w)``, computed only inside the box it has weight in
        (plus ``crop_margin``); zero outside, where its weight is zero."""
        box = None if self.crop_margin is None else weight_region(weight, self.crop_margin)
        if box is None:
            return self.experts[name](L_small)
        top, bottom, left, right = box
        ab = L_small.new_zeros(L_small.shape[0], 2, *L_small.shape[-2:])
        ab[..., top:bottom, left:right] = self.experts[name](L_small[..., top:bottom, left:right])
        return ab

    def segment(self, L_small: torch.Tensor) -> torch.Tensor:
        """The segmenter's class probabilities ``(B, C, h, w)`` for working-resolution L ``(B, 1, h, w)``,
        averaged with those of the mirrored photo when ``flip_segmentation`` is on."""
        probs = self.segmenter(L_small)
        if self.flip_segmentation:
            probs = 0.5 * (probs + self.segmenter(L_small.flip(-1)).flip(-1))
        return probs

    def _details(self, image: Any, L_small: torch.Tensor, out: dict[str, Any], j: int) -> ColorizationResult:
        names = list(self.routing.experts)
        np_ = lambda t: t.float().cpu().numpy()  # noqa: E731
        return ColorizationResult(
            rgb=image,
            L=np_(L_small[0]),
            ab=np_(out["ab"][j]),
            expert_ab={n: np_(a[j]) for n, a in out["expert_ab"].items()},
            weights={n: np_(out["weights"][j, e]) for e, n in enumerate(names)},
            labels=out["probs"][j].argmax(0).cpu().numpy().astype(np.int64),
            categories=tuple(self.segmenter.categories),
            routing={n: np_(out["routing"][j, e]) for e, n in enumerate(names)},
        )

    def __repr__(self) -> str:
        return (
            f"ExpertColorizer(experts={list(self.experts)}, segmenter={type(self.segmenter).__name__}, "
            f"merge={self.merge!r}, working_size={self.working_size}, device={self.device})"
        )

    def colorize_video(self, src: str | os.PathLike, dst: str | os.PathLike, **kwargs: Any) -> Any:
        """Colorize a video file into ``dst``; see :func:`expertcolor.video.colorize_video` (needs PyAV)."""
        from .video import colorize_video

        return colorize_video(self, src, dst, **kwargs)


def _default_routing(categories: Sequence[str], experts: list[str]) -> RoutingTable:
    """The default table restricted to the experts at hand (unrouted classes go to ``places``)."""
    if DEFAULT_EXPERT not in experts:
        raise ValueError(
            f"no {DEFAULT_EXPERT!r} expert for the categories no other expert owns; pass routing=RoutingTable(...) "
            f"with a default among {experts}"
        )
    routes = {c: e for c, e in DEFAULT_ROUTES.items() if e in experts and c in categories}
    return RoutingTable(routes, DEFAULT_EXPERT, categories, experts)


def _resize(L: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    if tuple(L.shape[-2:]) == shape:
        return L
    return F.interpolate(L, size=shape, mode="bilinear", align_corners=False, antialias=True)


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
