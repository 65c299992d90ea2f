"""The runnable studies of expertcolor.evaluation (bootstrap, oracle routing, in-domain, context and
decoding grids) and the tools/ scripts that wrap them."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor import create_expert
from expertcolor.evaluation import in_domain, oracle, stats, tune_context, tune_decoding

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "expertcolor" / "pretrained" / "default"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A data folder in the shared layout with two colour photos per domain (birds: CUB-200-2011 test split)."""
    data = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:56]

    def photo(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = np.stack([x * 4, y * 5, 255 - x * 3], axis=2) + rng.integers(-30, 30, (40, 56, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)

    for domain in ("faces", "animals", "places"):
        for i in range(2):
            photo(data / domain / "val" / f"{i}.png")
    cub = data / "birds"
    for i in range(3):
        photo(cub / "images" / "001.Bird" / f"{i}.png")
    (cub / "images.txt").write_text("".join(f"{i + 1} 001.Bird/{i}.png\n" for i in range(3)))
    (cub / "train_test_split.txt").write_text("1 0\n2 1\n3 0\n")  # photos 0 and 2 are the test split
    return data


@pytest.fixture(scope="module")
def tiny_generalist(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    d = tmp_path_factory.mktemp("generalist")
    create_expert(name="generalist").save_pretrained(d)
    return d


def _row(t: float, a: float, expert: str, cf: float) -> dict:
    return {"T": t, "prior_correction": a, "expert": expert, "cf_ratio": cf}


def test_pick_prior_correction_takes_the_largest_that_keeps_every_expert_colourful() -> None:
    rows = [_row(0.5, 0.0, "faces", 1.0), _row(0.5, 0.0, "birds", 0.9),
            _row(0.5, 0.5, "faces", 0.8), _row(0.5, 0.5, "birds", 0.51),
            _row(0.5, 1.0, "faces", 0.7), _row(0.5, 1.0, "birds", 0.3),  # birds turn grey: not this one
            _row(0.38, 1.0, "faces", 0.9), _row(0.38, 1.0, "birds", 0.9)]  # another temperature: ignored
    assert tune_decoding.pick_prior_correction(rows, 0.5) == 0.5
    assert tune_decoding.pick_prior_correction(rows, 0.5, min_cf_ratio=0.2) == 1.0
    assert tune_decoding.pick_prior_correction(rows, 0.5, min_cf_ratio=0.95) is None
    assert tune_decoding.pick_prior_correction(rows, 0.38) == 1.0


def test_tune_decoding_runs_on_the_shared_validation_photos(shared_data: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    # The embedded default model: its experts carry the rebalancing weights that prior correction needs.
    rows = tune_decoding.main(tune_decoding.get_args_parser().parse_args(
        ["--model", str(DEFAULT_MODEL), "--data", str(shared_data), "--n", "2", "--prior-corrections", "0", "1"]))
    out = capsys.readouterr().out
    assert "largest prior correction" in out and "Mean over experts" in out
    assert {r["prior_correction"] for r in rows} == {0.0, 1.0}
    assert all(r["images"] == 2 and r["psnr"] > 0 for r in rows)


def test_paired_bootstrap_on_a_report(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(8, 12, 40)
    per_image = {
        "routed": {f"p{i}": {"ciede2000": v - 0.5, "psnr": 24.0} for i, v in enumerate(base)},
        "gray": {f"p{i}": {"ciede2000": v, "psnr": 23.0} for i, v in enumerate(base)},
        "noisy": {f"p{i}": {"ciede2000": v + s} for i, (v, s) in enumerate(zip(base, rng.normal(0, 2, 40)))},
    }
    (tmp_path / "report.json").write_text(json.dumps({"per_image": per_image}))
    argv = [str(tmp_path / "report.json"), "--a", "routed", "--b", "gray", "--n", "2000"]
    r = stats.main(stats.get_args_parser().parse_args(argv))
    # a constant difference: the interval collapses onto it and A wins on every photo
    assert r["photos"] == 40 and r["a_better"] == 40
    assert abs(r["mean_diff"] + 0.5) < 1e-9 and abs(r["lo"] + 0.5) < 1e-9 and abs(r["hi"] + 0.5) < 1e-9
    assert "routed better on 40 of 40" in capsys.readouterr().out
    r = stats.main(stats.get_args_parser().parse_args([*argv[:4], "noisy", "--n", "2000"]))
    assert r["lo"] < r["mean_diff"] < r["hi"] and r["hi"] - r["lo"] > 0.5  # noise gives a real interval
    assert stats.main(stats.get_args_parser().parse_args([*argv, "--metric", "psnr"]))["a_better"] == 40
    with pytest.raises(KeyError, match=r"not in the report; it has \['gray', 'noisy', 'routed'\]"):
        stats.main(stats.get_args_parser().parse_args([*argv[:4], "generalist"]))


def test_paired_bootstrap_averages_seeds_and_compares_inside_a_group(tmp_path: Path, capsys) -> None:

    def report(name: str, routed: list[float], person: list[float]) -> str:
        rows = {f"p{i}": {"ciede2000": v, "groups": {"person": {"ciede2000": g}} if g else {}}
                for i, (v, g) in enumerate(zip(routed, person))}
        (tmp_path / name).write_text(json.dumps({"per_image": {"routed": rows, "generalist": rows}}))
        return str(tmp_path / name)

    # seeds 0 and 1 of A average to 10 on every photo; B's two seeds average to 11; only p0, p1 show a person
    a = [report("a0.json", [9, 9, 9], [5, 7, 0]), report("a1.json", [11, 11, 11], [7, 9, 0])]
    b = [report("b0.json", [12, 12, 12], [9, 9, 0]), report("b1.json", [10, 10, 10], [9, 9, 0])]
    argv = [*a, "--a", "routed", "--b", "generalist", "--b-report", *b, "--n", "500"]
    r = stats.main(stats.get_args_parser().parse_args(argv))
    assert r["photos"] == 3 and abs(r["mean_diff"] + 1) < 1e-9 and r["a_better"] == 3
    assert "(runs: 2 vs 2)" in capsys.readouterr().out
    r = stats.main(stats.get_args_parser().parse_args([*argv, "--group", "person"]))
    assert r["photos"] == 2 and abs(r["mean_diff"] - (-3 + -1) / 2) < 1e-9  # photo means 6 vs 9 and 8 vs 9
    assert "ciede2000 in person routed - generalist" in capsys.readouterr().out


def test_oracle_routing_colours_each_masked_group_with_its_expert(tmp_path: Path, tiny_model_dir: Path) -> None:
    from PIL import Image

    from expertcolor import ExpertColorizer
    from expertcolor.evaluation import image_metrics, single_expert_colorizer

    images, groups = tmp_path / "images", tmp_path / "groups"
    images.mkdir()
    groups.mkdir()
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    for name, value in (("all_person", 1), ("all_bird", 2)):
        Image.fromarray(photo).save(images / f"{name}.png")
        Image.fromarray(np.full((40, 56), value, np.uint8)).save(groups / f"{name}.png")
    Image.fromarray(photo).save(images / "no_mask.png")
    args = ["--model", str(tiny_model_dir), "--images", str(images), "--groups", str(groups),
            "--out", str(tmp_path / "out")]
    report = oracle.main(oracle.get_args_parser().parse_args(args))
    rows = report["per_image"]["oracle"]
    assert set(rows) == {"all_person.png", "all_bird.png", "no_mask.png"}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["variants"] == ["oracle"]
    # a photo whose mask is all person is coloured by the faces expert alone, all bird by the birds expert
    model = ExpertColorizer.from_pretrained(tiny_model_dir, device="cpu")
    for name, expert in (("all_person.png", "faces"), ("all_bird.png", "birds")):
        alone = np.asarray(single_expert_colorizer(model.experts[expert], model).colorize(photo))[..., :3]
        want = image_metrics(alone, photo, None, 8)["ciede2000"]
        assert abs(rows[name]["ciede2000"] - want) < 1e-3, name
    # without a mask the model's own segmenter routes: the same as the routed model
    routed = np.asarray(model.colorize(photo))[..., :3]
    assert abs(rows["no_mask.png"]["ciede2000"] - image_metrics(routed, photo, None, 8)["ciede2000"]) < 1e-6
    with pytest.raises(NotADirectoryError, match="group mask folder not found"):
        oracle.main(oracle.get_args_parser().parse_args([*args[:4], "--groups", str(tmp_path / "nope"), *args[6:]]))


def test_in_domain_compares_each_expert_with_the_generalist_on_its_own_photos(
        shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--model", str(DEFAULT_MODEL), "--data", str(shared_data), "--n", "3", "--experts", "faces", "birds",
            "--out", str(tmp_path / "r")]
    args = in_domain.get_args_parser().parse_args(argv)
    rows = in_domain.main(args)
    assert [r["domain"] for r in rows] == ["faces", "birds"]
    for r in rows:
        report = json.loads((tmp_path / "r" / r["domain"] / "report.json").read_text())
        assert set(report["per_image"]) == {f"expert:{r['domain']}", "generalist", "gray"}
        assert len(report["per_image"]["gray"]) == r["images"] == 3
        # The difference is the per-photo mean of the report's own numbers.
        de = {v: np.mean([m["ciede2000"] for m in report["per_image"][v].values()])
              for v in (f"expert:{r['domain']}", "generalist")}
        assert r["diff_ciede2000"]["mean_diff"] == pytest.approx(de[f"expert:{r['domain']}"] - de["generalist"])
    assert "| faces | 3 |" in capsys.readouterr().out
    with pytest.raises(FileExistsError):  # never writes over earlier reports
        in_domain.main(args)
    args.out, args.experts = tmp_path / "r2", ["nobody"]
    with pytest.raises(ValueError, match="nobody"):
        in_domain.main(args)



def test_oracle_routing_writes_its_arguments(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    images, groups = tmp_path / "images", tmp_path / "groups"
    images.mkdir()
    groups.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(np.full((30, 40), 3, np.uint8)).save(groups / "a.png")
    args = oracle.get_args_parser().parse_args(["--model", str(tiny_model_dir), "--images", str(images),
                                                "--groups", str(groups), "--out", str(tmp_path / "out")])
    report = oracle.main(args)
    assert report["routing_by"].startswith("ground-truth group masks")
    assert list(report["results"]["oracle"]["groups"]) == ["animal"]
    saved = json.loads((tmp_path / "out" / "args.json").read_text())
    assert saved["images"] == str(images) and saved["band_width"] == 8 and "command" in saved
    assert "oracle routing: CIEDE2000" in capsys.readouterr().out


def test_in_domain_on_tiny_photos(tiny_data: Path, tiny_model_dir: Path, tiny_generalist: Path, tmp_path: Path,
                                  capsys) -> None:
    argv = ["--model", str(tiny_model_dir), "--generalist", str(tiny_generalist), "--data", str(tiny_data),
            "--n", "2", "--experts", "birds", "places", "--out", str(tmp_path / "r")]
    rows = in_domain.main(in_domain.get_args_parser().parse_args(argv))
    assert [r["domain"] for r in rows] == ["birds", "places"] and all(r["images"] == 2 for r in rows)
    # the birds' photos are the CUB test split, linked in order
    links = sorted((tmp_path / "r" / "birds" / "photos").iterdir())
    assert [p.resolve().name for p in links] == ["0.png", "2.png"]
    for r in rows:
        report = json.loads((tmp_path / "r" / r["domain"] / "report.json").read_text())
        expert, generalist = report["per_image"][f"expert:{r['domain']}"], report["per_image"]["generalist"]
        diff = np.mean([expert[k]["psnr"] - generalist[k]["psnr"] for k in generalist])
        assert r["diff_psnr"]["mean_diff"] == pytest.approx(diff)
        assert r["gray"]["cf_ratio"] < 0.02
    assert json.loads((tmp_path / "r" / "args.json").read_text())["experts"] == ["birds", "places"]
    out = capsys.readouterr().out
    assert "| birds | 2 |" in out and "| places | 2 |" in out


def test_tune_context_on_tiny_photos(tiny_data: Path, tiny_model_dir: Path, tiny_generalist: Path, tmp_path: Path,
                                     capsys) -> None:
    from expertcolor import ExpertColorizer
    from expertcolor.evaluation import evaluate

    argv = ["--model", str(tiny_model_dir), "--generalist", str(tiny_generalist), "--data", str(tiny_data),
            "--n", "1", "--domains", "faces", "--out", str(tmp_path / "ctx")]
    results = tune_context.main(tune_context.get_args_parser().parse_args(argv))
    rows = results["faces"]
    assert list(rows) == [label for label, _, _ in tune_context.GRID] + ["expert alone", "generalist", "gray"]
    assert rows["soft"]["diff_vs_soft"] is None and rows["gray"]["diff_vs_soft"]["photos"] == 1
    assert rows["gray"]["cf_ratio"] < 0.02
    # soft is the model's own merge: finished like colorize, it scores what evaluate's routed variant scores
    model = ExpertColorizer.from_pretrained(tiny_model_dir)
    routed = evaluate(model, tiny_data / "faces" / "val", variants=["routed"], max_images=1, progress=False)
    assert rows["soft"]["per_photo"] == pytest.approx([routed["per_image"]["routed"]["0.png"]["ciede2000"]], abs=1e-6)
    assert json.loads((tmp_path / "ctx" / "results.json").read_text())["faces"]["soft"]["per_photo"] == \
        rows["soft"]["per_photo"]
    assert json.loads((tmp_path / "ctx" / "args.json").read_text())["domains"] == ["faces"]
    assert "| dominant c=0.5 |" in capsys.readouterr().out


def test_tune_decoding_on_tiny_photos(tiny_data: Path, tiny_model_dir: Path, capsys) -> None:
    argv = ["--model", str(tiny_model_dir), "--data", str(tiny_data), "--n", "2", "--temperatures", "0.5", "1",
            "--prior-corrections", "0"]
    rows = tune_decoding.main(tune_decoding.get_args_parser().parse_args(argv))
    assert {(r["T"], r["expert"]) for r in rows} == {(t, e) for t in (0.5, 1.0)
                                                     for e in ("animals", "birds", "faces", "places")}
    assert all(r["images"] == 2 and r["prior_correction"] == 0.0 for r in rows)
    # the temperature changes the decoding: each expert scores differently at 0.5 and 1
    by = {(r["T"], r["expert"]): r["ciede2000"] for r in rows}
    assert all(by[0.5, e] != by[1.0, e] for e in ("animals", "birds", "faces", "places"))
    out = capsys.readouterr().out
    assert '"gray_psnr"' in out and "T 1.0: largest prior correction keeping every expert" in out


def test_score_decodings_runs_the_network_once_a_photo_and_scores_as_evaluate(tiny_data: Path,
                                                                              tiny_model_dir: Path) -> None:
    from expertcolor import ExpertColorizer
    from expertcolor.evaluation import evaluate
    from expertcolor.evaluation.loop import list_photos

    model = ExpertColorizer.from_pretrained(tiny_model_dir)
    expert = model.experts["birds"]
    before = float(expert.config.temperature)
    calls = []
    hook = expert.net.register_forward_hook(lambda *_: calls.append(1))
    folder = tiny_data / "faces" / "val"
    grid = [(0.5, 0.0), (1.0, 0.0), (0.25, 0.0)]
    scores = tune_decoding.score_decodings(model, "birds", folder, grid)
    hook.remove()
    photos = len(list_photos(folder))
    assert len(calls) == photos >= 2  # one forward a photo, not one a photo and cell
    assert "raw" not in vars(expert) and expert.config.temperature == before  # left as it was
    for t, a in grid:  # each cell scores what evaluate scores with the expert decoding so
        expert.with_decoding(temperature=t, prior_correction=a)
        ref = evaluate(model, folder, variants=["expert:birds"], progress=False)["results"]["expert:birds"]["overall"]
        assert scores[t, a]["images"] == photos
        for key in ("ciede2000", "psnr", "cf_ratio"):
            assert scores[t, a][key] == pytest.approx(ref[key], abs=1e-9)
    assert scores[0.5, 0.0]["ciede2000"] != scores[1.0, 0.0]["ciede2000"]


@pytest.mark.parametrize("script, module", [("paired_bootstrap", stats), ("oracle_routing", oracle),
                                            ("in_domain", in_domain), ("tune_context", tune_context),
                                            ("tune_decoding", tune_decoding)])
def test_tool_scripts_are_the_package_commands(script: str, module, monkeypatch, capsys) -> None:
    path = REPO / "tools" / f"{script}.py"
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(path), run_name="__main__")
    assert exit_info.value.code == 0
    parser = module.get_args_parser()
    parser.prog = f"{script}.py"
    assert capsys.readouterr().out == parser.format_help()
