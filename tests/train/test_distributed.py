"""``torchrun`` with two CPU processes (gloo): sharded batches, rank-0 writes (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from expertcolor import Expert
from expertcolor.train.sampling import epoch_batches


def test_epoch_batches_shard_like_distributed_sampler() -> None:
    one = epoch_batches(10, 2, epoch=3, seed=1)
    assert sorted(i for b in one for i in b) == list(range(10))
    r0 = epoch_batches(10, 2, epoch=3, seed=1, rank=0, world_size=2)
    r1 = epoch_batches(10, 2, epoch=3, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == 2
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}
    assert epoch_batches(10, 2, epoch=4, seed=1) != one
    assert epoch_batches(10, 2, epoch=3, seed=1) == one


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tiny_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
           "-m", "expertcolor.train", "--root", str(tiny_folder), "--out", str(out), "--resolution", "32",
           "--batch-size", "2", "--epochs", "1", "--workers", "0", "--prior-images", "8", "--no-progress",
           "--threads", "1", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expert = Expert.from_pretrained(out / "expert")
    assert expert.config.provenance["images_seen"] == 16  # 16 colour images, 2 ranks x 4 steps x 2
