"""response_cache lever (LA6xx) on constructed logs; every expected number is computed by hand below.

Prices (pricing/openai.yaml): gpt-4o-mini input 0.15, output 0.60 USD per million tokens.
A FAQ request has 1,000 input and 100 output tokens: 1000*0.15 + 100*0.60 = 150 + 60 = 210 micro-dollars
= $0.00021. An hour is 3,600 s; the default TTL is 24 h = 86,400 s.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.response_cache import LEVER
from auditor.levers.retries import LEVER as RETRIES
from auditor.plan import build_plan
from auditor.prices import PriceBook
from tests.helpers import at, canonical

FAQ = Decimal("0.00021")
HOUR = 3600.0
ZERO = Decimal(0)


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def ask(t: float, question: str = "How do I reset my password?", user: str = "u1", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "feature": "help_center_bot",
        "model": "gpt-4o-mini",
        "timestamp": at(t),
        "user": user,
        "system_hash": "sys-faq",
        "last_user_text": question,
        "prompt_hash": f"hash:{question}",
        "messages_count": 2,
        "temperature": 0.2,
        "max_tokens": 400,
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 800.0,
        "output_text": "Open Settings > Security and choose Reset password.",
    }
    row.update(extra)
    return row


def run(rows: list[dict[str, Any]], prices: PriceBook, **options: Any) -> tuple[pl.DataFrame, LeverResult]:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=prices, options=options))


def after(result: LeverResult) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    return {
        r["row_id"]: (r["cost_after_usd"], r["cost_after_low_savings_usd"], r["cost_after_high_savings_usd"])
        for r in result.counterfactual.iter_rows(named=True)
    }


def by_code(result: LeverResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def test_registered_second_in_plan_order() -> None:
    assert [lever.id for lever in available_levers()][:2] == ["retries", "response_cache"]


def test_three_identical_questions_within_ttl_are_two_hits(prices: PriceBook) -> None:
    # Three users ask the same FAQ at 0 h, 1 h and 5 h: the first is answered by the model, the next two by the cache.
    frame, result = run([ask(0, user="a"), ask(HOUR, user="b"), ask(5 * HOUR, user="c")], prices)
    (finding,) = result.findings
    assert finding.code == "LA601"
    assert finding.affected_requests == 2
    # savings = 2 hits * $0.00021 = $0.00042 (same answer each time, so the pessimistic case agrees)
    assert finding.savings_usd == pytest.approx(0.00042)
    ev = finding.evidence
    assert (ev["cacheable_requests"], ev["cache_hits"], ev["hit_rate"]) == (3, 2, pytest.approx(2 / 3, abs=1e-4))
    assert ev["savings_low_usd"] == pytest.approx(0.00042)
    assert ev["users_served_from_cache"] == 2
    assert ev["top_repeats"] == [
        {
            "question": "How do I reset my password?",
            "model": "gpt-4o-mini",
            "requests": 3,
            "cache_hits": 2,
            "savings_usd": pytest.approx(0.00042),
        }
    ]
    first = int(frame.filter(pl.col("user") == "a")["row_id"][0])
    assert first not in after(result)
    assert set(after(result).values()) == {(ZERO, ZERO, ZERO)}
    plan, (summary,) = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.00042)  # $0.00063 -> $0.00021
    assert summary.confidence == "measured"


def test_same_question_outside_the_ttl_is_no_hit(prices: PriceBook) -> None:
    rows = [ask(0), ask(25 * HOUR)]  # 25 h apart, TTL 24 h
    _, result = run(rows, prices)
    assert result.findings == []
    _, result = run(rows, prices, ttl_hours=48)
    assert by_code(result, "LA601")[0].savings_usd == pytest.approx(float(FAQ))


def test_ttl_counts_from_the_most_recent_identical_request(prices: PriceBook) -> None:
    # 0 h, 20 h, 40 h: each within 24 h of the previous one -> 2 hits although 40 h > TTL after the first.
    _, result = run([ask(0), ask(20 * HOUR), ask(40 * HOUR)], prices)
    assert result.findings[0].affected_requests == 2


def test_sampled_answers_count_only_in_the_optimistic_cases(prices: PriceBook) -> None:
    # temperature 0.7 and a different answer each time: expected/high count the hit, the pessimistic case does not
    rows = [ask(0, temperature=0.7, output_text="Answer A"), ask(HOUR, temperature=0.7, output_text="Answer B")]
    frame, result = run(rows, prices)
    (finding,) = result.findings
    assert finding.savings_usd == pytest.approx(float(FAQ))
    assert finding.evidence["savings_low_usd"] == 0.0
    assert finding.evidence["safe_hits"] == 0
    second = int(frame["row_id"][1])
    assert after(result) == {second: (ZERO, FAQ, ZERO)}
    # at temperature 0 the request is deterministic: a safe hit even though the logged answers differ
    rows = [ask(0, temperature=0.0, output_text="Answer A"), ask(HOUR, temperature=0.0, output_text="Answer B")]
    _, result = run(rows, prices)
    assert result.findings[0].evidence["savings_low_usd"] == pytest.approx(float(FAQ))


def test_different_output_parameters_are_different_entries(prices: PriceBook) -> None:
    for change in ({"max_tokens": 800}, {"temperature": 0.9}, {"response_format": "json_object"}, {"model": "gpt-4o"}):
        _, result = run([ask(0), ask(HOUR, **change)], prices)
        assert by_code(result, "LA601") == [], change


def test_errors_tool_calls_and_in_flight_copies_are_not_served(prices: PriceBook) -> None:
    # an error has no answer to store: the success after it is a miss
    error = ask(0, status="error", error_type="server_error", http_status=500, input_tokens=None, output_tokens=None)
    _, result = run([error, ask(HOUR)], prices)
    assert result.findings == []
    # a tool call acts on state the cache cannot see: neither stored nor served
    _, result = run([ask(0, finish_reason="tool_calls"), ask(HOUR, finish_reason="tool_calls")], prices)
    assert result.findings == []
    # a copy sent 0.3 s after the first, which ran 0.8 s: nothing stored yet (a duplicate for the retries lever)
    _, result = run([ask(0), ask(0.3)], prices)
    assert result.findings == []


def test_multi_turn_requests_key_on_the_whole_conversation(prices: PriceBook) -> None:
    # the same last question after different histories: different prompt fingerprints, no hit and no LA602
    rows = [ask(0, prompt_hash="conv-1", messages_count=5), ask(HOUR, prompt_hash="conv-2", messages_count=5)]
    _, result = run(rows, prices)
    assert result.findings == []


def test_near_duplicates_are_reported_without_savings(prices: PriceBook) -> None:
    rows = [
        ask(0),
        ask(HOUR, question="how do i reset my password"),
        ask(2 * HOUR, question="HOW do I reset my password ?!"),
    ]
    frame, result = run(rows, prices)
    assert by_code(result, "LA601") == []  # three different fingerprints: no exact repeat
    (finding,) = by_code(result, "LA602")
    assert finding.savings_usd == 0.0
    assert finding.severity == "info"
    assert finding.affected_requests == 2  # the 2nd and 3rd normalise to the 1st: "how do i reset my password"
    assert finding.evidence["cost_usd"] == pytest.approx(2 * float(FAQ))
    assert finding.evidence["examples"][0]["prompt_variants"] == 3
    assert "embeddings" in finding.evidence["note"]
    assert result.counterfactual.height == 0
    plan, _ = build_plan(frame, [result])
    assert plan.savings_usd == 0.0
    # another system prompt is another assistant: not a near-duplicate
    _, result = run([ask(0), ask(HOUR, question="how do i reset my password", system_hash="sys-other")], prices)
    assert result.findings == []


def test_questions_are_masked_in_evidence(prices: PriceBook) -> None:
    question = "My login is jane.doe@example.com and the reset link never arrives"
    _, result = run([ask(0, question=question), ask(HOUR, question=question)], prices)
    shown = result.findings[0].evidence["top_repeats"][0]["question"]
    assert "jane.doe@example.com" not in shown and "[email]" in shown


def test_missing_prompt_fingerprint_is_a_gap(prices: PriceBook) -> None:
    rows = [ask(0, prompt_hash=None, last_user_text=None), ask(HOUR, prompt_hash=None, last_user_text=None)]
    _, result = run(rows, prices)
    assert result.findings == []
    (gap,) = result.gaps
    assert (gap.missing_fields, gap.requests) == (["prompt_hash"], 2)
    assert gap.cost_at_stake_usd == pytest.approx(2 * float(FAQ))


def test_duplicate_is_not_counted_twice_with_retries(prices: PriceBook) -> None:
    # Same session, same prompt 5 s apart, the first finished in 0.8 s: the retries lever removes the second
    # (LA402) and the response cache would also answer it; in the plan the $0.00021 is saved once.
    rows = [ask(0, session_id="s1"), ask(5, session_id="s1")]
    frame = canonical(rows)
    ctx = LeverContext(prices=prices)
    plan, summaries = build_plan(frame, [RETRIES.analyze(frame, ctx), LEVER.analyze(frame, ctx)])
    assert plan.savings_usd == pytest.approx(float(FAQ))
    assert [s.savings_usd for s in summaries] == [pytest.approx(float(FAQ)), 0.0]


def test_options_are_validated(prices: PriceBook) -> None:
    with pytest.raises(ConfigError, match="ttl_hours"):
        run([ask(0)], prices, ttl_hours=0)
    with pytest.raises(ConfigError, match="unknown option"):
        run([ask(0)], prices, ttl=3)
