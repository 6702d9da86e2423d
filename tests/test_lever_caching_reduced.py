"""prompt_caching on a frame the pipeline reduced (auditor.reduce with every lever's features) gives what it gives on
the full frame, and its features are what the simulation needs of the text."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import polars as pl

from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.caching import BYTES, KEYS, KEYS_HEAD, LEVER, MASKED_KEYS, SPAN
from auditor.levers.prefix import chain_keys, join_key_lists
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from tests.helpers import canonical
from tests.test_lever_caching import request, stable_prefix


def workload() -> list[dict[str, Any]]:
    rows = []
    for i in range(6):  # a timestamp in the first system line (LA102)
        rows.append(request(stable_prefix(12288, f"Current time: 2026-10-01T12:{i:02d}:00Z\n"), i, 60 * i))
    tools = ['{"name":"search","description":"Search"}', '{"name":"fetch","description":"Fetch"}', '{"name":"x"}']
    for i, order in enumerate(list(itertools.permutations(tools))[:4]):  # reordered tools (LA102, json-order)
        prefix = "[tools]\n[" + ",".join(order) + "]\n" + stable_prefix(12288)
        rows.append(request(prefix, 10 + i, 30 * i, feature="agent"))
    for i, t in enumerate([0, 60, 120, 1000, 1060]):  # a stable prefix, gaps across the 5m TTL (LA101)
        rows.append(request(stable_prefix(12288), 20 + i, t, feature="faq"))
    rows.append(request(stable_prefix(12288), 30, 5, feature="faq", prompt_text=None))  # LA801
    return rows


def as_dicts(result: LeverResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]:
    findings = [dataclasses.asdict(f) for f in result.findings]
    gaps = [dataclasses.asdict(g) for g in result.gaps]
    return findings, gaps, result.counterfactual.sort("row_id").rows()


def test_reduced_frame_gives_the_full_frame_result() -> None:
    full = canonical(workload())
    reduced = reduce_chunk(full, [(lever, {}) for lever in available_levers()])
    assert "prompt_text" not in reduced.columns
    ctx = LeverContext(prices=PriceBook.load())
    on_full, on_reduced = LEVER.analyze(full, ctx), LEVER.analyze(reduced, ctx)
    assert as_dicts(on_reduced) == as_dicts(on_full)
    codes = sorted(f.code for f in on_reduced.findings)
    assert codes.count("LA102") == 2 and "LA101" in codes and "LA801" in codes
    kinds = {f.evidence["volatile_kind"] for f in on_reduced.findings if f.code == "LA102"}
    assert kinds == {"timestamp", "json-order"}


def test_features_hold_the_chain_keys_and_only_masked_rows_carry_masked_data() -> None:
    frame = canonical(workload())
    features = LEVER.features(frame, {"block_bytes": 512})
    assert features.height == frame.height
    text = frame["prompt_text"]
    expected = chain_keys(text, 512).group_by("text_idx", maintain_order=True).agg("key")
    lists = join_key_lists(features[KEYS_HEAD], features[KEYS])
    for row, keys in zip(expected["text_idx"], expected["key"], strict=True):
        assert lists[row].to_list() == keys.to_list()
    assert features[BYTES].to_list() == text.str.len_bytes().to_list()
    assert features[KEYS].null_count() == 1 == text.null_count()
    # masked keys and span evidence only where masking changes the prompt: the 6 timestamped + 4 reordered-tools rows
    changed = features.filter(pl.col(MASKED_KEYS).is_not_null())
    assert changed.height == 10
    assert changed[SPAN].null_count() == 0
    assert features.filter(pl.col(MASKED_KEYS).is_null())[SPAN].null_count() == frame.height - 10
