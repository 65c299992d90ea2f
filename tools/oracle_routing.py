"""How much would perfect routing buy? Evaluate a model routed by the ground-truth group masks.

Runs the model's experts and merge exactly as ``expertcolor evaluate`` does, but replaces the
segmenter's probabilities by the ground-truth groups (0 background -> the default expert, 1 person ->
faces, 2 bird -> birds, 3 animal -> animals). Pixels marked 255 and photos without a mask keep the
segmenter's probabilities. Writes ``report.json``/``report.md`` with the variant ``oracle``, so
``tools/paired_bootstrap.py`` can compare it with ``routed`` or ``generalist`` of other reports::

    python tools/oracle_routing.py --model expertcolor/pretrained/default \\
        --images ../shared/data/mixed/images --groups ../shared/data/mixed/groups --out eval/oracle
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from expertcolor import ExpertColorizer
from expertcolor import evaluate as E
from expertcolor.argtypes import positive_int
from expertcolor.segmentation import Segmenter


class MaskSegmenter(Segmenter):
    """One-hot probabilities from a ground-truth group mask; the wrapped segmenter elsewhere.

    Args:
        inner: the model's segmenter (used where the mask is 255 or no mask is set).
        group_category: ground-truth group value -> index of the category that routes it.
    """

    def __init__(self, inner: Segmenter, group_category: dict[int, int]) -> None:
        super().__init__()
        self.inner = inner
        self.categories = tuple(inner.categories)
        self.group_category = dict(group_category)
        self.mask: np.ndarray | None = None

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(B, C, h, w)``; the mask (``(H, W)`` at full resolution) is resized (nearest)."""
        probs = self.inner(L)
        if self.mask is None:
            return probs
        gt = torch.from_numpy(self.mask.astype(np.int64))[None, None].float()
        gt = F.interpolate(gt, size=L.shape[-2:], mode="nearest")[0, 0].long().to(probs.device)
        onehot = torch.zeros_like(probs)
        for value, c in self.group_category.items():
            onehot[:, c][:, gt == value] = 1.0
        known = torch.isin(gt, torch.tensor(list(self.group_category), device=gt.device))
        return torch.where(known[None, None], onehot, probs)


def group_categories(colorizer: ExpertColorizer) -> dict[int, int]:
    """Each ground-truth group's category index: the first category routed to the group's expert.

    Raises:
        ValueError: when the model has no category routed to one of the groups' experts.
    """
    cats = list(colorizer.segmenter.categories)
    routes = colorizer.routing.routes
    out = {0: next(i for i, c in enumerate(cats) if c not in routes)}  # background -> default expert
    for expert, group in E.EXPERT_GROUPS.items():
        hits = [i for i, c in enumerate(cats) if routes.get(c) == expert]
        if not hits:
            raise ValueError(f"no category of the model routes to expert {expert!r}")
        out[group] = hits[0]
    return out


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="model directory")
    p.add_argument("--images", type=Path, required=True, help="colour photos")
    p.add_argument("--groups", type=Path, required=True, help="group masks <name>.png (0/1/2/3, 255 ignore)")
    p.add_argument("--out", type=Path, required=True, help="where report.json/report.md go")
    p.add_argument("--band-width", type=positive_int, default=8)
    p.add_argument("--max-images", type=positive_int, default=None)
    return p


def main(args: argparse.Namespace) -> dict:
    if not args.groups.is_dir():
        raise NotADirectoryError(f"group mask folder not found: {args.groups}")
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    colorizer.flip_segmentation = False  # a mirrored pass would not match the mask
    oracle = MaskSegmenter(colorizer.segmenter, group_categories(colorizer))
    colorizer.segmenter = oracle
    paths = E.list_images(args.images)[: args.max_images]
    if not paths:
        raise ValueError(f"no images found in {args.images}")
    rows = {}
    for path in paths:
        s = E.load_sample(path, args.images, args.groups, args.band_width)
        oracle.mask = s.groups
        out = np.asarray(colorizer.colorize(s.rgb))[..., :3]
        rows[s.name] = E.image_metrics(out, s.rgb, s.groups, args.band_width, lab_gt=s.lab, band=s.band)
    report = E.build_report({"oracle": rows}, args.images, args.groups, repr(colorizer), args.band_width)
    report["routing_by"] = "ground-truth group masks (segmenter where 255 or no mask)"
    E.write_report(report, args.out)
    o = report["results"]["oracle"]["overall"]
    print(f"oracle routing: CIEDE2000 {o['ciede2000']:.3f}, PSNR {o['psnr']:.2f} over {o['images']} photos; "
          f"wrote {args.out}/report.json")
    return report


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (ValueError, NotADirectoryError, FileNotFoundError) as e:
        sys.exit(f"oracle_routing: {e}")
