"""``modeling.atomic_write``: permissions, temporary names and failures (issue 20, defect 5)."""

from __future__ import annotations

import os
import random
import stat

import pytest
import torch

from expertcolor import create_expert, modeling
from expertcolor.modeling import atomic_write, write_json


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_written_atomically_honour_the_umask(tmp_path, umask) -> None:
    """They were 0600 whatever the umask: mkstemp's mode survived os.replace."""
    umask(0o022)
    write_json(tmp_path / "a.json", {"x": 1})
    assert _mode(tmp_path / "a.json") == 0o644
    create_expert(name="faces").save_pretrained(tmp_path / "expert")  # a model directory
    assert _mode(tmp_path / "expert" / "model.safetensors") == 0o644
    assert _mode(tmp_path / "expert" / "config.json") == 0o644
    umask(0o002)
    atomic_write(tmp_path / "ck.pt", lambda tmp: torch.save({"a": torch.zeros(2)}, tmp))
    assert _mode(tmp_path / "ck.pt") == 0o664
    umask(0o077)
    write_json(tmp_path / "private.json", {})
    assert _mode(tmp_path / "private.json") == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "args.json"
    write_json(target, {"old": True})

    def failing(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("{half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, failing)
    assert target.read_text() == '{\n  "old": true\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["args.json"]


def test_a_symlink_at_the_target_is_replaced_not_written_through(tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "out.json").symlink_to(victim)
    write_json(tmp_path / "out.json", {"a": 1})
    assert victim.read_text() == "keep me" and not (tmp_path / "out.json").is_symlink()


def test_temporary_names_match_the_stale_file_pattern_and_leave_the_global_rng_alone(tmp_path) -> None:
    seen = []
    state = random.getstate()
    atomic_write(tmp_path / "checkpoint.pt", lambda tmp: seen.append(os.path.basename(tmp)) or open(tmp, "wb").close())
    assert random.getstate() == state  # checkpoints store the global RNG state: writing must not move it
    name = seen[0]
    assert name.startswith(".checkpoint.pt.") and name.endswith(".tmp") and len(name) == len(".checkpoint.pt..tmp") + 8
    # A leftover of that shape is found; other files beside it are not.
    (tmp_path / name).write_bytes(b"partial")
    for other in (".checkpoint.pt.tmp", ".checkpoint.pt.abcdefghi.tmp", "checkpoint.pt.abcdefgh.tmp",
                  ".metrics.jsonl.abcdefgh.tmp", ".checkpoint.pt.ABCDEFGH.tmp"):
        (tmp_path / other).write_bytes(b"x")
    assert [p.name for p in modeling.stale_temp_files(tmp_path / "checkpoint.pt")] == [name]
