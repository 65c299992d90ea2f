"""Does each expert beat the generalist on its own domain? Expert vs generalist on the domain's validation photos.

Routing can only beat one generalist if the experts colour their own subjects better than it does.
This measures that directly, away from the mixed photos and the segmenter: each expert of a model
directory colours N validation photos of its own domain (the same photos ``tune_decoding.py`` uses:
spread evenly over ``faces/val``, the CUB test split, ``animals/val``, ``places/val``), beside the
generalist and no colour, all decoded as saved. For every domain it writes ``OUT/<expert>/report.json``
and ``report.md`` (the ``expertcolor evaluate`` format, so ``paired_bootstrap.py`` can average seeds),
and prints one table with expert − generalist per photo and its bootstrap interval::

    python tools/in_domain.py --model MODEL_DIR --generalist GENERALIST_DIR --data ../shared/data \
        --out eval/in_domain [--n 200] [--experts faces birds]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..argtypes import positive_int
from ..colorizer import ExpertColorizer
from .domains import link_validation_photos
from .loop import evaluate
from .report import write_args, write_report
from .stats import paired_bootstrap, per_photo

__all__ = ["compare_on_domain", "get_args_parser", "main"]


def get_args_parser() -> argparse.ArgumentParser:
    """Arguments of the in-domain comparison (``tools/in_domain.py``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory whose experts are compared")
    p.add_argument("--generalist", default=None, help="generalist expert directory (default: the bundled one)")
    p.add_argument("--data", required=True, type=Path, help="the shared data folder")
    p.add_argument("--out", required=True, type=Path, help="new folder for the reports")
    p.add_argument("--n", type=positive_int, default=200, help="validation photos per domain")
    p.add_argument("--experts", nargs="+", default=None, help="only these experts (default: all in the model)")
    p.add_argument("--device", default="cpu")
    return p


def compare_on_domain(
    colorizer: ExpertColorizer, name: str, data: Path, n: int, out: Path,
    generalist: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Expert ``name`` vs the generalist and no colour on ``n`` validation photos of its domain.

    Writes ``out/photos`` (links to the photos) and ``out/report.json``/``report.md``.

    Returns:
        ``{"domain", "images", "expert", "generalist", "gray"}`` (each ``{"ciede2000", "psnr",
        "cf_ratio"}``) and ``diff_ciede2000``/``diff_psnr``: the :func:`paired_bootstrap` of expert − generalist.
    """
    photos = link_validation_photos(data, name, n, out / "photos")
    report = evaluate(colorizer, photos, variants=[f"expert:{name}", "generalist", "gray"],
                      generalist=generalist, progress=False)
    write_report(report, out)
    res = report["results"]
    row: dict[str, Any] = {"domain": name, "images": res["gray"]["overall"]["images"]}
    for v, key in ((f"expert:{name}", "expert"), ("generalist", "generalist"), ("gray", "gray")):
        row[key] = {m: res[v]["overall"][m] for m in ("ciede2000", "psnr", "cf_ratio")}
    for metric, lower in (("ciede2000", True), ("psnr", False)):
        row[f"diff_{metric}"] = paired_bootstrap(per_photo(report, f"expert:{name}", metric),
                                                 per_photo(report, "generalist", metric), lower)
    return row


def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Compare every chosen expert with the generalist; print one JSON line per domain, then a table.

    Raises:
        ValueError: for experts the model does not have.
        FileExistsError: when ``args.out`` exists (no report is overwritten).
    """
    colorizer = ExpertColorizer.from_pretrained(args.model, device=args.device)
    names = args.experts or list(colorizer.experts)
    unknown = sorted(set(names) - set(colorizer.experts))
    if unknown:
        raise ValueError(f"experts {unknown} not in {args.model}; it has {sorted(colorizer.experts)}")
    if args.out.exists():
        raise FileExistsError(f"{args.out} exists; give a new folder so no report is overwritten")
    args.out.mkdir(parents=True)
    write_args(args, args.out)
    rows = []
    for name in names:
        rows.append(compare_on_domain(colorizer, name, args.data, args.n, args.out / name, args.generalist))
        print(json.dumps(rows[-1]), flush=True)
    print("\n| domain | photos | expert ΔE00 / PSNR / CF | generalist | no colour | expert − generalist ΔE00 "
          "(95%, better on) | expert − generalist PSNR |\n|---|---|---|---|---|---|---|")
    for r in rows:
        e, g, n = r["expert"], r["generalist"], r["gray"]
        dc, dp = r["diff_ciede2000"], r["diff_psnr"]
        print(f"| {r['domain']} | {r['images']} | {e['ciede2000']:.2f} / {e['psnr']:.2f} / {e['cf_ratio']:.2f} | "
              f"{g['ciede2000']:.2f} / {g['psnr']:.2f} / {g['cf_ratio']:.2f} | "
              f"{n['ciede2000']:.2f} / {n['psnr']:.2f} | "
              f"{dc['mean_diff']:+.2f} [{dc['lo']:+.2f}, {dc['hi']:+.2f}], {dc['a_better']} of {dc['photos']} | "
              f"{dp['mean_diff']:+.2f} [{dp['lo']:+.2f}, {dp['hi']:+.2f}] |")
    return rows
