"""``train-expert``: a few steps on a tiny folder, outputs, and exact resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from expertcolor import Expert
from expertcolor.train import expert as train_expert
from expertcolor.train.checkpoint import load_checkpoint
from expertcolor.train.losses import SoftEncodedCELoss

from ..conftest import load_tool


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["--root", str(root), "--out", str(out), "--resolution", "32", "--batch-size", "4", "--epochs", "2",
            "--workers", "0", "--prior-images", "8", "--no-progress", "--threads", "1", *extra]


def _run(argv: list[str]) -> dict:
    return train_expert.main(train_expert.get_args_parser().parse_args(argv))


def test_train_expert_writes_a_loadable_expert(tiny_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _run(_args(tiny_folder, out, "--name", "faces", "--max-images", "12"))
    assert not result["stopped"] and result["global_step"] == 6 and result["images_seen"] == 24
    expert = Expert.from_pretrained(out / "expert")
    assert expert.name == "faces" and expert.config.classes == ("person",)  # default routing of "faces"
    prov = expert.config.provenance
    assert prov["dataset"] == ["folder"] and prov["epochs"] == 2 and prov["images_seen"] == 24
    assert {"val_ab_mse", "val_psnr", "val_colorfulness_pred", "val_colorfulness_true"} <= set(prov["val_metrics"])
    assert prov["args"]["max_images"] == 12 and isinstance(prov["command"], str)
    args = json.loads((out / "args.json").read_text())
    assert args["name"] == "faces" and args["loss"] == "soft_ce" and args["classes"] == ["person"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2] and lines[-1]["val_images"] == 4
    ck = load_checkpoint(out / "checkpoint.pt")  # weights_only=True
    assert ck["state"]["epoch"] == 2
    # the loss's per-bin rebalancing weights travel with the expert, so decoding can undo them
    assert expert.has_rebalance_weights and expert.config.prior_correction == 0.0
    assert torch.allclose(expert.rebalance_log_weights.exp(), ck["criterion"]["weights"], rtol=1e-5)
    with torch.no_grad():
        ab = expert(torch.full((1, 1, 32, 32), 50.0))
    assert ab.shape == (1, 2, 32, 32) and torch.isfinite(ab).all()


def test_grayscale_training_file_is_counted(tiny_folder: Path, tmp_path: Path) -> None:
    result = _run(_args(tiny_folder, tmp_path / "r", "--epochs", "1", "--head", "regression", "--loss", "smooth_l1"))
    assert result["history"][-1]["skipped_train_files"] == {"unreadable": 0, "grayscale": 1}
    assert Expert.from_pretrained(tmp_path / "r" / "expert").config.head == "regression"


def test_resume_after_kill_matches_uninterrupted_run(tiny_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """Kill inside step 5 (checkpoints every 2 steps) and resume: weights equal exactly (atol 0)."""
    full = tmp_path / "full"
    _run(_args(tiny_folder, full, "--epochs", "3", "--max-images", "12"))

    part = tmp_path / "part"
    calls = {"n": 0}
    forward = SoftEncodedCELoss.forward

    def dying_forward(self, logits, ab):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return forward(self, logits, ab)

    monkeypatch.setattr(SoftEncodedCELoss, "forward", dying_forward)
    with pytest.raises(KeyboardInterrupt):
        _run(_args(tiny_folder, part, "--epochs", "3", "--max-images", "12", "--save-every", "2"))
    monkeypatch.setattr(SoftEncodedCELoss, "forward", forward)
    assert load_checkpoint(part / "checkpoint.pt")["state"]["global_step"] == 4
    assert not (part / "expert").exists()
    result = _run(_args(tiny_folder, part, "--epochs", "3", "--max-images", "12", "--resume"))
    assert result["global_step"] == 9

    a, b = load_file(full / "expert" / "model.safetensors"), load_file(part / "expert" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(x) for x in (part / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_ab_mse"] for r in ma] == [r["val_ab_mse"] for r in mb]


def test_stop_after_steps_then_resume_mid_epoch(tiny_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    r = _run(_args(tiny_folder, out, "--epochs", "1", "--max-images", "12", "--stop-after-steps", "2"))
    assert r["stopped"] and r["global_step"] == 2 and r["step_in_epoch"] == 2
    r = _run(_args(tiny_folder, out, "--epochs", "1", "--max-images", "12", "--resume"))
    assert not r["stopped"] and r["global_step"] == 3


def test_union_of_datasets_and_errors(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.train.expert import build_datasets

    args = train_expert.get_args_parser().parse_args(
        ["--dataset", "folder", "folder", "--root", str(tiny_folder), str(tiny_folder), "--out", str(tmp_path)]
    )
    train, val = build_datasets(args)
    assert len(train) == 34 and len(val) == 8
    with pytest.raises(FileNotFoundError, match="images.txt"):
        _run(_args(tmp_path, tmp_path / "x", "--dataset", "cub"))
    with pytest.raises(ValueError, match="not VOC categories"):
        _run(_args(tiny_folder, tmp_path / "y", "--classes", "unicorn"))
    with pytest.raises(ValueError, match="does not fit --head"):
        _run(_args(tiny_folder, tmp_path / "z", "--loss", "mse"))


def test_root_weight_oversamples_a_root(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.train.expert import build_datasets, sample_weights

    def parse(*extra: str):
        return train_expert.get_args_parser().parse_args(
            ["--root", str(tiny_folder), str(tiny_folder), "--out", str(tmp_path), *extra])

    args = parse("--root-weight", "1", "3")
    train, _ = build_datasets(args)
    w = sample_weights(args, train)
    assert w.tolist() == [1.0] * 17 + [3.0] * 17  # 16 colour + 1 grayscale file per root
    capped = parse("--root-weight", "1", "3", "--max-images", "10")
    train_c, _ = build_datasets(capped)
    assert sample_weights(capped, train_c).tolist() == [1.0 if i < 17 else 3.0 for i in train_c.indices]
    assert sample_weights(parse(), train) is None
    with pytest.raises(ValueError, match="one per root"):
        sample_weights(parse("--root-weight", "2"), train)
    zero = parse("--root-weight", "1", "1")
    zero.root_weight = [1.0, 0.0]  # what the command line refuses (a usage error), from code
    with pytest.raises(ValueError, match="positive"):
        sample_weights(zero, train)
    result = _run(_args(tiny_folder, tmp_path / "run", "--dataset", "folder", "--root", str(tiny_folder),
                        str(tiny_folder), "--root-weight", "1", "3", "--epochs", "1"))
    assert result["images_seen"] == 32  # the union's length per epoch (34 items, full batches of 4)


def test_route_weight_table_follows_the_default_routing() -> None:
    from expertcolor.segmentation import VOC_CATEGORIES
    from expertcolor.train.expert import route_weight_table

    ids = {c: i for i, c in enumerate(VOC_CATEGORIES)}
    places = route_weight_table("places", [])  # the default expert: every class nobody else owns
    assert places[ids["background"]] == places[ids["car"]] == 1.0
    assert places[ids["person"]] == places[ids["dog"]] == places[ids["bird"]] == places[255] == 0.0
    animals = route_weight_table("animals", ["cat", "dog"], off_route_weight=0.1)
    assert animals[ids["dog"]] == 1.0 and animals[ids["horse"]] == animals[ids["background"]] == np.float32(0.1)
    assert animals[255] == 0.0
    with pytest.raises(ValueError, match="owns no VOC class"):
        route_weight_table("generalist", [])
    with pytest.raises(ValueError, match=r"off-route-weight must be in \[0, 1\]"):
        route_weight_table("places", [], off_route_weight=2.0)


def test_route_labels_train_on_routed_pixels(tiny_pairs: tuple[Path, Path], tiny_folder: Path, tmp_path: Path) -> None:
    images, labels = tiny_pairs
    out = tmp_path / "routed"
    result = _run(_args(images, out, "--name", "faces", "--route-labels", str(labels), "--epochs", "1",
                        "--val-fraction", "0.25"))
    assert not result["stopped"] and result["images_seen"] == 8
    expert = Expert.from_pretrained(out / "expert")
    assert expert.config.provenance["args"]["route_labels"] == [str(labels)]
    # a labelled root beside one whose every pixel counts ('none')
    mixed = _run(_args(images, tmp_path / "mixed", "--name", "faces", "--dataset", "folder", "--root", str(images),
                       str(tiny_folder), "--route-labels", str(labels), "none", "--epochs", "1"))
    assert not mixed["stopped"]
    with pytest.raises(ValueError, match="--route-labels has 1 values but --root has 2"):
        _run(_args(images, tmp_path / "x", "--root", str(images), str(tiny_folder), "--route-labels", str(labels)))
    with pytest.raises(FileNotFoundError, match="no label map"):
        _run(_args(tiny_folder, tmp_path / "y", "--name", "faces", "--route-labels", str(labels)))


def test_init_from_fine_tunes_another_expert(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.experts import create_expert

    torch.manual_seed(1)
    start = create_expert("fpn_mobilenet_v2", name="places", resolution=32, temperature=0.6)
    start.save_pretrained(tmp_path / "start")
    out = tmp_path / "birds"
    # lr 0: the parameters must come back exactly as loaded; --head regression must yield to the start's head.
    _run(_args(tiny_folder, out, "--name", "birds", "--epochs", "1", "--head", "regression",
               "--init-from", str(tmp_path / "start"), "--lr", "0", "--weight-decay", "0"))
    tuned = Expert.from_pretrained(out / "expert")
    cfg = tuned.config
    assert cfg.name == "birds" and cfg.classes == ("bird",) and cfg.head == "classification"
    assert cfg.temperature == 0.6 and cfg.model_kwargs == start.config.model_kwargs
    assert cfg.provenance["init_from"]["dir"] == str(tmp_path / "start")
    assert cfg.provenance["init_from"]["name"] == "places"
    before = dict(start.named_parameters())
    for name, p in tuned.named_parameters():
        assert torch.equal(p, before[name]), name
    assert json.loads((out / "args.json").read_text())["head"] == "classification"
    with pytest.raises(FileNotFoundError, match="not an expert directory"):
        _run(_args(tiny_folder, tmp_path / "x", "--init-from", str(tmp_path / "missing")))
    model = tmp_path / "model"
    (model / "experts").mkdir(parents=True)
    (model / "config.json").write_text('{"format_version": 1}')
    with pytest.raises(ValueError, match="--init-from .*experts/<name>"):
        _run(_args(tiny_folder, tmp_path / "y", "--init-from", str(model)))


def test_distill_from_pulls_toward_the_teacher_and_saves_the_student_only(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.experts import create_expert

    torch.manual_seed(1)
    teacher = create_expert("fpn_mobilenet_v2", name="generalist", resolution=32)
    teacher.save_pretrained(tmp_path / "teacher")
    out = tmp_path / "birds"
    result = _run(_args(tiny_folder, out, "--name", "birds", "--epochs", "1", "--init-from", str(tmp_path / "teacher"),
                        "--distill-from", str(tmp_path / "teacher"), "--distill-weight", "1"))
    assert result["global_step"] > 0
    student = Expert.from_pretrained(out / "expert")
    assert set(student.state_dict()) == set(teacher.state_dict())  # no teacher weights inside
    assert set(load_checkpoint(out / "checkpoint.pt")["model"]) == set(train_expert.RawExpert(teacher).state_dict())
    assert json.loads((out / "args.json").read_text())["distill_from"] == str(tmp_path / "teacher")
    # A teacher with another head is refused before training.
    create_expert("fpn_mobilenet_v2", name="g", resolution=32, head="regression").save_pretrained(tmp_path / "reg")
    with pytest.raises(ValueError, match="--distill-from"):
        _run(_args(tiny_folder, tmp_path / "x", "--distill-from", str(tmp_path / "reg")))


def test_chroma_boost_trains_on_saturated_targets_and_must_match_on_resume(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.train.losses import ChromaBoostLoss

    plain, boosted = tmp_path / "plain", tmp_path / "boosted"
    _run(_args(tiny_folder, plain, "--epochs", "1", "--max-images", "8"))
    r = _run(_args(tiny_folder, boosted, "--epochs", "1", "--max-images", "8", "--chroma-boost", "1.5",
                   "--stop-after-steps", "1"))
    assert r["stopped"]
    assert json.loads((boosted / "args.json").read_text())["chroma_boost"] == 1.5
    # The bin prior is estimated on the boosted targets: more of its mass lies far from grey.
    radius = SoftEncodedCELoss(Expert.from_pretrained(plain / "expert").bin_centers).centers_ab.norm(dim=1)
    prior_plain = load_checkpoint(plain / "checkpoint.pt")["criterion"]["prior"]
    prior_boosted = load_checkpoint(boosted / "checkpoint.pt")["criterion"]["base.prior"]
    assert (prior_boosted * radius).sum() > (prior_plain * radius).sum() * 1.3
    with pytest.raises(ValueError, match="--chroma-boost 1.5"):
        _run(_args(tiny_folder, boosted, "--epochs", "1", "--max-images", "8", "--resume"))
    _run(_args(tiny_folder, boosted, "--epochs", "1", "--max-images", "8", "--chroma-boost", "1.5", "--resume"))
    expert = Expert.from_pretrained(boosted / "expert")  # the rebalancing weights still reach the expert
    assert expert.has_rebalance_weights
    assert torch.allclose(expert.rebalance_log_weights.exp(),
                          load_checkpoint(boosted / "checkpoint.pt")["criterion"]["base.weights"], rtol=1e-5)
    args = train_expert.get_args_parser().parse_args(_args(tiny_folder, tmp_path / "c", "--chroma-boost", "1.2"))
    assert isinstance(train_expert.build_criterion(args, expert, [], estimate_prior=False), ChromaBoostLoss)


def test_colorfulness_weight_adds_the_chroma_penalty_and_may_change_on_resume(
    tiny_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from expertcolor.train.losses import ColorfulnessLoss

    out = tmp_path / "vivid"
    r = _run(_args(tiny_folder, out, "--epochs", "1", "--max-images", "8", "--colorfulness-weight", "2",
                   "--stop-after-steps", "1"))
    assert r["stopped"]
    assert json.loads((out / "args.json").read_text())["colorfulness_weight"] == 2
    assert set(load_checkpoint(out / "checkpoint.pt")["criterion"]) == {"base.centers_ab", "base.prior", "base.weights"}
    with caplog.at_level("WARNING"):  # a new weight is allowed on resume, with a warning
        _run(_args(tiny_folder, out, "--epochs", "1", "--max-images", "8", "--colorfulness-weight", "1", "--resume"))
    assert "--colorfulness-weight changed from 2.0 to 1.0" in caplog.text
    assert Expert.from_pretrained(out / "expert").has_rebalance_weights  # found through the wrapper
    args = train_expert.get_args_parser().parse_args(_args(tiny_folder, tmp_path / "c", "--colorfulness-weight", "1",
                                                           "--chroma-boost", "1.2"))
    criterion = train_expert.build_criterion(args, Expert.from_pretrained(out / "expert"), [], estimate_prior=False)
    assert isinstance(criterion, ColorfulnessLoss) and criterion.weight == 1
    with pytest.raises(ValueError, match="--colorfulness-weight .*--head classification"):
        _run(_args(tiny_folder, tmp_path / "r", "--head", "regression", "--colorfulness-weight", "1"))


def test_lineage_budget_adds_up_across_fine_tuning(tiny_folder: Path, tmp_path: Path) -> None:
    from expertcolor.experts import create_expert
    from expertcolor.modeling import sha256_file
    from expertcolor.train.expert import lineage_images

    first = _run(_args(tiny_folder, tmp_path / "a", "--name", "places", "--max-images", "12"))
    a = Expert.from_pretrained(tmp_path / "a" / "expert").config.provenance
    assert a["images_seen_total"] == first["images_seen"] == 24  # from an ImageNet/scratch start: its own images
    second = _run(_args(tiny_folder, tmp_path / "b", "--name", "birds", "--max-images", "8", "--epochs", "1",
                        "--init-from", str(tmp_path / "a" / "expert")))
    b = Expert.from_pretrained(tmp_path / "b" / "expert").config.provenance
    assert b["init_from"]["images_seen_total"] == 24
    assert b["init_from"]["sha256"] == sha256_file(tmp_path / "a" / "expert" / "model.safetensors")
    assert b["images_seen_total"] == 24 + second["images_seen"] == lineage_images(b)
    # a start whose own budget is unrecorded leaves the total unknown rather than undercounted
    create_expert("fpn_mobilenet_v2", name="places", resolution=32).with_provenance(
        images_seen=100, init_from={"name": "older"}).save_pretrained(tmp_path / "old")
    _run(_args(tiny_folder, tmp_path / "c", "--name", "faces", "--max-images", "4", "--epochs", "1",
               "--init-from", str(tmp_path / "old")))
    assert Expert.from_pretrained(tmp_path / "c" / "expert").config.provenance["images_seen_total"] is None


def test_parser_has_the_documented_options() -> None:
    p = train_expert.get_args_parser()
    opts = {o for a in p._actions for o in a.option_strings}
    for o in ("--name", "--dataset", "--root", "--classes", "--arch", "--head", "--loss", "--resolution", "--epochs",
              "--batch-size", "--lr", "--workers", "--seed", "--init-encoder", "--max-images", "--out", "--resume",
              "--device"):
        assert o in opts, o


def test_backfill_tool_restores_rebalancing_weights(tiny_folder: Path, tmp_path: Path) -> None:
    # Experts trained before the weights were stored: the tool copies them from checkpoint.pt.
    from safetensors.torch import save_file

    tool = load_tool("backfill_rebalance_weights")
    out = tmp_path / "run"
    _run(_args(tiny_folder, out, "--epochs", "1", "--max-images", "8"))
    weights_file = out / "expert" / "model.safetensors"
    sd = load_file(str(weights_file))
    del sd["rebalance_log_weights"]  # as written by older versions
    save_file(sd, str(weights_file))
    assert not Expert.from_pretrained(out / "expert").has_rebalance_weights
    assert tool.main([str(out)]) == 0
    expert = Expert.from_pretrained(out / "expert")
    ck = load_checkpoint(out / "checkpoint.pt")
    assert torch.allclose(expert.rebalance_log_weights.exp(), ck["criterion"]["weights"], rtol=1e-5)
    restored = load_file(str(weights_file))
    assert all(torch.equal(restored[k], v) for k, v in sd.items())  # the network itself is untouched
    assert tool.main([str(tmp_path / "nope")]) == 2


def test_a_root_without_one_usable_photo_fails_before_training(tiny_folder: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    from expertcolor.cli import main as cli_main
    from expertcolor.datasets import NoUsableImagesError

    gray = tmp_path / "bw"
    for split in ("train", "val"):
        (gray / split).mkdir(parents=True)
        for i in range(3):  # black-and-white photos and a broken file: nothing to learn colour from
            v = np.full((40, 48), 40 * i + 30, np.uint8)
            Image.fromarray(np.stack([v] * 3, axis=2)).save(gray / split / f"{i}.jpg")
        (gray / split / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(NoUsableImagesError, match=r"bw.*none of the 4 images could be used"):
        _run(_args(tiny_folder, tmp_path / "a", "--root", str(tiny_folder), str(gray)))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    # From the command line: one line naming the folder, exit status 2, no traceback.
    assert cli_main(["train-expert", *_args(gray, tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "none of the 4 images could be used" in err and "Traceback" not in err


@pytest.mark.parametrize("option, value", [("--epochs", "0"), ("--batch-size", "-2"), ("--lr", "-1e-3"),
                                           ("--lr", "nan"), ("--workers", "-1"), ("--resolution", "0"),
                                           ("--rebalance-lambda", "1.5"), ("--root-weight", "-1")])
def test_out_of_range_numbers_are_usage_errors(tiny_folder: Path, tmp_path: Path, option: str, value: str,
                                               capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as e:
        train_expert.get_args_parser().parse_args(["--root", str(tiny_folder), "--out", str(tmp_path),
                                                   option, value])
    assert e.value.code == 2
    assert f"argument {option}: expected" in capsys.readouterr().err


def test_cache_dir_trains_from_the_cache_and_resumes_exactly(tiny_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    common = ("--epochs", "2", "--max-images", "12", "--cache-dir", str(cache))
    full = _run(_args(tiny_folder, tmp_path / "full", *common))
    entries = sorted(p.name for p in cache.iterdir())
    assert len(entries) == 2  # the training and the validation split, at their decoding sizes
    assert full["history"][-1]["skipped_train_files"] == {"unreadable": 0, "grayscale": 1}
    part = tmp_path / "part"
    assert _run(_args(tiny_folder, part, *common, "--stop-after-steps", "4"))["stopped"]
    _run(_args(tiny_folder, part, *common, "--resume"))
    assert sorted(p.name for p in cache.iterdir()) == entries  # reused, not rebuilt
    a = load_file(tmp_path / "full" / "expert" / "model.safetensors")
    b = load_file(part / "expert" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((part / "args.json").read_text())["cache_dir"] == str(cache)
