"""Prefix hash chains and the cache replay core, with plain parameters (no price tables).

Mooncake data: kvcache-ai/Mooncake (Apache-2.0), FAST25-release/traces/{conversation,synthetic}_trace.jsonl.
"""

from __future__ import annotations

import polars as pl
import pytest

from auditor.levers import caching
from auditor.levers.cache_sim import cached_tokens, replay, writes_never_read
from auditor.levers.prefix import (
    _may_be_volatile,
    chain_key_lists,
    chain_keys,
    find_volatile_span,
    mask_volatile,
    split_key_lists,
)
from tests.mooncake_helper import BLOCK_BYTES, load_trace


def blocks_for(texts: list[str], times_s: list[float], block: int) -> pl.DataFrame:
    keys = chain_keys(pl.Series(texts), block).rename({"text_idx": "req"})
    times = pl.DataFrame(
        {"req": range(len(texts)), "t": [int(t * 1e6) for t in times_s]}, schema={"req": pl.UInt32, "t": pl.Int64}
    )
    return keys.join(times, on="req").with_columns(pl.lit(0).alias("scope"))


def test_chain_keys_identify_prefixes_not_blocks() -> None:
    # "AB" and "BA" hold the same blocks in another order: only block-0 keys of equal texts may match.
    a, b = "A" * 4 + "B" * 4, "B" * 4 + "A" * 4
    keys = chain_keys(pl.Series([a, b, a + "C"]), 4)
    k = {(r["text_idx"], r["block"]): r["key"] for r in keys.iter_rows(named=True)}
    assert k[(0, 1)] != k[(1, 1)] and k[(0, 0)] != k[(1, 0)]
    assert k[(0, 0)] == k[(2, 0)] and k[(0, 1)] == k[(2, 1)]  # a is a prefix of a+"C"
    assert keys.filter(pl.col("text_idx") == 2)["end_byte"].to_list() == [4, 8, 9]


def test_replay_ttl_and_same_instant() -> None:
    shared = "s" * 40
    texts = [shared + "x1", shared + "x2", shared + "x3", shared + "x4", shared + "x5"]
    blocks = blocks_for(texts, [0, 0, 100, 500, 1000], 8)
    out = replay(blocks, [300, None]).sort("req")
    assert out["shared_bytes"].to_list() == [40] * 5
    # req 1 starts with req 0: miss; req 2 100 s later: hit; req 3 (400 s after) and req 4 (500 s) miss at 300 s
    assert out["hit_bytes_0"].to_list() == [0, 0, 40, 0, 0]
    assert out["hit_bytes_1"].to_list() == [0, 0, 40, 40, 40]


def test_cached_tokens_minimum_and_granularity() -> None:
    frame = pl.DataFrame({"bytes": [4000, 6000, 9000, 0], "input": [5000] * 4})
    tokens = frame.select(
        cached_tokens(pl.col("bytes"), pl.lit(0.25), pl.col("input"), pl.lit(1024), pl.lit(128)).alias("t")
    )["t"].to_list()
    # 1000 < 1024 -> 0; 1500 -> 1024 + 3*128 = 1408; 2250 -> 1024 + 9*128 = 2176
    assert tokens == [0, 1408, 2176, 0]


def test_mask_volatile_and_span() -> None:
    texts = pl.Series(['[tools]\n[{"name":"b","x":1},{"name":"a"}]\n[system]\nAt 2026-10-01 09:15 id req_8f3k2j9x ok'])
    assert mask_volatile(texts)[0] == '[tools]\n[{"name":"a"},{"name":"b","x":1}]\n[system]\nAt \x00 id \x00 ok'
    span = find_volatile_span("[system]\nToday is 2026-10-01.\nRules", "[system]\nToday is 2026-10-02.\nRules")
    assert span is not None
    assert (span.kind, span.char_offset, span.line, span.segment) == ("date", 18, 2, "system")


def hit_share(name: str) -> float:
    trace = load_trace(name).with_row_index("req")
    blocks = (
        chain_keys(trace["prompt_text"], BLOCK_BYTES)
        .rename({"text_idx": "req"})
        .join(trace.select("req", (pl.col("t_ms") * 1000).alias("t")), on="req")
        .with_columns(pl.lit(0).alias("scope"))
    )
    replayed = trace.join(replay(blocks, [None]), on="req", how="left")
    ratio = pl.col("input_tokens") / pl.col("prompt_text").str.len_bytes()
    hits = replayed.select(
        cached_tokens(pl.col("hit_bytes_0").fill_null(0), ratio, pl.col("input_tokens"), pl.lit(0), pl.lit(1)).sum()
    ).item()
    return float(hits / trace["input_tokens"].sum())


def test_mooncake_unbounded_hit_share_in_published_range() -> None:
    # README: conversation ~37-41 %, synthetic ~64-66 % (token-weighted, unbounded cache, arrival order).
    assert 0.37 <= hit_share("conversation") <= 0.41
    assert 0.64 <= hit_share("synthetic") <= 0.66


def test_volatile_gate_finds_every_prompt_masking_changes() -> None:
    # Spans on both sides of block boundaries, a month-name date with a long letter run across windows, a
    # non-ASCII digit, a non-ASCII prompt, a span past the searched head: the windowed gate (one regex pass per
    # distinct window) must select every prompt whose head mask_volatile changes.
    filler = "plain words only here. " * 40
    texts = []
    for shift in range(0, 80, 7):
        texts.append(filler[:shift] + "id 0123456789abcdef0123 end " + filler)
        texts.append(filler[: 250 + shift] + "at 2026-10-01T12:00:00Z ok " + filler)
        texts.append(
            filler[: 240 + shift]
            + "Septemberrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr 5, 2026 "
            + filler
        )
        texts.append(filler[: 200 + shift] + "req_a1b2c3d4e5 " + filler)
        texts.append(filler[:shift] + "n° \u0663\u0664 " + filler)  # Arabic-Indic digits
        texts.append("é" * shift + filler + "12345678901 ")
    texts += [filler, filler + "x" * 9000 + " 2026-10-01", "", "é" + filler]
    series = pl.Series(texts)
    changes = (mask_volatile(series) != series).to_list()
    for block in (256, 16, 100):
        gate = _may_be_volatile(series, chain_keys(series, block), block).to_list()
        assert all(g for g, c in zip(gate, changes, strict=True) if c)
        assert not gate[-4] and not gate[-2]  # no volatile span in the head, or no text
    assert changes[-3] is False  # the date after 9,000 plain characters is outside the head


def test_writes_never_read_carries_reads_within_a_group_only() -> None:
    frame = pl.DataFrame(
        {
            "g": ["a", "a", "a", "b", "b", "c"],
            "t": [0, 10, 20, 5, 400_000_000, 0],
            "cache_read_tokens": [0, 0, 5, 0, 9, 7],
            "cache_write_tokens": [3, 3, 0, 3, 0, 3],
            "horizon": [300.0, 300.0, 300.0, 60.0, 60.0, 300.0],
        }
    )
    # a: both writes read at t=20; b: read 400 s later, past its 60 s horizon; c: the next row's read is another group
    assert writes_never_read(frame, ["g"], pl.col("horizon")).to_list() == [False, False, False, True, False, True]
    assert writes_never_read(frame, ["g"], None).to_list() == [False, False, False, False, False, True]


def test_replay_in_scope_batches_equals_one_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    texts, times, scopes = [], [], []
    for i in range(60):
        texts.append(f"system {i % 3}: " + "shared words " * (40 + 10 * (i % 3)) + f"turn {i}" * (i % 5))
        times.append(float(i * 37 % 500))
        scopes.append(i % 4)
    keys = chain_key_lists(pl.Series(texts), 32)
    split = split_key_lists(keys, min_texts=4)  # the stored form: shared head + tail
    assert split["head"].null_count() < 60
    whole_chains = pl.DataFrame({caching.KEYS_HEAD: pl.Series([None] * 60, dtype=pl.Binary), caching.KEYS: keys})
    chains = pl.DataFrame({caching.KEYS_HEAD: split["head"], caching.KEYS: split["tail"]})
    requests = pl.DataFrame(
        {
            "req": pl.Series(range(60), dtype=pl.UInt32),
            "scope": scopes,
            "t": [int(t * 1e6) for t in times],
            "_chain_row": pl.Series(range(60), dtype=pl.UInt32),
            "bytes": pl.Series(texts).str.len_bytes().cast(pl.Int64),
        }
    ).sort("t", "req")
    whole = caching._replay(requests, whole_chains, 32, [300, None]).sort("req")
    assert caching._replay(requests, chains, 32, [300, None]).sort("req").equals(whole)
    monkeypatch.setattr(caching, "_REPLAY_BATCH_BLOCKS", 50)
    batched = caching._replay(requests, chains, 32, [300, None]).sort("req")
    assert batched.equals(whole)
    assert whole.height > 30 and whole["hit_bytes_0"].max() > 0  # requests share prefixes, some hit
