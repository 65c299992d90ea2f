"""Evaluation on a tiny synthetic set with group masks, and (slow) the gray floor on shared data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from expertcolor import metrics as M
from expertcolor.evaluation import (
    OracleRouting,
    evaluate,
    gray_rgb,
    list_photos,
    resolve_variants,
    single_expert_colorizer,
    to_markdown,
    write_report,
)


def _photo(seed: int, h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x / w, y / h, 0.5 + 0.4 * np.sin(x / 4.0 + seed)], axis=2) * 200 + 20
    img[8:24, 10:30] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


@pytest.fixture
def synthetic_set(tmp_path: Path) -> tuple[Path, Path]:
    images, groups = tmp_path / "images", tmp_path / "groups"
    images.mkdir()
    groups.mkdir()
    for i in range(2):
        Image.fromarray(_photo(i)).save(images / f"im{i}.png")
        g = np.zeros((40, 56), np.uint8)
        g[8:24, 10:30] = 1 + i  # person in im0, bird in im1
        g[0:2, :] = 255
        Image.fromarray(g).save(groups / f"im{i}.png")
    Image.fromarray(_photo(5)).save(images / "no_mask.png")  # overall metrics only
    return images, groups


def test_gray_variant_is_the_chroma_only_difference(synthetic_set, tiny_colorizer, tmp_path) -> None:
    images, groups = synthetic_set
    report = evaluate(tiny_colorizer, images, groups, variants=["gray"], progress=False)
    assert report["variants"] == ["gray"]
    per_image = report["per_image"]["gray"]
    assert set(per_image) == {"im0.png", "im1.png", "no_mask.png"}
    for name, rec in per_image.items():
        gt = np.asarray(Image.open(images / name).convert("RGB"))
        lab = rgb2lab(gt)
        chroma_only = deltaE_ciede2000(lab, np.concatenate([lab[..., :1], np.zeros_like(lab[..., 1:])], axis=2))
        assert rec["ciede2000"] == pytest.approx(chroma_only.mean(), abs=0.15)  # 8-bit rounding of the gray
        assert rec["colorfulness"] == pytest.approx(0.0, abs=0.5)
    overall = report["results"]["gray"]["overall"]
    assert overall["images"] == 3
    assert overall["psnr"] == pytest.approx(np.mean([r["psnr"] for r in per_image.values()]))
    assert overall["ciede2000"] == pytest.approx(np.mean([r["ciede2000"] for r in per_image.values()]))
    assert overall["cf_ratio"] == pytest.approx(0.0, abs=0.02)


def test_grayscale_photos_are_listed_and_warned_about(synthetic_set, tiny_colorizer) -> None:
    images, _ = synthetic_set
    report = evaluate(tiny_colorizer, images, variants=["gray"], progress=False)
    assert report["grayscale_photos"] == [] and "Warning" not in to_markdown(report)
    bw = _photo(3).mean(axis=2).astype(np.uint8)
    Image.fromarray(np.stack([bw] * 3, axis=2)).save(images / "old.png")  # a black-and-white "ground truth"
    report = evaluate(tiny_colorizer, images, variants=["gray"], progress=False)
    assert report["grayscale_photos"] == ["old.png"]
    assert report["per_image"]["gray"]["old.png"]["ciede2000"] < 0.05  # why it misleads: no colour wins
    assert "**Warning:** 1 of 4 photos are grayscale (`old.png`)" in to_markdown(report)


def test_groups_and_boundary(synthetic_set, tiny_colorizer) -> None:
    images, groups = synthetic_set
    report = evaluate(tiny_colorizer, images, groups, variants=["gray"], progress=False)
    res = report["results"]["gray"]
    assert list(res["groups"]) == ["background", "person", "bird"]
    assert res["groups"]["person"]["images"] == 1 and res["groups"]["background"]["images"] == 2
    assert res["groups"]["person"]["pixels"] == 16 * 20
    # Pixel-pooled group ΔE00 from the per-image records.
    recs = [report["per_image"]["gray"][n]["groups"]["background"] for n in ("im0.png", "im1.png")]
    pooled = sum(r["ciede2000"] * r["pixels"] for r in recs) / sum(r["pixels"] for r in recs)
    assert res["groups"]["background"]["ciede2000"] == pytest.approx(pooled)
    b = res["boundary"]
    valid = 2 * (40 * 56 - 2 * 56)
    assert b["band"]["pixels"] + b["interior"]["pixels"] == valid
    assert b["ratio"] == pytest.approx(b["band"]["ciede2000"] / b["interior"]["ciede2000"])
    g = np.asarray(Image.open(groups / "im0.png"))
    band = M.boundary_band(g, 8) & (g != 255)
    assert report["per_image"]["gray"]["im0.png"]["band"]["pixels"] == int(band.sum())


def test_variants_and_reports(synthetic_set, tiny_colorizer, tmp_path) -> None:
    images, groups = synthetic_set
    report = evaluate(tiny_colorizer, images, groups, variants="expert:faces,gray", max_images=2, progress=False)
    assert report["variants"] == ["routed", "expert:faces", "gray"]
    assert report["results"]["routed"]["overall"]["images"] == 2
    json_path, md_path = write_report(report, tmp_path / "out")
    data = json.loads(json_path.read_text())  # strict JSON (NaN written as null)
    assert set(data["results"]) == {"routed", "expert:faces", "gray"}
    assert "im0.png" in data["per_image"]["routed"]
    md = md_path.read_text()
    assert md == to_markdown(report)
    assert "| expert:faces |" in md and "band / interior" in md


def test_list_photos_from_a_relative_parent_path(tmp_path, monkeypatch) -> None:
    """"../photos" must not count as hidden; hidden files and folders below it must."""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / ".cache").mkdir()
    (tmp_path / "work").mkdir()
    for rel in ("a.jpg", "sub/b.PNG", ".hidden.jpg", ".cache/c.jpg", "notes.txt"):
        (photos / rel).write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "work")
    assert [p.as_posix() for p in list_photos("../photos")] == ["../photos/a.jpg", "../photos/sub/b.PNG"]
    with pytest.raises(NotADirectoryError, match="image folder not found"):
        list_photos("../missing")


def test_resolve_variants() -> None:
    names = ["animals", "faces"]
    assert resolve_variants("experts,gray", names, False) == ["routed", "expert:animals", "expert:faces", "gray"]
    assert resolve_variants(None, names, True)[:2] == ["routed", "generalist"]
    assert resolve_variants(["gray"], names, False) == ["gray"]
    with pytest.raises(ValueError, match="generalist"):
        resolve_variants("generalist", names, False)
    with pytest.raises(ValueError, match="unknown"):
        resolve_variants("expert:nope", names, False)
    assert resolve_variants("oracle", names, False) == ["routed", "oracle"]
    assert "oracle" not in resolve_variants(None, names, True)  # only when asked for


def test_single_expert_colorizer_uses_only_that_expert(tiny_colorizer) -> None:
    expert = tiny_colorizer.experts["birds"]
    solo = single_expert_colorizer(expert, tiny_colorizer)
    L = torch.rand(1, 1, 32, 48) * 100
    with torch.inference_mode():
        out = solo.predict_ab(L)
        assert torch.allclose(out["ab"], expert(L), atol=1e-5)
    assert solo.working_size == tiny_colorizer.working_size


def test_gray_rgb_keeps_lightness() -> None:
    rgb = _photo(3)
    gray = gray_rgb(rgb)
    assert gray.shape == rgb.shape and gray.dtype == np.uint8
    assert np.abs(rgb2lab(gray)[..., 0] - rgb2lab(rgb)[..., 0]).max() < 0.6
    assert M.colorfulness(gray) < 0.5


@pytest.mark.slow
def test_gray_floor_on_shared_mixed(shared_data, tiny_colorizer) -> None:
    """Reference: gray scores PSNR 22.62 dB and mean CIEDE2000 10.59 on mixed/ (mean over images)."""
    mixed = shared_data / "mixed"
    report = evaluate(tiny_colorizer, mixed / "images", mixed / "groups", variants=["gray"], progress=False)
    overall = report["results"]["gray"]["overall"]
    assert overall["psnr"] == pytest.approx(22.62, abs=0.01)
    assert overall["ciede2000"] == pytest.approx(10.59, abs=0.01)


def test_evaluate_routing_scores_segmenter_and_teacher(tmp_path, tiny_colorizer):
    from expertcolor import ExpertColorizer
    from expertcolor.evaluation import evaluate_routing, routing_markdown
    from expertcolor.segmentation import VOC_CATEGORIES, Segmenter

    class Everyone(Segmenter):
        categories = VOC_CATEGORIES

        def forward(self, L):
            p = torch.zeros(L.shape[0], 21, *L.shape[-2:])
            p[:, VOC_CATEGORIES.index("person")] = 1
            return p

    for d in ("images", "groups", "teacher"):
        (tmp_path / d).mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 40, 3), dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    groups = np.zeros((20, 40), np.uint8)
    groups[:, 20:] = 1  # right half person
    groups[0, 0] = 255  # ignored
    Image.fromarray(groups).save(tmp_path / "groups" / "a.png")
    teacher = np.where(groups == 1, VOC_CATEGORIES.index("person"), 0).astype(np.uint8)
    Image.fromarray(teacher).save(tmp_path / "teacher" / "a.png")
    c = ExpertColorizer(tiny_colorizer.experts, Everyone())
    r = evaluate_routing(c, tmp_path / "images", tmp_path / "groups", teacher_dir=tmp_path / "teacher")
    assert r["images"] == 1
    assert r["segmenter"]["iou"]["person"] == pytest.approx(400 / 799)
    assert r["segmenter"]["iou"]["background"] == 0.0
    assert r["segmenter"]["iou"]["bird"] is None  # absent everywhere: not part of the mean
    assert r["segmenter"]["miou"] == pytest.approx(400 / 799 / 2)
    assert r["teacher"]["miou"] == 1.0 and r["teacher"]["pixel_acc"] == 1.0
    assert "| teacher | 1.000 | 1.000 |" in routing_markdown(r)


def _four_groups(h: int = 40, w: int = 56) -> np.ndarray:
    g = np.zeros((h, w), np.uint8)  # background
    g[4:20, 4:24] = 1  # person
    g[22:38, 6:30] = 2  # bird
    g[10:34, 34:52] = 3  # animal
    g[0:3, 30:50] = 255  # ignored
    return g


def test_oracle_routes_every_pixel_to_the_expert_of_its_ground_truth_group(tiny_colorizer) -> None:
    rgb, groups = _photo(7), _four_groups()
    oracle = OracleRouting(tiny_colorizer)
    result = oracle.colorize(rgb, groups, return_details=True)
    assert result.L.shape == groups.shape  # below the working size: the weights are per photo pixel
    known = groups != 255
    for expert, group in (("places", 0), ("faces", 1), ("birds", 2), ("animals", 3)):
        assert np.array_equal(result.weights[expert][known], (groups == group)[known].astype(np.float32)), expert
    # ignored pixels keep the segmenter's routing: the routed model's weights there
    routed = tiny_colorizer.colorize(rgb, return_details=True)
    for expert in routed.weights:
        assert np.allclose(result.weights[expert][~known], routed.weights[expert][~known])
    # no mask: the routed model itself; and the mask is not left behind for the next photo
    assert oracle.segmenter.mask is None
    assert np.array_equal(oracle.colorize(rgb, None), tiny_colorizer.colorize(rgb))
    with pytest.raises(TypeError, match="one photo at a time"):
        oracle.colorize([rgb, rgb], groups)


def test_oracle_needs_a_category_for_every_groups_expert(tiny_colorizer) -> None:
    from expertcolor import ExpertColorizer

    experts = {n: tiny_colorizer.experts[n] for n in ("faces", "places")}
    with pytest.raises(ValueError, match="'birds'"):
        OracleRouting(ExpertColorizer(experts, tiny_colorizer.segmenter, device="cpu"))


def test_oracle_variant_in_evaluate(synthetic_set, tiny_colorizer, tmp_path) -> None:
    images, groups = synthetic_set
    report = evaluate(tiny_colorizer, images, groups, variants=["oracle", "expert:faces"], progress=False)
    # im0's square is a person, the rest background: the oracle differs from the faces expert alone
    assert set(report["per_image"]["oracle"]) == {"im0.png", "im1.png", "no_mask.png"}
    assert report["results"]["oracle"]["groups"]["person"]["pixels"] == 16 * 20
    # a mask that is all person: the faces expert colours the whole photo
    Image.fromarray(np.full((40, 56), 1, np.uint8)).save(groups / "im0.png")
    report = evaluate(tiny_colorizer, images, groups, variants=["oracle", "expert:faces"], progress=False)
    oracle, faces = (report["per_image"][v]["im0.png"]["ciede2000"] for v in ("oracle", "expert:faces"))
    assert oracle == pytest.approx(faces, abs=1e-3)
    with pytest.raises(ValueError, match="--groups"):
        evaluate(tiny_colorizer, images, variants=["oracle"], progress=False)
