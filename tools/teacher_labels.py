"""Make teacher segmentation labels (VOC-21 class ids) for a folder of photos, mirroring its layout.

Runs the DeepLabV3-MobileNetV2 teacher (TFLite, package ``ai-edge-litert``) exactly as the labels in
``shared/data/segmentation`` were made: each photo resized to 513x513 (bilinear, aspect ratio not
kept), the model's argmax map resized back to the photo's size (nearest), stored as an 8-bit PNG of
class ids at ``OUT/<relative path>.png``. Those are the label maps ``train-expert --route-labels`` and
the segmenter's training read. Existing labels are kept, so an interrupted run continues where it
stopped; every PNG is written atomically::

    pip install ai-edge-litert
    python tools/teacher_labels.py --images ../shared/data/more/birds525 --out runs/labels/more/birds525
    # face crops show a person in every non-background pixel (the teacher calls many of them cat or dog):
    python tools/teacher_labels.py --images ../shared/data/more/faces --out runs/labels/more/faces --foreground person
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from expertcolor.datasets import list_images
from expertcolor.segmentation import VOC_CATEGORIES

logger = logging.getLogger("teacher_labels")
TEACHER_SIZE = 513


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", required=True, type=Path, help="folder of photos (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="folder for the label maps (mirrors --images)")
    p.add_argument("--teacher", type=Path, default=Path("../shared/data/teacher/deeplabv3_mnv2_pascal_quant.tflite"),
                   help="the TFLite teacher (input 1x513x513x3 uint8, output 1x513x513 class ids)")
    p.add_argument("--foreground", default=None, choices=VOC_CATEGORIES[1:],
                   help="relabel every non-background pixel as this class (face crops: person)")
    p.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    return p


def load_teacher(path: Path, threads: int = 1):
    """The TFLite interpreter, with a clear error when the package or the file is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        sys.exit("teacher_labels: needs the 'ai-edge-litert' package: pip install ai-edge-litert")
    if not path.is_file():
        sys.exit(f"teacher_labels: teacher model not found: {path} (pass --teacher)")
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    return interp


def label_photo(interp, rgb: Image.Image) -> np.ndarray:
    """VOC-21 class ids ``(H, W)`` uint8 for an RGB photo, at the photo's own size."""
    x = np.asarray(rgb.resize((TEACHER_SIZE, TEACHER_SIZE), Image.BILINEAR), dtype=np.uint8)[None]
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ids = interp.get_tensor(interp.get_output_details()[0]["index"])[0].astype(np.uint8)
    return np.asarray(Image.fromarray(ids).resize(rgb.size, Image.NEAREST))


def _save_png(ids: np.ndarray, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        Image.fromarray(ids, mode="L").save(tmp, format="PNG")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(args: argparse.Namespace) -> dict[str, int]:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.images.is_dir():
        sys.exit(f"teacher_labels: not a folder: {args.images}")
    if args.out.resolve() == args.images.resolve() or args.images.resolve() in args.out.resolve().parents:
        sys.exit("teacher_labels: --out must lie outside --images (labels mirror the photos' names)")
    photos = list_images(args.images)
    todo = [p for p in photos if not (args.out / p.relative_to(args.images)).with_suffix(".png").is_file()]
    logger.info("%d photos, %d labelled already, %d to label", len(photos), len(photos) - len(todo), len(todo))
    counts = {"labelled": 0, "unreadable": 0}
    if not todo:
        return counts
    interp = load_teacher(args.teacher, args.threads)
    fg = VOC_CATEGORIES.index(args.foreground) if args.foreground else None
    for p in tqdm(todo, unit="img", desc="teacher"):
        try:
            with Image.open(p) as im:
                rgb = im.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            logger.warning("%s: unreadable, skipped (%s)", p, e)
            counts["unreadable"] += 1
            continue
        ids = label_photo(interp, rgb)
        if fg is not None:
            ids = np.where(ids > 0, fg, 0).astype(np.uint8)
        _save_png(ids, (args.out / p.relative_to(args.images)).with_suffix(".png"))
        counts["labelled"] += 1
    logger.info("labelled %d, unreadable %d", counts["labelled"], counts["unreadable"])
    return counts


if __name__ == "__main__":
    main(get_args_parser().parse_args())
