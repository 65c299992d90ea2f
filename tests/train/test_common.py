"""Helpers shared by the training scripts."""

from __future__ import annotations

from expertcolor.train.common import DistInfo, shard_indices


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
