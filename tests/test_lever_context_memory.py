"""context_trimming at volume: conversations decided on a few columns per row, request ids and prompt sizes fetched
for the rows a finding shows, repricing in bounded slices. Expected values by hand (see test_lever_context)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest

import auditor.levers.context as context
from auditor.levers.base import LeverContext
from auditor.levers.context import LEVER, ContextOptions, conversations
from auditor.prices import PriceBook
from auditor.reduce import ensure_reduced
from tests.helpers import at, canonical
from tests.test_lever_context import cf, full_history, turn


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def flat_session(session: str, turns: int, t0: float) -> list[dict[str, Any]]:
    """Every turn sends the same 1,000 tokens: long, but nothing resent."""
    return [turn(session, n, 1000, t0 + 60 * n) for n in range(1, turns + 1)]


def test_conversations_keep_only_the_resent_ones_whole(prices: PriceBook) -> None:
    rows = full_history("s1") + flat_session("s2", 9, 5.0) + full_history("s3", turns=3, t0=7.0)
    frame = ensure_reduced(canonical(rows), LEVER, {})
    convo = conversations(context._candidates(frame), ContextOptions())
    # s1: 12 append-only turns -> resent; s2: 9 turns, none growing -> long but flat; s3: 3 turns -> too short
    assert convo.resent["session_id"].to_list() == ["s1"] * 12
    assert convo.resent["_turn"].to_list() == list(range(1, 13))
    assert convo.flat == {"chat": 1}
    # turns 8..12 lose 150, 300, 450, 600, 750 tokens with the 6-turn window
    assert convo.resent["_removed_expected"].to_list() == [0] * 7 + [150, 300, 450, 600, 750]


def test_rows_in_any_order_give_the_same_result(prices: PriceBook) -> None:
    rows = full_history("s1") + full_history("s2", t0=30.0) + flat_session("s3", 9, 10.0)
    frame = canonical(rows)
    ctx = LeverContext(prices=prices)
    ordered = LEVER.analyze(frame, ctx)
    shuffled = LEVER.analyze(frame.sample(fraction=1.0, shuffle=True, seed=3), ctx)
    assert cf(ordered) == cf(shuffled)
    (finding,) = ordered.findings
    # two sessions of 2,250 removed tokens each at $1/M; s3 is the long session already trimmed
    assert finding.savings_usd == pytest.approx(0.0045)
    assert finding.evidence["long_sessions_already_trimmed"] == 1
    assert [f.evidence for f in shuffled.findings] == [finding.evidence]


def test_request_ids_and_prompt_sizes_are_fetched_for_the_rows_shown(prices: PriceBook) -> None:
    paragraph = ("Always answer in the customer's language and cite the policy section you rely on. " * 8).strip()
    prompt = f"[system]\n{paragraph}\n[user]\n{paragraph}\nWhat is the refund window?\n"
    dup = {"model": "gpt-4o-mini", "feature": "faq", "prompt_text": prompt, "output_tokens": 10,
           "input_tokens": 2 * len(prompt), "request_id": "dup-1", "timestamp": at(100)}  # fmt: skip
    rag = [
        {"model": "gpt-4o-mini", "feature": "rag", "input_tokens": 20_000 if i % 10 == 9 else 2_000,
         "output_tokens": 50, "timestamp": at(i), "request_id": f"r{i:02d}", "last_user_text": "context " * 30}
        for i in range(50)
    ]  # fmt: skip
    full = ensure_reduced(canonical([*rag, dup]), LEVER, {})
    asked: list[tuple[list[int], tuple[str, ...]]] = []

    def rows(ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
        asked.append((ids.to_list(), tuple(columns)))
        return ids.to_frame().join(full.select("row_id", *columns), on="row_id", how="left", maintain_order="left")

    # the frame the pipeline hands the lever: no request_id, prompt_chars or text heads
    frame = full.drop("request_id", "prompt_chars", "last_user_text", "system_text", "output_text")
    result = LEVER.analyze(frame, LeverContext(prices=prices, rows=rows))
    by_code = {f.code: f for f in result.findings}
    assert by_code["LA702"].evidence["example_request_ids"] == ["r09", "r19", "r29"]
    assert by_code["LA703"].evidence["example_request_ids"] == ["dup-1"]
    assert by_code["LA703"].evidence["duplicated_tokens_estimated"] == 2 * len(paragraph)
    ids = dict(zip(full["request_id"], full["row_id"], strict=True))
    big = sorted(ids[f"r{i:02d}"] for i in (9, 19, 29, 39, 49))
    assert asked == [
        ([ids["dup-1"]], ("prompt_chars", "request_id")),
        (big, ("request_id",)),
        ([ids["r09"]], ("last_user_text",)),  # the largest request's excerpt (the first of the ties)
    ]


def test_repricing_in_slices_gives_the_hand_computed_costs(prices: PriceBook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(context, "_PRICE_ROWS", 3)
    result = LEVER.analyze(canonical(full_history()), LeverContext(prices=prices))
    (finding,) = result.findings
    # K = 6: 2,250 tokens at $1/M; K = 10: 150 tokens; K = 4: 4,200 tokens
    assert finding.savings_usd == pytest.approx(0.00225)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.00015)
    assert finding.evidence["savings_high_usd"] == pytest.approx(0.0042)
    # turn 12 (row 11) loses 750 tokens ($0.00075) expected, 150 low, 1,050 high (input_8 - input_1)
    before = (1000 + 150 * 11) * 1e-6 + 100 * 5e-6
    expected, low, high = cf(result)[11]
    assert float(expected) == pytest.approx(before - 0.00075)
    assert float(low) == pytest.approx(before - 0.00015)
    assert float(high) == pytest.approx(before - 0.00105)
