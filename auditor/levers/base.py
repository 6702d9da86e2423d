"""The lever interface: one module per cost lever, one entry point, no knowledge of other levers.

A lever reads the priced canonical frame (auditor.schema.CANONICAL_SCHEMA, one row per request, keyed by
`row_id`) and returns its per-request counterfactual: for each request it touches, what that request would
cost with the lever applied (expected, and a low/high range). The plan (auditor.plan) combines levers in
the fixed order of report.LEVER_ORDER, so a dollar is never counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from auditor.report import Confidence, Finding, Gap, Severity

if TYPE_CHECKING:
    from auditor.prices import PriceBook

# Columns of LeverResult.counterfactual. Costs are auditor.schema.MONEY (Decimal) or Float64.
COUNTERFACTUAL_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),
    "cost_after_usd": pl.Decimal(38, 12),  # expected cost of this request with the lever applied
    "cost_after_low_savings_usd": pl.Decimal(38, 12),  # cost in the pessimistic case (least savings)
    "cost_after_high_savings_usd": pl.Decimal(38, 12),  # cost in the optimistic case (most savings)
}


@dataclass
class LeverContext:
    """What a lever may use besides the frame: prices, its options from config, the pricing date."""

    prices: PriceBook
    options: dict[str, Any] = field(default_factory=dict)  # this lever's section of llm-audit.yaml
    price_date: date | None = None  # --price-date, when the user repriced everything at one date
    config: Any = None  # the whole auditor.config.Config, for cross-cutting settings (pins, tags)
    # Set by the pipeline: `row_id` + these columns for these row_ids (in their order), from the whole priced
    # frame or the spilled parts. Levers call `fetch_rows`, which reads their own frame when it has the columns.
    rows: Callable[[pl.Series, Sequence[str]], pl.DataFrame] | None = None


@dataclass
class LeverResult:
    lever_id: str
    title: str
    confidence: Confidence
    # One row per touched request (rows not listed are unchanged by this lever); COUNTERFACTUAL_SCHEMA.
    counterfactual: pl.DataFrame
    findings: list[Finding] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    method: str = ""
    gaps: list[Gap] = field(default_factory=list)


class Lever(Protocol):
    id: str
    title: str
    # The columns `analyze` reads beyond auditor.spill.BASE_COLUMNS (canonical or reduced ones: heads, *_chars);
    # its own features `_<id>_*` come without being listed. The pipeline hands each lever only these columns
    # (from disk in spill mode), so reading an undeclared one fails in every mode, not only at volume.
    reads: tuple[str, ...]

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise auditor.config.ConfigError when this lever's section of llm-audit.yaml is wrong."""
        ...

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        """Per-request columns this lever derives from the full texts, before auditor.reduce cuts them down.

        Called chunk by chunk at ingest on INGEST_SCHEMA rows (full texts, no row_id or costs), so it must be
        row-local: same height and order as `chunk`, only new columns, each named `_<lever id>_<name>`, kept small
        (hashes, lengths, flags, not texts). A lever needing nothing returns `pl.DataFrame()`.
        """
        ...

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        """Counterfactual and findings for the priced canonical frame. Must not print or mutate `frame`.

        The frame is reduced (auditor.reduce): no prompt_text, heads of the other texts, plus this lever's features;
        the pipeline gives it only BASE_COLUMNS, `reads` and those features. A lever handed a full frame (tests)
        calls `auditor.reduce.ensure_reduced` first.
        """
        ...


def fetch_rows(frame: pl.DataFrame, ctx: LeverContext, row_ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
    """`row_id` and `columns` for `row_ids`, in their order (duplicates repeated, unknown ids null): the text heads
    of the few rows a finding shows, which the pipeline does not load for every row (not in `Lever.reads`).

    From the lever's own frame when it has them (tests hand `analyze` full frames), else from `ctx.rows`."""
    ids = row_ids.cast(pl.Int64).rename("row_id")
    if all(c in frame.columns for c in columns) or ctx.rows is None:
        have = frame.select("row_id", *columns)
        return ids.to_frame().join(have, on="row_id", how="left", maintain_order="left")
    return ctx.rows(ids, columns)


def empty_counterfactual() -> pl.DataFrame:
    return pl.DataFrame(schema=COUNTERFACTUAL_SCHEMA)


def counterfactual_frame(
    row_id: pl.Series | list[int],
    cost_after: pl.Series | list[Any],
    cost_after_low_savings: pl.Series | list[Any] | None = None,
    cost_after_high_savings: pl.Series | list[Any] | None = None,
) -> pl.DataFrame:
    """Build a counterfactual frame; the range defaults to the expected value."""
    expected = pl.Series("cost_after_usd", cost_after).cast(pl.Decimal(38, 12))
    low = expected if cost_after_low_savings is None else pl.Series(cost_after_low_savings)
    high = expected if cost_after_high_savings is None else pl.Series(cost_after_high_savings)
    return pl.DataFrame(
        {
            "row_id": pl.Series(row_id).cast(pl.Int64),
            "cost_after_usd": expected,
            "cost_after_low_savings_usd": low.cast(pl.Decimal(38, 12)),
            "cost_after_high_savings_usd": high.cast(pl.Decimal(38, 12)),
        }
    )


def dec(value: Any) -> Decimal:
    """A polars sum or cost as a Decimal; null (nothing to sum) is 0."""
    return Decimal(value or 0)


def total_cost(frame: pl.DataFrame) -> Decimal:
    """Exact sum of `cost_usd` over the rows (unpriced rows add nothing)."""
    return dec(frame.select(pl.col("cost_usd").sum()).item())


def severity(savings: Decimal, total: Decimal, *, floor: Severity = "info") -> Severity:
    """A finding's severity by its share of all spend: >= 10% high, >= 2% medium, any saving low, else `floor`."""
    share = savings / total if total else Decimal(0)
    if share >= Decimal("0.10"):
        return "high"
    if share >= Decimal("0.02"):
        return "medium"
    return "low" if savings > 0 else floor
