"""The Trainer and its helpers: validation shards, resume checks, stale temporaries, failed checkpoints."""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from expertcolor import modeling
from expertcolor.train import checkpoint
from expertcolor.train.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from expertcolor.train.distributed import DistInfo, shard_indices
from expertcolor.train.options import add_common_args
from expertcolor.train.trainer import Trainer


def test_shard_indices_spread_a_capped_validation_set_over_all_sources() -> None:
    # 4 sources of 100 items each, concatenated in order: a cap of 40 must draw from every source.
    idx = shard_indices(400, DistInfo(), limit=40)
    assert len(idx) == len(set(idx)) == 40
    assert [sum(lo <= i < lo + 100 for i in idx) for lo in (0, 100, 200, 300)] == [10, 10, 10, 10]
    assert shard_indices(5, DistInfo()) == [0, 1, 2, 3, 4]
    assert shard_indices(5, DistInfo(), limit=50) == [0, 1, 2, 3, 4]
    # Ranks split the same pick without overlap.
    ranks = [shard_indices(400, DistInfo(rank=r, world_size=3), limit=40) for r in range(3)]
    assert sorted(sum(ranks, [])) == idx


# -- resume checks, stale temporaries and failed checkpoints (issue 20, defect 6) ----------------------
def _trainer(out, *extra: str) -> Trainer:
    """A Trainer on a 1x1 convolution and 16 random 4x4 images: a step takes milliseconds."""
    parser = argparse.ArgumentParser()
    add_common_args(parser, resolution=4, batch_size=4, lr=1e-2)
    args = parser.parse_args(["--out", str(out), "--workers", "0", "--no-progress", "--epochs", "2", *extra])
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(16, 1, 4, 4, generator=g), torch.rand(16, 1, 4, 4, generator=g))
    torch.manual_seed(0)
    return Trainer(args, nn.Conv2d(1, 1, 1), nn.MSELoss(), data, lambda model: {}, DistInfo())


def test_resume_refuses_another_batch_size_and_records_other_changes(tmp_path, caplog) -> None:
    out = tmp_path / "run"
    assert _trainer(out, "--stop-after-steps", "3").fit()["stopped"]
    assert load_checkpoint(out / CHECKPOINT_NAME)["args"]["batch_size"] == 4
    with pytest.raises(ValueError, match=r"--batch-size 4, this run has --batch-size 8.*resume with --batch-size 4"):
        _trainer(out, "--resume", "--batch-size", "8").fit()
    # Other options may change: a warning per option, and args.json records old and new values.
    with caplog.at_level(logging.WARNING, logger="expertcolor.train.checkpoint"):
        result = _trainer(out, "--resume", "--lr", "0.005").fit()
    assert not result["stopped"] and result["global_step"] == 8
    assert any("--lr changed from 0.01 to 0.005" in r.getMessage() for r in caplog.records)
    recorded = json.loads((out / "args.json").read_text())
    assert recorded["lr"] == 0.005
    assert recorded["resumes"] == [{"epoch": 0, "step_in_epoch": 3, "global_step": 3,
                                    "changed": {"lr": {"old": 0.01, "new": 0.005}}}]


def test_resume_of_a_checkpoint_without_recorded_options_falls_back_on_args_json(tmp_path) -> None:
    out = tmp_path / "run"
    _trainer(out, "--stop-after-steps", "2").fit()
    ck = load_checkpoint(out / CHECKPOINT_NAME)
    del ck["args"]  # as written before options were recorded
    save_checkpoint(out / CHECKPOINT_NAME, ck)
    with pytest.raises(ValueError, match="--batch-size 4"):
        _trainer(out, "--resume", "--batch-size", "2").fit()
    assert _trainer(out, "--resume").fit()["global_step"] == 8


def test_stale_checkpoint_temporaries_are_removed_and_nothing_else(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / ".checkpoint.pt.k3j_9xqz.tmp", out / ".checkpoint.pt.0a1b2c3d.tmp"]  # mkstemp's, ours
    keep = [out / ".metrics.jsonl.abcdefgh.tmp", out / "checkpoint.pt.abcdefgh.tmp", out / "notes.tmp",
            out / ".checkpoint.pt.toolongname.tmp", out / "my.checkpoint.pt.abcdefgh.tmp"]
    for p in stale + keep:
        p.write_bytes(b"x" * 10)
    assert checkpoint.remove_stale_checkpoint_temps(out / CHECKPOINT_NAME) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    # The trainer cleans up when it starts (or resumes).
    stale[0].write_bytes(b"partial checkpoint")
    _trainer(out, "--stop-after-steps", "1").fit()
    assert not stale[0].exists() and all(p.exists() for p in keep)


def test_a_failed_checkpoint_write_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    _trainer(out, "--stop-after-steps", "2").fit()
    before = (out / CHECKPOINT_NAME).read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *a, **k):
        real_save({"partial": torch.zeros(10)}, f)
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")  # torch's words

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"could not write checkpoint .*checkpoint\.pt.*disk may be full") as e:
        _trainer(out, "--resume", "--stop-after-steps", "4").fit()
    assert "unexpected pos" in str(e.value)
    assert (out / CHECKPOINT_NAME).read_bytes() == before
    assert modeling.stale_temp_files(out / CHECKPOINT_NAME) == []


# -- checkpoints written before train/common.py was split (issue 21) -----------------------------------
#: Written by expertcolor.train.common.Trainer at commit 091a56b, for ``_trainer(out, "--stop-after-steps", "6")``
#: with ``evaluate`` returning ``{"val_x": 1.5}``: mid-way through the second of 2 epochs of 4 steps.
LEGACY_CHECKPOINT = Path(__file__).parent / "data" / "checkpoint_091a56b.pt"
LEGACY_KEYS = {"model", "optimizer", "scheduler", "scaler", "state", "rng", "extra", "criterion", "world_size", "args"}


def _same(a, b) -> bool:
    """Exact equality of nested checkpoint values (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_a_checkpoint_written_before_the_split_restores_exactly_and_resumes(tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(LEGACY_CHECKPOINT, out / CHECKPOINT_NAME)
    ck = load_checkpoint(out / CHECKPOINT_NAME)  # weights_only=True
    assert set(ck) == LEGACY_KEYS
    trainer = _trainer(out, "--resume")
    assert trainer.restore()
    # every part comes back bit for bit, the global RNGs included
    assert _same(trainer.model.state_dict(), ck["model"])
    assert _same(trainer.optimizer.state_dict(), ck["optimizer"])
    assert _same(trainer.scheduler.state_dict(), ck["scheduler"])
    assert _same(trainer.scaler.state_dict(), ck["scaler"])
    assert _same(trainer.state, ck["state"])
    assert _same(checkpoint.rng_state(), ck["rng"])
    # what this code writes back is the same checkpoint
    assert _same(trainer.checkpoint(), ck)
    # training continues where it stopped: the last 2 steps of epoch 2
    result = _trainer(out, "--resume").fit()
    assert not result["stopped"] and result["global_step"] == 8 and result["images_seen"] == 32
    assert result["history"][0] == ck["state"]["history"][0] and result["history"][1]["epoch"] == 2
    assert json.loads((out / "args.json").read_text())["resumes"] == [
        {"epoch": 1, "step_in_epoch": 2, "global_step": 6, "changed": {}}]


def test_resume_from_a_hand_written_pre_split_checkpoint_is_bit_exact(tmp_path) -> None:
    full = _trainer(tmp_path / "full")
    full.fit()
    part = _trainer(tmp_path / "part", "--stop-after-steps", "5")
    assert part.fit()["stopped"]
    # The pre-split layout, spelled out here (not by the code under test); the global RNGs as they were
    # when the run stopped, in the pre-split encoding.
    py, npst = random.getstate(), np.random.get_state()
    legacy = {
        "model": part.model.state_dict(),
        "optimizer": part.optimizer.state_dict(),
        "scheduler": part.scheduler.state_dict(),
        "scaler": part.scaler.state_dict(),
        "state": dict(part.state),
        "rng": {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]],
                "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])]},
        "extra": {},
        "criterion": part.criterion.state_dict(),
        "world_size": 1,
        "args": {"batch_size": 4, "lr": 1e-2, "weight_decay": 1e-4, "warmup_steps": None, "epochs": 2, "seed": 0,
                 "resolution": 4, "max_images": None},
    }
    out = tmp_path / "legacy"
    out.mkdir()
    torch.save(legacy, out / CHECKPOINT_NAME)
    torch.manual_seed(123)  # the resume must not depend on the RNG state it starts with
    resumed = _trainer(out, "--resume")
    result = resumed.fit()
    assert result["global_step"] == 8 and result["images_seen"] == full.state["images_seen"]
    assert _same(resumed.model.state_dict(), full.model.state_dict())
    assert [r["train_loss"] for r in result["history"]] == [r["train_loss"] for r in full.state["history"]]
