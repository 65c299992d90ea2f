"""How much would perfect routing buy? Evaluate a model routed by the ground-truth group masks.

Runs the model's experts and merge exactly as ``expertcolor evaluate`` does, but replaces the
segmenter's probabilities by the ground-truth groups (0 background -> the default expert, 1 person ->
faces, 2 bird -> birds, 3 animal -> animals): the ``oracle`` variant of
:mod:`~expertcolor.evaluation.variants`. Pixels marked 255 and photos without a mask keep the
segmenter's probabilities. Writes ``report.json``/``report.md`` with the variant ``oracle``, so
``tools/paired_bootstrap.py`` can compare it with ``routed`` or ``generalist`` of other reports::

    python tools/oracle_routing.py --model expertcolor/pretrained/default \\
        --images ../shared/data/mixed/images --groups ../shared/data/mixed/groups --out eval/oracle
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..argtypes import positive_int
from ..colorizer import ExpertColorizer
from .loop import evaluate
from .report import write_args, write_report

__all__ = ["get_args_parser", "main"]


def get_args_parser() -> argparse.ArgumentParser:
    """Arguments of the oracle-routing evaluation (``tools/oracle_routing.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="model directory")
    p.add_argument("--images", type=Path, required=True, help="colour photos")
    p.add_argument("--groups", type=Path, required=True, help="group masks <name>.png (0/1/2/3, 255 ignore)")
    p.add_argument("--out", type=Path, required=True, help="where report.json/report.md go")
    p.add_argument("--band-width", type=positive_int, default=8)
    p.add_argument("--max-images", type=positive_int, default=None)
    return p


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate the ``oracle`` variant of ``args.model`` on CPU; write the report and ``args.json``.

    Raises:
        NotADirectoryError: for a missing image or mask folder.
        ValueError: for no photos, or a model that routes no category to one of the groups' experts.
    """
    if not args.groups.is_dir():
        raise NotADirectoryError(f"group mask folder not found: {args.groups}")
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    report = evaluate(colorizer, args.images, args.groups, variants=["oracle"], band_width=args.band_width,
                      max_images=args.max_images)
    report["routing_by"] = "ground-truth group masks (segmenter where 255 or no mask)"
    write_report(report, args.out)
    write_args(args, args.out)
    o = report["results"]["oracle"]["overall"]
    print(f"oracle routing: CIEDE2000 {o['ciede2000']:.3f}, PSNR {o['psnr']:.2f} over {o['images']} photos; "
          f"wrote {args.out}/report.json")
    return report
