"""Chain-key lists stored as a shared head and a per-request tail (prefix.split_key_lists): the keys come back
exactly, the head is stored once, and the prompt_caching lever gives the same results as with whole lists."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import polars as pl
import pytest

from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.caching import KEYS, KEYS_HEAD, LEVER, MASKED_KEYS
from auditor.levers.prefix import (
    chain_key_lists,
    exploded_keys,
    join_key_lists,
    key_count,
    last_key,
    pack_keys,
    split_key_lists,
    unpack_keys,
)
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from tests.helpers import canonical
from tests.test_lever_caching import request, stable_prefix

U64 = pl.List(pl.UInt64)
LISTS = [[1, 2, 3], [1, 2, 4], [1, 2], None, [], [9], [1, 2, 3, 2**64 - 1]]


def test_split_by_hand() -> None:
    # min 2 lists: keys 1 and 2 are held by 4 lists, 3 by 2, 4 / 9 / 2^64-1 by one. Leading held runs: [1,2,3],
    # [1,2], [1,2], -, -, -, [1,2,3].
    split = split_key_lists(pl.Series(LISTS, dtype=U64), min_texts=2)
    heads = [None if h is None else unpack_keys(pl.Series([h])).to_list()[0] for h in split["head"].to_list()]
    assert heads == [[1, 2, 3], [1, 2], [1, 2], None, None, None, [1, 2, 3]]
    assert split["tail"].to_list() == [[], [4], [], None, [], [9], [2**64 - 1]]
    assert join_key_lists(split["head"], split["tail"]).to_list() == LISTS
    counted = split.select(last_key(pl.col("head"), pl.col("tail")), key_count(pl.col("head"), pl.col("tail")))
    assert counted.rows() == [(3, 3), (4, 3), (2, 2), (None, 0), (None, 0), (9, 1), (2**64 - 1, 4)]
    # nothing held by 5 lists: every list stays whole in the tail
    whole = split_key_lists(pl.Series(LISTS, dtype=U64), min_texts=5)
    assert whole["head"].null_count() == len(LISTS) and whole["tail"].to_list() == LISTS


def test_exploded_keys_equal_exploding_the_joined_lists() -> None:
    split = split_key_lists(pl.Series(LISTS, dtype=U64), min_texts=2)
    blocks = exploded_keys(split["head"], split["tail"])
    expected = [(row, block, key) for row, keys in enumerate(LISTS) for block, key in enumerate(keys or [])]
    assert blocks.rows() == expected


def test_pack_round_trip_and_nulls_rejected() -> None:
    lists = pl.Series([[5], [], [1, 2**64 - 1]], dtype=U64)
    packed = pack_keys(lists.slice(1, 2))  # a sliced list array: offsets do not start at 0
    assert packed.bin.size().to_list() == [0, 16]
    assert unpack_keys(packed).to_list() == [[], [1, 2**64 - 1]]
    with pytest.raises(ValueError, match="without nulls"):
        pack_keys(pl.Series([[1], None], dtype=U64))
    with pytest.raises(ValueError, match="without nulls"):
        pack_keys(pl.Series([[1, None]], dtype=U64))


def test_shared_head_is_stored_once() -> None:
    # 400 lists sharing 100 leading keys: the head costs a 16-byte view per row plus one 800-byte copy
    lists = pl.Series([[*range(100), 1000 + i] for i in range(400)], dtype=U64)
    split = split_key_lists(lists)
    assert split["tail"].to_list() == [[1000 + i] for i in range(400)]
    whole = len(pickle.dumps(pl.DataFrame({"k": lists})))
    compact = len(pickle.dumps(split))
    assert whole > 400 * 100 * 8
    assert compact < 400 * (16 + 16) + 10_000


def workload() -> list[dict[str, Any]]:
    rows = []
    for i in range(10):  # ten requests share a 12 KB system prompt (a head of 47 blocks of 256 bytes)
        rows.append(request(stable_prefix(12288), i, 30 * i, feature="faq"))
    for i in range(9):  # nine share one with a timestamp in its first block: only their masked keys are shared
        rows.append(request(stable_prefix(12288, f"Now: 2026-10-01T12:{i:02d}:00Z\n"), 20 + i, 45 * i))
    rows.append(request(stable_prefix(4096), 40, 10, feature="solo"))
    return rows


def as_dicts(result: LeverResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]:
    findings = [dataclasses.asdict(f) for f in result.findings]
    return findings, [dataclasses.asdict(g) for g in result.gaps], result.counterfactual.sort("row_id").rows()


def test_lever_on_split_keys_equals_whole_lists() -> None:
    full = canonical(workload())
    reduced = reduce_chunk(full, [(LEVER, {})])
    # the timestamp sits in the first block: those 9 prompts share no leading key (the "solo" one shares 15 blocks)
    null = pl.col(KEYS_HEAD).is_null()
    no_head = reduced.group_by("feature").agg(null.all().alias("all"), null.any().alias("any"))
    assert sorted(no_head.rows()) == [("chat", True, True), ("faq", False, False), ("solo", False, False)]
    assert reduced.filter(pl.col(MASKED_KEYS).is_not_null())["feature"].to_list() == ["chat"] * 9
    whole_keys = chain_key_lists(full["prompt_text"])
    assert join_key_lists(reduced[KEYS_HEAD], reduced[KEYS]).to_list() == whole_keys.to_list()
    # the frame as the lever stored it before the split: whole lists, no head column (an independent route)
    unsplit = reduced.drop(KEYS_HEAD).with_columns(whole_keys.alias(KEYS))
    ctx = LeverContext(prices=PriceBook.load())
    on_full, on_split, on_whole = (LEVER.analyze(f, ctx) for f in (full, reduced, unsplit))
    assert as_dicts(on_split) == as_dicts(on_whole) == as_dicts(on_full)
    codes = sorted(f.code for f in on_split.findings)
    assert "LA101" in codes and "LA102" in codes
