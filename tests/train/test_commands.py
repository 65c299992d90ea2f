"""The training commands by name, and ``python -m expertcolor.train [expert|segmenter]``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from expertcolor import train
from expertcolor.train import __main__ as train_main
from expertcolor.train import expert, list_training_commands, load_training_command, segmenter


def test_training_commands_by_name() -> None:
    assert list_training_commands() == ["train-expert", "train-segmenter"]
    assert load_training_command("train-expert") is expert
    assert load_training_command("train-segmenter") is segmenter
    assert train.TRAINING_COMMANDS.get("train-segmenter") == "expertcolor.train.segmenter"
    for name in list_training_commands():
        module = load_training_command(name)
        assert callable(module.main) and module.get_args_parser().prog == f"expertcolor {name}"
    with pytest.raises(KeyError, match=r"unknown training command 'train-gan'; choose from \['train-expert'"):
        load_training_command("train-gan")


@pytest.mark.parametrize("argv, module, rest", [
    (["--root", "r", "--out", "o"], expert, ["--root", "r", "--out", "o"]),
    (["expert", "--root", "r"], expert, ["--root", "r"]),
    (["train-expert", "--root", "r"], expert, ["--root", "r"]),
    (["segmenter", "--images", "i"], segmenter, ["--images", "i"]),
    (["train-segmenter", "--images", "i"], segmenter, ["--images", "i"]),
])
def test_package_entry_dispatches(monkeypatch, argv, module, rest) -> None:
    seen = {}
    monkeypatch.setattr(train_main, "run_module", lambda m, a: seen.update(module=m, argv=a))
    train_main.run(argv)
    assert seen == {"module": module, "argv": rest}


def test_bad_data_ends_the_command_with_one_line(tmp_path: Path, monkeypatch) -> None:
    import logging

    from expertcolor.train.command import run_module

    package = logging.getLogger("expertcolor")
    monkeypatch.setattr(package, "level", package.level)  # run_module shows INFO lines: restored afterwards
    with pytest.raises(SystemExit) as e:
        run_module(segmenter, ["--images", str(tmp_path / "none"), "--labels", str(tmp_path), "--out", "o"])
    assert str(e.value).startswith("expertcolor train-segmenter: error: images root not found")


@pytest.mark.slow
def test_module_entries_report_bad_data_in_one_line(tmp_path: Path) -> None:
    for module in ("expertcolor.train.segmenter", "expertcolor.train"):
        argv = ["segmenter"] if module == "expertcolor.train" else []
        proc = subprocess.run([sys.executable, "-m", module, *argv, "--images", str(tmp_path / "none"), "--labels",
                               str(tmp_path), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "error: images root not found" in proc.stderr and "Traceback" not in proc.stderr
