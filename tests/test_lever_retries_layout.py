"""retries lever: results do not depend on the frame's row order or on which columns the frame holds.

detect sorts positions, not rows, and takes a shortcut when the frame is already in time order (the pipeline's
sorted frame); request ids are fetched for the flagged rows (fetch_rows), not read for every request; the call
scope is compared as (kind, id) instead of a "session <id>" / "user <name>" string per request.

Prices (pricing/openai.yaml), USD per million tokens, input / output: gpt-4o-mini 0.15 / 0.60, gpt-4o 2.50 / 10.00.
A request below has 1,000 input and 100 output tokens: gpt-4o-mini $0.00021, gpt-4o $0.0035.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.retries import LEVER, RetryOptions, _in_time_order, _prepare, detect
from auditor.pipeline import row_fetcher
from auditor.prices import PriceBook
from auditor.reduce import ensure_reduced
from tests.helpers import at, canonical

MINI, GPT4O = 0.00021, 0.0035
TOOL = '{"name": "search", "arguments": {"q": "order 42"}}'


def call(prompt: str, t: float, session: str | None = "s", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "session_id": session,
        "request_id": f"req-{prompt}-{t:g}",
        "model": "gpt-4o-mini",
        "prompt_hash": prompt,
        "timestamp": at(t),
        "feature": "chat",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 1000.0,
    }
    return row | extra


FAILED: dict[str, Any] = {"input_tokens": None, "output_tokens": None, "latency_ms": 200.0}

# One call of each kind, plus look-alikes that are not repeats because their scopes differ.
ROWS = [
    # LA401: a 400 repeated; both attempts unbilled (no usage)
    *(call("a", t, status="error", error_type="invalid_request", http_status=400, **FAILED) for t in (0, 1)),
    # LA402: the same call 0.3 s later (the second is waste: $0.00021)
    call("b", 100),
    call("b", 100.3),
    # LA403: the same prompt to two models 1 s apart; gpt-4o-mini ends first (101 s < 102 s)
    call("c", 200),
    call("c", 201, model="gpt-4o"),
    # LA404: four identical tool calls in one run of gpt-4o; threshold 3 removes the 3rd and 4th (d2, d3)
    *(call(f"d{i}", 300 + 10 * i, model="gpt-4o", finish_reason="tool_calls", output_text=TOOL) for i in range(4)),
    # not repeats: session "x" vs user "x", user "" vs no session or user
    call("e", 500, session="x"),
    call("e", 500.2, session=None, user="x"),
    call("f", 600, session=None, user=""),
    call("f", 600.2, session=None),
]


@pytest.fixture(scope="module")
def ctx() -> LeverContext:
    return LeverContext(prices=PriceBook.load())


def reduced(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The frame detect reads: canonical rows with the lever's call-hash feature."""
    return ensure_reduced(canonical(rows), LEVER, {})


def dump(result: LeverResult) -> tuple[Any, ...]:
    return result.findings, result.gaps, result.counterfactual.sort("row_id").to_dicts()


def test_every_kind_with_hand_computed_waste(ctx: LeverContext) -> None:
    frame = canonical(ROWS)
    result = LEVER.analyze(frame, ctx)
    by_code = {f.code: f for f in result.findings}
    assert sorted(by_code) == ["LA401", "LA402", "LA403", "LA404"]
    assert by_code["LA401"].evidence["failed_attempts_removed"] == 2
    assert by_code["LA401"].evidence["retries_after_non_transient_errors"] == 1
    assert by_code["LA401"].savings_usd == 0.0
    assert by_code["LA402"].savings_usd == pytest.approx(MINI)
    assert by_code["LA402"].evidence["example_request_ids"] == ["req-b-100.3"]
    assert by_code["LA402"].evidence["worst_sessions"] == [{"scope": "session s", "extra_calls": 1, "waste_usd": MINI}]
    # expected keeps the first to finish (mini): gpt-4o removed; the range keeps the dearest / the cheapest
    assert by_code["LA403"].savings_usd == pytest.approx(GPT4O)
    assert by_code["LA403"].evidence["example_request_ids"] == ["req-c-201"]
    assert by_code["LA404"].savings_usd == pytest.approx(2 * GPT4O)
    assert by_code["LA404"].evidence["example_request_ids"] == ["req-d2-320", "req-d3-330"]
    # session "x" / user "x" and user "" / nobody are four scopes: no finding for prompts e and f, no gap
    rows = {r["row_id"]: r for r in frame.select("row_id", "prompt_hash").iter_rows(named=True)}
    touched = sorted(rows[i]["prompt_hash"] for i in result.counterfactual["row_id"])
    assert touched == ["a", "a", "b", "c", "c", "d2", "d3"]
    assert result.gaps == []
    # fan-out (expected, low, high): mini kept, gpt-4o kept (the dearest), mini kept (the cheapest)
    models = dict(frame.select("row_id", "model").iter_rows())
    fanout = {
        models[r["row_id"]]: (r["cost_after_usd"], r["cost_after_low_savings_usd"], r["cost_after_high_savings_usd"])
        for r in result.counterfactual.iter_rows(named=True)
        if rows[r["row_id"]]["prompt_hash"] == "c"
    }
    zero, mini, gpt4o = Decimal(0), Decimal("0.00021"), Decimal("0.0035")
    assert fanout == {"gpt-4o-mini": (mini, zero, mini), "gpt-4o": (zero, gpt4o, zero)}


def test_row_order_does_not_change_the_result(ctx: LeverContext) -> None:
    ordered = reduced(ROWS)
    shuffled = ordered.sample(fraction=1.0, shuffle=True, seed=3)
    assert _in_time_order(_prepare(ordered)) and not _in_time_order(_prepare(shuffled))
    assert dump(LEVER.analyze(shuffled, ctx)) == dump(LEVER.analyze(ordered, ctx))
    # detect lists the flagged rows in the frame's order, whatever it is
    flagged = detect(shuffled, RetryOptions())["row_id"].to_list()
    assert flagged == [i for i in shuffled["row_id"].to_list() if i in set(flagged)]


def test_request_ids_come_from_ctx_rows_when_the_frame_lacks_them(ctx: LeverContext) -> None:
    frame = canonical(ROWS)
    assert "request_id" not in LEVER.reads
    expected = LEVER.analyze(frame, ctx)
    fetched = LEVER.analyze(frame.drop("request_id"), LeverContext(prices=ctx.prices, rows=row_fetcher(frame)))
    assert dump(fetched) == dump(expected)
    ids = {f.code: f.evidence.get("example_request_ids") for f in fetched.findings}
    assert ids["LA402"] == ["req-b-100.3"] and ids["LA401"] == ["req-a-0", "req-a-1"]


def test_scope_string_only_for_flagged_rows() -> None:
    # user "" and a session named like a user stay distinct scopes in the findings' text too
    frame = reduced([call("g", 0, session=None, user=""), call("g", 0.3, session=None, user="")])
    flagged = detect(frame, RetryOptions())
    assert flagged.select("_scope", "_kind", "_anonymous").rows() == [("user ", "LA402", False)]
    assert detect(frame.filter(pl.col("prompt_hash") == "none"), RetryOptions()).height == 0
