"""One request group larger than the replay budget (every request with the same first block, e.g. one system
prompt) replays by slices of block depth and gives what one replay gives (caching._replay_batch)."""

from __future__ import annotations

import polars as pl
import pytest

from auditor.levers import caching
from auditor.levers.prefix import chain_key_lists, exploded_keys, split_key_lists
from tests.test_lever_caching_batches import counted_replays

A, B, C, D, E = ("A" * 32, "B" * 32, "C" * 32, "D" * 32, "E" * 32)  # one 32-byte block each
ROWS = [  # (text, t in s): one scope, every text starts with block A
    (A + B + C, 0),
    (A + B + D, 100),  # AB written 100 s ago: a hit under 300 s
    (A + E, 200),  # A touched 100 s ago (previous request)
    (A + B + C + "F" * 8, 1000),  # ABC last touched 1000 s ago: a miss under 300 s, a hit unbounded
]


def fixture() -> tuple[pl.DataFrame, pl.DataFrame]:
    texts = [text for text, _ in ROWS]
    split = split_key_lists(chain_key_lists(pl.Series(texts), 32), min_texts=2)
    chains = pl.DataFrame({caching.KEYS_HEAD: split["head"], caching.KEYS: split["tail"]})
    requests = pl.DataFrame(
        {
            "req": pl.Series(range(len(ROWS)), dtype=pl.UInt32),
            "scope": pl.Series([0] * len(ROWS), dtype=pl.UInt32),
            "t": [t * 1_000_000 for _, t in ROWS],
            "_chain_row": pl.Series(range(len(ROWS)), dtype=pl.UInt32),
            "bytes": pl.Series(texts).str.len_bytes().cast(pl.Int64),
        }
    )
    return requests, chains


def test_depth_slices_hold_about_the_budget() -> None:
    counts = pl.Series("n", [3, 3, 2, 4])  # rows per depth: 4, 4, 3, 1
    assert caching._depth_slices(counts, 4) == [(0, 1), (1, 2), (2, 4)]
    assert caching._depth_slices(counts, 5) == [(0, 2), (2, None)]
    assert caching._depth_slices(counts, 6) == [(0, None)]  # up to twice the budget: one pass


def test_exploded_keys_depth_slice_is_a_filter_of_the_whole() -> None:
    _, chains = fixture()
    whole = exploded_keys(chains[caching.KEYS_HEAD], chains[caching.KEYS])
    sliced = exploded_keys(chains[caching.KEYS_HEAD], chains[caching.KEYS], 1, 3)
    assert sliced.equals(whole.filter((pl.col("block") >= 1) & (pl.col("block") < 3)))
    assert sliced.height == 4 + 3  # depth 1: all four texts; depth 2: the three with a third block


def test_one_large_group_replays_by_depth_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    requests, chains = fixture()
    calls = counted_replays(monkeypatch)
    whole = caching._replay(requests, chains, 32, [300, None], budget=10**9).sort("req")
    assert calls == [12]
    sliced = caching._replay(requests, chains, 32, [300, None], budget=4).sort("req")
    assert calls[1:] == [4, 4, 4]  # depths 0, 1 and 2-3: one group, three slices
    assert sliced.equals(whole)
    # by hand: (shared bytes, hit under 300 s, hit unbounded)
    got = {row[0]: row[1:] for row in whole.select("req", "shared_bytes", "hit_bytes_0", "hit_bytes_1").rows()}
    assert got == {0: (96, 0, 0), 1: (64, 64, 64), 2: (32, 32, 32), 3: (96, 0, 96)}
