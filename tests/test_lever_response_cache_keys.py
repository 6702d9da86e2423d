"""response_cache's key features (issue 7, memory): the keys are u64 hashes and flags taken at ingest, the lever
loads only those and `latency_ms`, and fetches the real values of the few rows a finding shows.

Prices as in test_lever_response_cache.py: a FAQ request (gpt-4o-mini, 1,000 in / 100 out) costs $0.00021.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from auditor.levers.base import LeverContext
from auditor.levers.response_cache import (
    DETERMINISTIC,
    ENTRY_HASH,
    LEVER,
    NEAR_HASH,
    PROMPT_HASH,
    QUESTION_KEY,
    TOOL_CALL,
    ResponseCacheOptions,
    detect,
)
from auditor.pipeline import analyze_lever, lever_columns, row_fetcher
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from tests.helpers import canonical
from tests.test_lever_response_cache import FAQ, HOUR, ask


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def test_entry_hash_is_equal_exactly_when_the_key_is() -> None:
    rows = [
        ask(0),
        ask(1),  # same key (another user and time)
        ask(2, max_tokens=800),
        ask(3, temperature=0.9),
        ask(4, response_format="json_object"),
        ask(5, tools_count=2),
        ask(6, prompt_hash="hash:other"),
        ask(7, prompt_hash=None),
        ask(8, temperature=None),
        ask(9, temperature=None, user="u2"),  # null = null, as the values are compared
    ]
    feats = LEVER.features(canonical(rows), {})
    keys = feats[ENTRY_HASH].to_list()
    assert keys[0] == keys[1] and keys[8] == keys[9]
    assert keys[7] is None
    distinct = [k for i, k in enumerate(keys) if i not in (1, 7, 9)]
    assert len(set(distinct)) == len(distinct) == 7
    # the prompt alone: equal for the four parameter changes, different for another prompt, null without one
    prompts = feats[PROMPT_HASH].to_list()
    assert len({prompts[i] for i in (0, 1, 2, 3, 4, 5, 8)}) == 1
    assert prompts[6] != prompts[0] and prompts[7] is None


def test_negative_zero_temperature_is_the_same_entry_and_deterministic() -> None:
    feats = LEVER.features(canonical([ask(0, temperature=0.0), ask(1, temperature=-0.0), ask(2)]), {})
    assert feats[ENTRY_HASH][0] == feats[ENTRY_HASH][1] != feats[ENTRY_HASH][2]
    assert feats[DETERMINISTIC].to_list() == [True, True, False]


def test_flags_and_near_hash() -> None:
    rows = [
        ask(0, finish_reason="tool_calls"),
        ask(1, finish_reason="stop", temperature=None),
        ask(2, question="how do i reset my password"),  # normalises to the question of rows 0 and 1
        ask(3, system_hash="sys-other"),
        ask(4, messages_count=1),
        ask(5, messages_count=5),  # multi-turn: no question key, no near hash
    ]
    feats = LEVER.features(canonical(rows), {})
    assert feats[TOOL_CALL].to_list() == [True, False, False, False, False, False]
    assert feats[DETERMINISTIC].to_list() == [False] * 6  # 0.2 or null, never 0
    near = feats[NEAR_HASH].to_list()
    assert near[0] == near[1] == near[2]
    assert len({near[0], near[3], near[4]}) == 3
    assert near[5] is None and feats[QUESTION_KEY][5] is None


def test_detect_lists_only_repeated_keys(prices: PriceBook) -> None:
    # keys: A at 0 h, 1 h, 2 h; B once; A at 0.9 temperature once. Only A's three rows can hold a hit.
    rows = [ask(0), ask(HOUR, question="Other question?"), ask(HOUR + 1, temperature=0.9), ask(2 * HOUR), ask(3 * HOUR)]
    frame = reduce_chunk(canonical(rows), [(LEVER, {})])
    out = detect(frame, ResponseCacheOptions())
    ids = frame["row_id"].gather(out["_i"]).to_list()
    a_rows = frame.filter((pl.col("last_user_text") == "How do I reset my password?") & (pl.col("temperature") == 0.2))
    assert ids == a_rows["row_id"].to_list() and len(ids) == 3
    assert out["_entry"].n_unique() == 1
    assert out["_hit"].to_list() == [False, True, True]


def _evidence(result: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(f.code, f.evidence) for f in result.findings]


def test_the_pipeline_projection_gives_the_full_frame_results(prices: PriceBook) -> None:
    # The pipeline hands the lever BASE_COLUMNS, `reads` and its features only, and fetches other columns of the
    # rows shown (users, keys, heads) through ctx.rows: the same findings as on the whole frame.
    rows = [
        ask(0, user="a"),
        ask(HOUR, user="b"),
        ask(2 * HOUR, user="b"),
        ask(3 * HOUR, question="how do i reset my password", user="c"),
        ask(4 * HOUR, feature="billing_bot", question="Where is my invoice?", temperature=0.0, user="d"),
        ask(5 * HOUR, feature="billing_bot", question="Where is my invoice?", temperature=0.0, user=None),
    ]
    full = canonical(rows)
    whole = LEVER.analyze(full, LeverContext(prices=prices))
    reduced = reduce_chunk(full, [(LEVER, {})])
    assert "user" not in lever_columns(LEVER, reduced.columns)
    ctx = LeverContext(prices=prices)
    projected = analyze_lever(LEVER, ctx, reduced)
    assert _evidence(projected) == _evidence(whole)
    assert projected.counterfactual.equals(whole.counterfactual)
    # by hand: billing_bot 1 hit of 2 (the second invoice question, user null); help_center_bot 2 hits of 4
    # (users b and b: one user), and LA602 for the lower-cased variant 1 h after the last exact one
    (billing, help_center), (near,) = whole.findings[:2], whole.findings[2:]
    assert (billing.scope, billing.affected_requests) == ({"feature": "billing_bot"}, 1)
    assert billing.evidence["users_served_from_cache"] == 0 and billing.evidence["safe_hits"] == 1
    assert help_center.evidence["cacheable_requests"] == 4 and help_center.affected_requests == 2
    assert help_center.evidence["users_served_from_cache"] == 1
    assert help_center.savings_usd == pytest.approx(2 * float(FAQ))
    assert help_center.evidence["top_repeats"][0]["requests"] == 3
    assert (near.code, near.affected_requests, near.evidence["examples"][0]["prompt_variants"]) == ("LA602", 1, 2)
    # row_fetcher on the reduced frame is what ctx.rows is in memory mode: the same again
    fetched = LEVER.analyze(
        reduced.select(lever_columns(LEVER, reduced.columns)), LeverContext(prices=prices, rows=row_fetcher(reduced))
    )
    assert _evidence(fetched) == _evidence(whole)
