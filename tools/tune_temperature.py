"""Pick the experts' annealed-mean temperature on their own validation photos (not on mixed/).

For each temperature, each expert colours its domain's validation photos (first N), and the script
prints mean CIEDE2000, PSNR and the colourfulness ratio to the ground truth, per expert and pooled.

    python tools/tune_temperature.py --model MODEL_DIR --data ../shared/data [--n 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from expertcolor import ExpertColorizer
from expertcolor.datasets import CUB200
from expertcolor.evaluate import evaluate

# Birds have no val folder: their official test split is linked into a temporary one instead.
VAL_DIRS = {"faces": "faces/val", "animals": "animals/val", "places": "places/val"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.2, 0.3, 0.38, 0.5, 0.7])
    args = p.parse_args()
    colorizer = ExpertColorizer.from_pretrained(args.model, device="cpu")
    data = Path(args.data)
    birds_test = sorted(Path(s.path) for s in CUB200(data / "birds", split="test").samples)
    rows = []
    for t in args.temperatures:
        for name, expert in colorizer.experts.items():
            expert.config = dataclasses.replace(expert.config, temperature=t)
            if name == "birds":
                with tempfile.TemporaryDirectory() as tmp:
                    for i, f in enumerate(birds_test[: args.n]):
                        (Path(tmp) / f"{i:04d}.jpg").symlink_to(f)
                    r = evaluate(colorizer, tmp, variants=[f"expert:{name}"], max_images=args.n, progress=False)
            else:
                r = evaluate(
                    colorizer, data / VAL_DIRS[name], variants=[f"expert:{name}"], max_images=args.n, progress=False
                )
            o = r["results"][f"expert:{name}"]["overall"]
            rows.append(
                {"T": t, "expert": name, "psnr": o["psnr"], "ciede2000": o["ciede2000"], "cf_ratio": o["cf_ratio"]}
            )
            print(json.dumps(rows[-1]), flush=True)
    print("| T | expert | PSNR | ΔE00 | CF ratio |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['T']} | {r['expert']} | {r['psnr']:.2f} | {r['ciede2000']:.2f} | {r['cf_ratio']:.2f} |")


if __name__ == "__main__":
    main()
