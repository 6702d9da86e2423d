"""build_plan: levers applied in the fixed order, marginal attribution, steps that sum exactly to the plan."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.levers.base import LeverContext, LeverResult, counterfactual_frame
from auditor.levers.output_caps import LEVER as OUTPUT_CAPS
from auditor.levers.retries import LEVER as RETRIES
from auditor.plan import build_plan
from auditor.prices import PriceBook
from tests.helpers import at, canonical


def exact_sum(values: list[float]) -> Decimal:
    return sum((Decimal(str(v)) for v in values), Decimal(0))


# ---------------------------------------------------------------------------------------------- toy levers


class ToyLever:
    """A lever defined by fixed per-row cost_after values for the three cases."""

    def __init__(self, lever_id: str, after: dict[int, tuple[str, str, str]]) -> None:
        self.id = lever_id
        self.title = f"toy {lever_id}"
        self.after = after

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext | None) -> LeverResult:
        ids = list(self.after)
        expected, low, high = ([Decimal(self.after[i][k]) for i in ids] for k in range(3))
        return LeverResult(
            lever_id=self.id,
            title=self.title,
            confidence="measured",
            counterfactual=counterfactual_frame(ids, expected, low, high),
        )


def test_toy_levers_sequential_attribution() -> None:
    frame = pl.DataFrame(
        {"row_id": [0, 1, 2], "cost_usd": [Decimal(1), Decimal(2), Decimal(3)]},
        schema={"row_id": pl.Int64, "cost_usd": pl.Decimal(38, 12)},
    )
    # (expected, pessimistic, optimistic) cost after the lever, per row
    first = ToyLever("retries", {0: ("0", "0.5", "0"), 1: ("1", "2", "0")})
    second = ToyLever("output_caps", {0: ("0.5", "1", "0.25"), 2: ("1.5", "2.25", "0.75")})
    # passed in the wrong order on purpose: the plan orders them (retries before output_caps)
    plan, summaries = build_plan(frame, [second.analyze(frame, None), first.analyze(frame, None)])

    # expected: 6 -> retries [0, 1, 3] = 4 (step 2) -> caps keep 0.5 of row 0 and 0.5 of row 2: [0, 1, 1.5] = 2.5
    assert [s.lever for s in plan.steps] == ["retries", "output_caps"]
    assert [s.savings_usd for s in plan.steps] == [2.0, 1.5]
    assert [s.cost_after_usd for s in plan.steps] == [4.0, 2.5]
    assert (plan.current_cost_usd, plan.optimized_cost_usd, plan.savings_usd) == (6.0, 2.5, 3.5)
    assert plan.savings_pct == pytest.approx(58.33)  # 3.5 / 6
    assert exact_sum([s.savings_usd for s in plan.steps]) == Decimal("3.5")
    # pessimistic: [0.5, 2, 3] = 5.5 (0.5), then ratios 1.0 and 0.75: [0.5, 2, 2.25] = 4.75 (0.75) -> plan 1.25
    # optimistic: [0, 0, 3] = 3 (3.0), then ratios 0.25 and 0.25: [0, 0, 0.75] = 0.75 (2.25) -> plan 5.25
    retries, caps = summaries
    assert (retries.savings_low_usd, retries.savings_usd, retries.savings_high_usd) == (0.5, 2.0, 3.0)
    assert (caps.savings_low_usd, caps.savings_usd, caps.savings_high_usd) == (0.75, 1.5, 2.25)
    assert (plan.savings_low_usd, plan.savings_high_usd) == (1.25, 5.25)
    # alone, output_caps would save 0.5 + 1.5 = 2.0; in the plan row 0 is already gone, so only 1.5
    assert caps.standalone_savings_usd == 2.0 and retries.standalone_savings_usd == 2.0
    # row 0 costs nothing after retries, so output_caps lowers only row 2
    assert (retries.affected_requests, caps.affected_requests) == (2, 1)


# ---------------------------------------------------------------------------------------------- real levers


def test_retried_request_is_not_also_an_output_cap_saving() -> None:
    """gpt-4o-mini ($0.15 / $0.60 per M), 1,000 input tokens per request, feature "summarize", no max_tokens.

    Outputs 17 x 200, 1000, 1500, 2000, and a double submit of the 2000-token request 300 ms later
    (n = 21 sorted: indices 0-16 = 200, 17 = 1000, 18 = 1500, 19-20 = 2000):
      p50 = index ceil(0.5*20) = 10 -> 200; p90 = index 18 -> 1500; p99 = index 20 -> 2000 >= 3 x 200: long tail.
    Costs (micro-dollars): 200-token 150 + 120 = 270; 1000: 750; 1500: 1050; 2000: 150 + 1200 = 1350.
      total = 17*270 + 750 + 1050 + 2*1350 = 4590 + 750 + 1050 + 2700 = 9090
    retries removes the duplicate: 1350. output_caps caps both 2000-token answers at 1500: 500 * 0.60 = 300 each,
    600 alone, but only 300 in the plan (the duplicate is already gone). Optimized = 9090 - 1350 - 300 = 7440.
    """
    rows: list[dict[str, Any]] = []
    outputs = [200] * 17 + [1000, 1500, 2000]
    for i, output in enumerate(outputs):
        rows.append(
            {"feature": "summarize", "model": "gpt-4o-mini", "session_id": f"s{i}", "prompt_hash": f"h{i}",
             "timestamp": at(10 * i), "input_tokens": 1000, "output_tokens": output, "latency_ms": 800.0}
        )  # fmt: skip
    rows.append({**rows[-1], "timestamp": at(10 * 19 + 0.3)})  # the double submit
    frame = canonical(rows)
    prices = PriceBook.load()
    results = [lever.analyze(frame, LeverContext(prices=prices)) for lever in (OUTPUT_CAPS, RETRIES)]
    plan, summaries = build_plan(frame, results)

    assert plan.current_cost_usd == pytest.approx(0.00909)
    assert [s.lever for s in plan.steps] == ["retries", "output_caps"]
    assert plan.steps[0].savings_usd == pytest.approx(0.00135)
    assert plan.steps[1].savings_usd == pytest.approx(0.0003)
    assert plan.optimized_cost_usd == pytest.approx(0.00744)
    assert exact_sum([s.savings_usd for s in plan.steps]) == Decimal(str(plan.savings_usd))
    retries, caps = summaries
    assert caps.standalone_savings_usd == pytest.approx(0.0006)
    assert caps.savings_usd == pytest.approx(0.0003)
    assert caps.affected_requests == 1  # the surviving 2000-token request
    assert retries.affected_requests == 1
    # and the duplicate is in both levers' counterfactuals: the plan, not the levers, keeps it from double counting
    duplicate = frame.filter(pl.col("timestamp") == at(190.3))["row_id"][0]
    for result in results:
        assert duplicate in set(result.counterfactual["row_id"])
