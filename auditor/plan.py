"""Combine lever counterfactuals into one savings plan that never counts a dollar twice.

Levers are applied in the fixed order of report.LEVER_ORDER. Each lever states, per request, the cost the
request would have with that lever alone (`cost_after_usd`); as a ratio of the request's current cost, that
is the share of the request the lever keeps. Applied in sequence, a request's cost after lever i is its
cost after lever i-1 times lever i's ratio: a retry the `retries` lever removes (ratio 0) leaves nothing
for `output_caps` to save, and a request moved to a cheaper model is cached at the cheaper model's price.

Each step's savings is the difference of two exact Decimal totals quantized to a nano-dollar, so the steps
telescope: they sum exactly to the plan's savings. The same chain run with every lever's pessimistic
(low) and optimistic (high) ratios gives the plan's range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from auditor.levers.base import LeverResult
from auditor.report import LEVER_ORDER, LeverSummary, Plan, PlanStep, usd

NANO = Decimal("0.000000001")

_CASES = {
    "expected": "cost_after_usd",
    "low": "cost_after_low_savings_usd",
    "high": "cost_after_high_savings_usd",
}


@dataclass
class _Chain:
    totals: list[Decimal]  # total cost before the first lever, then after each lever
    affected: list[int]  # requests whose cost this lever lowered, per lever


def _ratio(frame: pl.DataFrame, result: LeverResult, column: str) -> pl.DataFrame:
    """Per-request share of cost a lever keeps, clamped to [0, 1]: a lever never adds cost."""
    cf = result.counterfactual.select("row_id", pl.col(column).cast(pl.Float64).alias("after"))
    return (
        frame.select("row_id", pl.col("cost_usd").cast(pl.Float64).alias("before"))
        .join(cf, on="row_id", how="inner")
        .filter(pl.col("before") > 0)
        .select(
            "row_id",
            (pl.col("after") / pl.col("before")).clip(0.0, 1.0).fill_null(1.0).alias("ratio"),
        )
    )


def _run_chain(frame: pl.DataFrame, results: Sequence[LeverResult], column: str) -> _Chain:
    current = frame.select("row_id", pl.col("cost_usd").cast(pl.Float64).fill_null(0.0).alias("cost"))
    totals = [_exact_total(current)]
    affected: list[int] = []
    for result in results:
        ratios = _ratio(frame, result, column)
        joined = current.join(ratios, on="row_id", how="left").with_columns(pl.col("ratio").fill_null(1.0))
        affected.append(joined.filter((pl.col("ratio") < 1.0) & (pl.col("cost") > 0)).height)
        current = joined.select("row_id", (pl.col("cost") * pl.col("ratio")).alias("cost"))
        totals.append(_exact_total(current))
    return _Chain(totals=totals, affected=affected)


def _exact_total(costs: pl.DataFrame) -> Decimal:
    total = costs.select(pl.col("cost").cast(pl.Decimal(38, 12)).sum()).item()
    return Decimal(total or 0).quantize(NANO)


def order_results(results: Sequence[LeverResult]) -> list[LeverResult]:
    rank = {lever_id: i for i, lever_id in enumerate(LEVER_ORDER)}
    unknown = [r.lever_id for r in results if r.lever_id not in rank]
    if unknown:
        raise ValueError(f"unknown lever id(s): {', '.join(unknown)}")
    return sorted(results, key=lambda r: rank[r.lever_id])


def build_plan(frame: pl.DataFrame, results: Sequence[LeverResult]) -> tuple[Plan, list[LeverSummary]]:
    """The plan and one summary per lever; `frame` is the priced canonical frame (row_id, cost_usd)."""
    ordered = order_results(results)
    chains = {case: _run_chain(frame, ordered, column) for case, column in _CASES.items()}
    expected = chains["expected"]
    current, optimized = expected.totals[0], expected.totals[-1]

    steps = [
        PlanStep(
            lever=result.lever_id,
            savings_usd=float(expected.totals[i] - expected.totals[i + 1]),
            cost_after_usd=float(expected.totals[i + 1]),
        )
        for i, result in enumerate(ordered)
    ]
    summaries = []
    for i, result in enumerate(ordered):
        standalone = _run_chain(frame, [result], "cost_after_usd").totals
        low = chains["low"].totals[i] - chains["low"].totals[i + 1]
        high = chains["high"].totals[i] - chains["high"].totals[i + 1]
        saving = expected.totals[i] - expected.totals[i + 1]
        summaries.append(
            LeverSummary(
                id=result.lever_id,
                title=result.title,
                savings_usd=float(saving),
                # the low/high chains can cross the expected one at a single step; keep the range ordered
                savings_low_usd=float(min(low, saving)),
                savings_high_usd=float(max(high, saving)),
                standalone_savings_usd=float(standalone[0] - standalone[-1]),
                affected_requests=expected.affected[i],
                confidence=result.confidence,
                assumptions=list(result.assumptions),
                method=result.method,
                findings=sorted({f.code for f in result.findings}),
            )
        )
    savings = current - optimized
    plan = Plan(
        current_cost_usd=float(current),
        optimized_cost_usd=float(optimized),
        savings_usd=float(savings),
        savings_pct=round(float(savings / current * 100), 2) if current else 0.0,
        savings_low_usd=float(chains["low"].totals[0] - chains["low"].totals[-1]),
        savings_high_usd=float(chains["high"].totals[0] - chains["high"].totals[-1]),
        steps=steps,
    )
    return plan, summaries


__all__ = ["build_plan", "order_results", "usd"]
