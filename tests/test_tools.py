"""The developer tools under tools/ that are not covered with the training scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .conftest import TOOLS, load_tool


def _row(t: float, a: float, expert: str, cf: float) -> dict:
    return {"T": t, "prior_correction": a, "expert": expert, "cf_ratio": cf}


def test_pick_prior_correction_takes_the_largest_that_keeps_every_expert_colourful() -> None:
    tool = load_tool("tune_decoding")
    rows = [_row(0.5, 0.0, "faces", 1.0), _row(0.5, 0.0, "birds", 0.9),
            _row(0.5, 0.5, "faces", 0.8), _row(0.5, 0.5, "birds", 0.51),
            _row(0.5, 1.0, "faces", 0.7), _row(0.5, 1.0, "birds", 0.3),  # birds turn grey: not this one
            _row(0.38, 1.0, "faces", 0.9), _row(0.38, 1.0, "birds", 0.9)]  # another temperature: ignored
    assert tool.pick_prior_correction(rows, 0.5) == 0.5
    assert tool.pick_prior_correction(rows, 0.5, min_cf_ratio=0.2) == 1.0
    assert tool.pick_prior_correction(rows, 0.5, min_cf_ratio=0.95) is None
    assert tool.pick_prior_correction(rows, 0.38) == 1.0


def test_tune_decoding_runs_on_the_shared_validation_photos(shared_data: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    # The embedded default model: its experts carry the rebalancing weights that prior correction needs.
    tool = load_tool("tune_decoding")
    model = TOOLS.parent / "expertcolor" / "pretrained" / "default"
    rows = tool.main(["--model", str(model), "--data", str(shared_data), "--n", "2",
                      "--prior-corrections", "0", "1"])
    out = capsys.readouterr().out
    assert "largest prior correction" in out and "Mean over experts" in out
    assert {r["prior_correction"] for r in rows} == {0.0, 1.0}
    assert all(r["images"] == 2 and r["psnr"] > 0 for r in rows)


def test_paired_bootstrap_on_a_report(tmp_path: Path, capsys) -> None:
    tool = load_tool("paired_bootstrap")
    rng = np.random.default_rng(0)
    base = rng.uniform(8, 12, 40)
    per_image = {
        "routed": {f"p{i}": {"ciede2000": v - 0.5, "psnr": 24.0} for i, v in enumerate(base)},
        "gray": {f"p{i}": {"ciede2000": v, "psnr": 23.0} for i, v in enumerate(base)},
        "noisy": {f"p{i}": {"ciede2000": v + s} for i, (v, s) in enumerate(zip(base, rng.normal(0, 2, 40)))},
    }
    (tmp_path / "report.json").write_text(json.dumps({"per_image": per_image}))
    argv = [str(tmp_path / "report.json"), "--a", "routed", "--b", "gray", "--n", "2000"]
    r = tool.main(tool.get_args_parser().parse_args(argv))
    # a constant difference: the interval collapses onto it and A wins on every photo
    assert r["photos"] == 40 and r["a_better"] == 40
    assert abs(r["mean_diff"] + 0.5) < 1e-9 and abs(r["lo"] + 0.5) < 1e-9 and abs(r["hi"] + 0.5) < 1e-9
    assert "routed better on 40 of 40" in capsys.readouterr().out
    r = tool.main(tool.get_args_parser().parse_args([*argv[:4], "noisy", "--n", "2000"]))
    assert r["lo"] < r["mean_diff"] < r["hi"] and r["hi"] - r["lo"] > 0.5  # noise gives a real interval
    assert tool.main(tool.get_args_parser().parse_args([*argv, "--metric", "psnr"]))["a_better"] == 40
    with pytest.raises(KeyError, match=r"not in the report; it has \['gray', 'noisy', 'routed'\]"):
        tool.main(tool.get_args_parser().parse_args([*argv[:4], "generalist"]))
