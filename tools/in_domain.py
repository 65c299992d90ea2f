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
import sys
from pathlib import Path

# Sibling developer scripts, importable when this file runs as a script or is loaded by path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired_bootstrap import paired_bootstrap, per_photo  # noqa: E402
from tune_decoding import link_validation_photos  # noqa: E402

from expertcolor import ExpertColorizer  # noqa: E402
from expertcolor.argtypes import positive_int  # noqa: E402
from expertcolor.evaluate import evaluate, write_report  # noqa: E402


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model directory whose experts are compared")
    p.add_argument("--generalist", default=None, help="generalist expert directory (default: the bundled one)")
    p.add_argument("--data", required=True, type=Path, help="the shared data folder")
    p.add_argument("--out", required=True, type=Path, help="new folder for the reports")
    p.add_argument("--n", type=positive_int, default=200, help="validation photos per domain")
    p.add_argument("--experts", nargs="+", default=None, help="only these experts (default: all in the model)")
    p.add_argument("--device", default="cpu")
    return p


def main(args: argparse.Namespace) -> list[dict]:
    colorizer = ExpertColorizer.from_pretrained(args.model, device=args.device)
    names = args.experts or list(colorizer.experts)
    unknown = sorted(set(names) - set(colorizer.experts))
    if unknown:
        raise ValueError(f"experts {unknown} not in {args.model}; it has {sorted(colorizer.experts)}")
    if args.out.exists():
        raise FileExistsError(f"{args.out} exists; give a new folder so no report is overwritten")
    rows = []
    for name in names:
        photos = link_validation_photos(args.data, name, args.n, args.out / name / "photos")
        report = evaluate(colorizer, photos, variants=[f"expert:{name}", "generalist", "gray"],
                          generalist=args.generalist, progress=False)
        write_report(report, args.out / name)
        res = report["results"]
        row = {"domain": name, "images": res["gray"]["overall"]["images"]}
        for v, key in ((f"expert:{name}", "expert"), ("generalist", "generalist"), ("gray", "gray")):
            row[key] = {m: res[v]["overall"][m] for m in ("ciede2000", "psnr", "cf_ratio")}
        for metric, lower in (("ciede2000", True), ("psnr", False)):
            row[f"diff_{metric}"] = paired_bootstrap(per_photo(report, f"expert:{name}", metric),
                                                     per_photo(report, "generalist", metric), lower)
        rows.append(row)
        print(json.dumps(row), flush=True)
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


if __name__ == "__main__":
    try:
        main(get_args_parser().parse_args())
    except (ValueError, FileExistsError, FileNotFoundError, NotADirectoryError) as e:
        sys.exit(f"in_domain: {e}")
