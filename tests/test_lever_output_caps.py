"""output_caps lever (LA3xx) on constructed logs; every expected number is computed by hand below.

Prices (pricing/openai.yaml), USD per million tokens, input / output: gpt-4o-mini 0.15 / 0.60, o4-mini 1.10 / 4.40.
Quantiles are the next observed value ("higher"): for n sorted outputs, q -> index ceil(q * (n - 1)).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.output_caps import LEVER
from auditor.plan import build_plan
from auditor.prices import PriceBook
from auditor.redact import excerpt
from auditor.reduce import HEAD_CHARS, is_reduced, reduce_chunk
from tests.helpers import canonical


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def req(feature: str, output: int, model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"feature": feature, "model": model, "input_tokens": 1000, "output_tokens": output}
    row.update(extra)
    return row


def run(rows: list[dict[str, Any]], prices: PriceBook, **options: Any) -> tuple[pl.DataFrame, LeverResult]:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=prices, options=options))


def by_code(result: LeverResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


# 17 x 200, then 1000, 1500, 2000 output tokens (n = 20, no max_tokens)
LONG_TAIL = [200] * 17 + [1000, 1500, 2000]


def test_long_output_tail_is_capped_at_the_feature_p90(prices: PriceBook) -> None:
    frame, result = run([req("summarize", o) for o in LONG_TAIL], prices)
    (finding,) = by_code(result, "LA301")
    ev = finding.evidence
    # p50: ceil(0.5*19) = 10 -> 200; p90: ceil(17.1) = 18 -> 1500; p95: ceil(18.05) = 19 -> 2000; p99 -> 2000
    assert (ev["output_tokens_p50"], ev["output_tokens_p90"], ev["output_tokens_p95"], ev["output_tokens_p99"]) == (
        200, 1500, 2000, 2000,
    )  # fmt: skip
    assert ev["uncapped_share"] == 1.0
    # p75: ceil(14.25) = 15 -> 200 (optimistic cap), p95 = 2000 (pessimistic cap)
    assert ev["proposed_cap"] == 1500 and ev["cap_range"] == [200, 2000]
    # expected: only the 2000-token answer shrinks, by 500 tokens * $0.60/M = $0.0003
    assert finding.savings_usd == pytest.approx(0.0003)
    assert finding.affected_requests == 1
    assert result.confidence == "heuristic"
    plan, (summary,) = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.0003)
    assert summary.savings_low_usd == 0.0  # a p95 cap of 2000 cuts nothing
    # optimistic p75 cap of 200: (800 + 1300 + 1800) * 0.60 = 2340 micro-dollars
    assert summary.savings_high_usd == pytest.approx(0.00234)
    # no LA302 at the default volume threshold (100 requests); at 20 the same saving moves to LA302
    assert by_code(result, "LA302") == []
    _, result = run([req("summarize", o) for o in LONG_TAIL], prices, no_cap_min_requests=20)
    (la301,) = by_code(result, "LA301")
    (la302,) = by_code(result, "LA302")
    assert la302.savings_usd == pytest.approx(0.0003) and la301.savings_usd == 0.0
    assert la302.affected_requests == 20


def test_cap_never_goes_below_what_truncated_requests_needed(prices: PriceBook) -> None:
    # n = 30: 26 x 100, 500, 800, 1200 (truncated at max_tokens 1200), 3000
    outputs = [req("report", 100) for _ in range(26)] + [req("report", 500), req("report", 800)]
    outputs += [req("report", 1200, max_tokens=1200, finish_reason="length"), req("report", 3000)]
    _, result = run(outputs, prices)
    (finding,) = by_code(result, "LA301")
    # p90: ceil(0.9*29) = 27 -> 800, but a request was cut off at 1200: the cap is 1200
    assert finding.evidence["output_tokens_p90"] == 800
    assert finding.evidence["proposed_cap"] == 1200
    # only the 3000-token answer shrinks: 1800 * 0.60 = 1080 micro-dollars
    assert finding.savings_usd == pytest.approx(0.00108)
    assert by_code(result, "LA303") == []  # one truncation in 30 is below the 3-request minimum


def test_capped_feature_that_truncates(prices: PriceBook) -> None:
    # max_tokens 50 on every request; 5 of 20 answers stop at the cap
    rows = [req("label", 50, max_tokens=50, finish_reason="length") for _ in range(5)]
    rows += [req("label", 20, max_tokens=50, finish_reason="stop") for _ in range(15)]
    _, result = run(rows, prices)
    (finding,) = by_code(result, "LA303")
    assert finding.savings_usd == 0.0  # a quality problem, not a saving
    assert finding.affected_requests == 5
    assert finding.evidence["truncation_rate"] == 0.25
    assert finding.evidence["common_max_tokens"] == [50]
    # 5 * (1000 * 0.15 + 50 * 0.60) = 5 * 180 = 900 micro-dollars spent on cut-off answers
    assert finding.evidence["truncated_cost_usd"] == pytest.approx(0.0009)
    assert finding.severity == "medium"
    assert result.counterfactual.height == 0  # nothing is saved by this lever here
    assert by_code(result, "LA301") == []  # p99 50 < 3 x p50 20


def test_reasoning_dominating_short_answers(prices: PriceBook) -> None:
    # o4-mini: 500 input, 600 output of which 500 reasoning; visible answer 100 tokens
    rows = [req("triage", 600, model="o4-mini", input_tokens=500, reasoning_tokens=500) for _ in range(20)]
    frame, result = run(rows, prices)
    (finding,) = by_code(result, "LA304")
    assert finding.evidence["reasoning_share"] == pytest.approx(500 / 600, abs=1e-4)
    # half the reasoning goes: 250 tokens * $4.40/M = 1100 micro-dollars per request, 20 requests
    assert finding.savings_usd == pytest.approx(0.022)
    _, (summary,) = build_plan(frame, [result])
    assert summary.savings_low_usd == pytest.approx(0.011)  # 125 tokens * 4.40 * 20
    assert summary.savings_high_usd == pytest.approx(0.033)  # 375 tokens * 4.40 * 20


def test_json_answers_wrapped_in_prose_call_for_structured_output(prices: PriceBook) -> None:
    text = 'Sure! Here is the JSON:\n```json\n{"a": 1}\n```'
    assert len(text) == 44  # the object {"a": 1} is 8 characters: 36/44 of the text is wrapping
    rows = [req("extract", 100, output_text=text) for _ in range(20)]
    _, result = run(rows, prices)
    (finding,) = by_code(result, "LA301")
    # floor(100 * 36/44) = 81 tokens * $0.60/M = 48.6 micro-dollars per request, 20 requests
    assert finding.savings_usd == pytest.approx(0.000972)
    assert finding.evidence["savings_from_structured_output_usd"] == pytest.approx(0.000972)
    assert "structured output" in finding.recommendation
    # already on structured output: nothing to say
    _, result = run([{**r, "response_format": "json_schema"} for r in rows], prices)
    assert result.findings == []


def test_small_groups_and_tight_distributions_are_left_alone(prices: PriceBook) -> None:
    _, result = run([req("summarize", o) for o in LONG_TAIL[:19]], prices, min_requests=20)
    assert result.findings == []  # 19 requests < 20
    _, result = run([req("steady", 200 + i) for i in range(30)], prices)
    assert result.findings == [] and result.counterfactual.height == 0


def test_errors_are_not_part_of_the_distribution(prices: PriceBook) -> None:
    rows = [req("summarize", o) for o in LONG_TAIL]
    rows.append(req("summarize", 9000, status="error", error_type="timeout"))
    frame, result = run(rows, prices)
    (finding,) = by_code(result, "LA301")
    assert finding.evidence["requests"] == 20 and finding.evidence["output_tokens_max"] == 2000
    error_row = frame.filter(pl.col("status") == "error")["row_id"][0]
    assert error_row not in set(result.counterfactual["row_id"])


def test_features_fall_back_to_the_system_prompt_and_gaps_are_reported(prices: PriceBook) -> None:
    rows = [req(None, o, system_hash="abcdef0123456789") for o in LONG_TAIL]  # type: ignore[arg-type]
    _, result = run(rows, prices)
    (finding,) = by_code(result, "LA301")
    assert finding.scope["feature"] == "system prompt abcdef012345"
    _, result = run([req(None, o) for o in LONG_TAIL], prices)  # type: ignore[arg-type]
    assert result.findings == []
    (gap,) = result.gaps
    assert gap.requests == 20 and gap.missing_fields == ["feature", "system_hash"]
    # 17 * (150 + 120) + (150 + 600) + (150 + 900) + (150 + 1200) = 4590 + 750 + 1050 + 1350 = 7740 micro-dollars
    assert gap.cost_at_stake_usd == pytest.approx(0.00774)


def test_counterfactual_never_exceeds_cost(prices: PriceBook) -> None:
    frame, result = run([req("summarize", o) for o in LONG_TAIL], prices)
    joined = result.counterfactual.join(frame.select("row_id", "cost_usd"), on="row_id")
    for column in ("cost_after_usd", "cost_after_low_savings_usd", "cost_after_high_savings_usd"):
        assert joined.filter(pl.col(column) > pl.col("cost_usd")).height == 0
    assert joined.filter(pl.col("cost_after_usd") < 0).height == 0
    # rows 1000, 1500, 2000 are listed (the optimistic p75 cap reaches them); expected saving exactly 500 * 0.60
    assert joined.height == 3
    assert Decimal(joined.select(pl.col("cost_usd") - pl.col("cost_after_usd")).sum().item()) == Decimal("0.0003")


@pytest.mark.parametrize(
    "options",
    [{"cap": 0.9}, {"cap_percentile": 1.5}, {"min_requests": "20"}, {"cap_percentile_high": 0.99}],
)
def test_bad_options_are_config_errors(prices: PriceBook, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"levers\.output_caps"):
        run([req("x", 1)], prices, **options)


def test_pipeline_reduced_frame_gives_the_full_frame_result(prices: PriceBook) -> None:
    # A JSON answer that ends far past the 300-character output head: its wrapper share needs the full text.
    obj = '{"items": [' + ", ".join(f'"line item number {i:03d}"' for i in range(20)) + "]}"
    text = "Sure! Here is the JSON you asked for:\n```json\n" + obj + "\n```"
    assert len(obj) == 11 + 20 * 22 + 19 * 2 + 2 == 491 and len(text) == 46 + 491 + 4 == 541
    rows = [req("extract", 100, output_text=text) for _ in range(20)]
    rows += [req("summarize", o, output_text=f"Summary {o}: " + "point. " * 60) for o in LONG_TAIL]
    frame = canonical(rows)
    reduced = reduce_chunk(frame, [(lever, {}) for lever in available_levers()])
    assert is_reduced(reduced) and reduced["output_text"].str.len_chars().max() == HEAD_CHARS
    ctx = LeverContext(prices=prices, options={})
    full, cut = LEVER.analyze(frame, ctx), LEVER.analyze(reduced, ctx)
    (json_finding,) = [f for f in by_code(full, "LA301") if f.scope["feature"] == "extract"]
    # wrapper: 50 of 541 characters; floor(100 * 50/541) = 9 tokens * $0.60/M = 5.4 micro-dollars, 20 requests
    assert json_finding.evidence["json_wrapper_share"] == round(50 / 541, 4)
    assert json_finding.savings_usd == pytest.approx(20 * 9 * 0.60 / 1e6)
    (tail,) = [f for f in by_code(full, "LA301") if f.scope["feature"] == "summarize"]
    assert tail.evidence["longest_output_excerpt"] == excerpt("Summary 2000: " + "point. " * 60, 100)
    assert cut.findings == full.findings  # evidence included: the excerpt fits in the head
    assert cut.counterfactual.equals(full.counterfactual) and cut.gaps == full.gaps
