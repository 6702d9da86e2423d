"""retries lever (LA4xx) on constructed logs; every expected number is computed by hand below.

Prices (pricing/openai.yaml, anthropic.yaml), USD per million tokens, input / output:
  gpt-4o-mini 0.15 / 0.60, gpt-4o 2.50 / 10.00, claude-haiku-4-5 1.00 / 5.00.
A "standard" request below has 1,000 input and 100 output tokens:
  gpt-4o-mini: 1000*0.15 + 100*0.60 = 210 micro-dollars = $0.00021
  gpt-4o:      1000*2.50 + 100*10   = 3500 -> $0.0035
  haiku-4-5:   1000*1.00 + 100*5    = 1500 -> $0.0015
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.retries import LEVER
from auditor.plan import build_plan
from auditor.prices import PriceBook
from tests.helpers import at, canonical

MINI, GPT4O, HAIKU = Decimal("0.00021"), Decimal("0.0035"), Decimal("0.0015")


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def call(session: str | None, prompt: str, t: float, model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "session_id": session,
        "model": model,
        "prompt_hash": prompt,
        "timestamp": at(t),
        "feature": "chat",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 1000.0,
    }
    row.update(extra)
    return row


def failed(session: str, prompt: str, t: float, error_type: str, http: int, **extra: Any) -> dict[str, Any]:
    """A failed attempt without usage: unbilled ($0)."""
    return call(
        session, prompt, t, status="error", error_type=error_type, http_status=http,
        input_tokens=None, output_tokens=None, latency_ms=200.0, **extra,
    )  # fmt: skip


def run(rows: list[dict[str, Any]], prices: PriceBook, **options: Any) -> tuple[pl.DataFrame, LeverResult]:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=prices, options=options))


def after(result: LeverResult) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    cf = result.counterfactual
    return {
        r["row_id"]: (r["cost_after_usd"], r["cost_after_low_savings_usd"], r["cost_after_high_savings_usd"])
        for r in cf.iter_rows(named=True)
    }


def by_code(result: LeverResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def row_of(frame: pl.DataFrame, **match: Any) -> int:
    hits = frame.filter(pl.all_horizontal(pl.col(k) == v for k, v in match.items()))
    assert hits.height == 1, match
    return int(hits["row_id"][0])


def test_registered_in_plan_order() -> None:
    ids = [lever.id for lever in available_levers()]
    assert "retries" in ids and "output_caps" in ids
    assert ids.index("retries") < ids.index("output_caps")


def test_retry_after_429_is_legitimate_and_free(prices: PriceBook) -> None:
    # 429 (unbilled) then the same call 2 s later succeeds: a legitimate retry, $0 waste.
    frame, result = run([failed("s1", "p1", 0, "rate_limit", 429), call("s1", "p1", 2)], prices)
    (finding,) = by_code(result, "LA401")
    assert finding.affected_requests == 1
    assert finding.evidence["retries_after_transient_errors"] == 1
    assert finding.evidence["retries_after_non_transient_errors"] == 0
    assert finding.evidence["billed_failed_attempts"] == 0
    assert finding.savings_usd == 0.0
    assert finding.severity == "info"
    # the failed attempt is in the counterfactual at $0 -> $0; the successful retry is untouched
    ok_row = row_of(frame, status="ok")
    assert ok_row not in after(result)
    plan, _ = build_plan(frame, [result])
    assert plan.savings_usd == 0.0


def test_retry_after_400_repeats_the_failure(prices: PriceBook) -> None:
    # 400 then the same request again 1 s later, 400 again: a retry of a non-transient error.
    _, result = run(
        [failed("s2", "p2", 0, "invalid_request", 400), failed("s2", "p2", 1, "invalid_request", 400)], prices
    )
    (finding,) = by_code(result, "LA401")
    assert finding.evidence["retries_after_non_transient_errors"] == 1
    assert finding.evidence["retries_after_transient_errors"] == 0
    assert finding.evidence["failed_attempts_removed"] == 2  # both attempts produced nothing
    assert finding.evidence["failed_attempts_by_error"] == {"invalid_request": 2}
    assert finding.severity == "low"  # a bug to fix even though both 400s were unbilled
    assert finding.savings_usd == 0.0


def test_billed_timeout_before_retry_is_waste(prices: PriceBook) -> None:
    # The client timed out after the model generated (usage logged: billed $0.00021), then retried.
    timeout = call("s3", "p3", 0, status="error", error_type="timeout", http_status=408, latency_ms=30_000.0)
    frame, result = run([timeout, call("s3", "p3", 31)], prices)
    (finding,) = by_code(result, "LA401")
    assert finding.savings_usd == pytest.approx(float(MINI))
    assert finding.evidence["billed_failed_attempts"] == 1
    assert after(result) == {row_of(frame, status="error"): (Decimal(0), Decimal(0), Decimal(0))}


def test_double_submit_300ms_apart(prices: PriceBook) -> None:
    frame, result = run([call("s4", "p4", 0, feature="form"), call("s4", "p4", 0.3, feature="form")], prices)
    (finding,) = by_code(result, "LA402")
    second = row_of(frame, timestamp=at(0.3))
    assert after(result) == {second: (Decimal(0), Decimal(0), Decimal(0))}  # the first call is kept
    assert finding.savings_usd == pytest.approx(float(MINI))
    assert finding.affected_requests == 1
    assert finding.scope == {"feature": "form"}
    assert finding.evidence["worst_sessions"] == [
        {"scope": "session s4", "extra_calls": 1, "waste_usd": pytest.approx(float(MINI))}
    ]
    plan, _ = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(float(MINI))  # 0.00042 -> 0.00021


def test_repeat_while_first_still_running_is_a_duplicate(prices: PriceBook) -> None:
    # 25 s apart (outside the 10 s window) but the first call ran for 40 s: the client retried in flight.
    _, result = run([call("s5", "p5", 0, latency_ms=40_000.0), call("s5", "p5", 25)], prices)
    assert len(by_code(result, "LA402")) == 1
    # the same pair with a 2 s first call is a deliberate repeat (response-cache territory), not a duplicate
    _, result = run([call("s5", "p5", 0, latency_ms=2_000.0), call("s5", "p5", 25)], prices)
    assert result.findings == []


def test_fan_out_to_three_models(prices: PriceBook) -> None:
    rows = [
        call("s6", "p6", 0.0, model="gpt-4o", latency_ms=900.0, feature="qa"),  # ends 0.9 s
        call("s6", "p6", 0.1, model="gpt-4o-mini", latency_ms=500.0, feature="qa"),  # ends 0.6 s: first done
        call("s6", "p6", 0.2, model="claude-haiku-4-5", latency_ms=700.0, feature="qa"),  # ends 0.9 s
    ]
    frame, result = run(rows, prices)
    (finding,) = by_code(result, "LA403")
    # expected keeps gpt-4o-mini (finished first): waste = 0.0035 + 0.0015 = 0.005
    assert finding.savings_usd == pytest.approx(0.005)
    assert finding.affected_requests == 2
    mini, big, haiku = (row_of(frame, model=m) for m in ("gpt-4o-mini", "gpt-4o", "claude-haiku-4-5"))
    assert after(result) == {
        # (expected, pessimistic: keep the dearest = gpt-4o, optimistic: keep the cheapest = gpt-4o-mini)
        mini: (MINI, Decimal(0), MINI),
        big: (Decimal(0), GPT4O, Decimal(0)),
        haiku: (Decimal(0), Decimal(0), Decimal(0)),
    }
    plan, summaries = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.005)
    assert summaries[0].savings_low_usd == pytest.approx(float(MINI + HAIKU))  # 0.00171
    assert summaries[0].savings_high_usd == pytest.approx(0.005)


def test_fallback_after_error_is_not_fan_out(prices: PriceBook) -> None:
    rows = [failed("s7", "p7", 0, "overloaded", 529), call("s7", "p7", 0.5, model="claude-haiku-4-5")]
    _, result = run(rows, prices)
    assert by_code(result, "LA403") == [] and by_code(result, "LA402") == []


def test_identical_prompts_a_day_apart_in_different_sessions_are_not_retries(prices: PriceBook) -> None:
    _, result = run([call("a", "p8", 0), call("b", "p8", 86_400)], prices)
    assert result.findings == [] and result.counterfactual.height == 0
    # nor in the same session a day apart, nor in different sessions 300 ms apart
    _, result = run([call("a", "p8", 0), call("a", "p8", 86_400)], prices)
    assert result.findings == []
    _, result = run([call("a", "p8", 0), call("b", "p8", 0.3)], prices)
    assert result.findings == []


def test_agent_loop_repeating_the_same_tool_call(prices: PriceBook) -> None:
    # Five steps of one run end in the identical tool call; prompts grow (different hashes). Input 1000+i.
    tool = '{"name": "search", "arguments": {"q": "order 42"}}'
    rows = [
        call("run1", f"step{i}", 10 * i, model="gpt-4o", feature="agent", input_tokens=1000 + i,
             finish_reason="tool_calls", output_text=tool)
        for i in range(5)
    ]  # fmt: skip
    frame, result = run(rows, prices)
    (finding,) = by_code(result, "LA404")
    # threshold 3: steps 0 and 1 kept, steps 2, 3, 4 removed: inputs 1002, 1003, 1004 at $2.50/M, 100 out at $10/M
    # (1002 + 1003 + 1004) * 2.5 + 3 * 100 * 10 = 7522.5 + 3000 = 10522.5 micro-dollars
    assert finding.savings_usd == pytest.approx(0.0105225)
    assert finding.affected_requests == 3
    assert set(after(result)) == {row_of(frame, prompt_hash=f"step{i}") for i in (2, 3, 4)}
    # a different tool call in between breaks the run
    rows[2]["output_text"] = '{"name": "lookup", "arguments": {}}'
    _, result = run(rows, prices)
    assert by_code(result, "LA404") == []


def test_requests_without_session_or_user_are_a_gap_not_waste(prices: PriceBook) -> None:
    _, result = run([call(None, "p9", 0), call(None, "p9", 0.3)], prices)
    assert result.findings == [] and result.counterfactual.height == 0
    (gap,) = result.gaps
    assert gap.missing_fields == ["session_id", "user"]
    assert gap.requests == 1 and gap.cost_at_stake_usd == pytest.approx(float(MINI))
    # the user is a valid scope when there is no session
    _, result = run([call(None, "p9", 0, user="u1"), call(None, "p9", 0.3, user="u1")], prices)
    assert len(by_code(result, "LA402")) == 1
    # and the check can be turned off
    _, result = run([call(None, "p9", 0), call(None, "p9", 0.3)], prices, require_identity=False)
    assert len(by_code(result, "LA402")) == 1


def test_windows_come_from_options(prices: PriceBook) -> None:
    rows = [call("s", "p", 0, latency_ms=100.0), call("s", "p", 8)]
    assert len(by_code(run(rows, prices)[1], "LA402")) == 1  # 8 s <= 10 s default
    assert by_code(run(rows, prices, duplicate_window_seconds=5)[1], "LA402") == []


@pytest.mark.parametrize(
    "options",
    [{"retry_window": 5}, {"duplicate_window_seconds": -1}, {"loop_threshold": 1}, {"require_identity": "yes"}],
)
def test_bad_options_are_config_errors(prices: PriceBook, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"levers\.retries"):
        run([call("s", "p", 0)], prices, **options)
