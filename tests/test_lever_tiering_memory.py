"""model_tiering at volume: unpriced requests are filtered by each step (no filtered copy of every request) and the
candidate model is priced in bounded slices. Expected values by hand, with the price book of test_lever_tiering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import auditor.levers.tiering as tiering
from auditor.levers.base import LeverContext
from auditor.levers.tiering import LEVER
from tests.test_lever_tiering import BOOK, FakeBook, essay, frame_of, ticket


class CountingBook(FakeBook):
    """FakeBook that records how many rows each cost() call prices."""

    def __init__(self) -> None:
        super().__init__()
        self.heights: list[int] = []

    def cost(self, frame: pl.DataFrame, price_date: Any = None) -> pl.Series:
        self.heights.append(frame.height)
        return super().cost(frame, price_date)


def test_unpriced_requests_are_left_out_of_the_profile_groups_and_gaps() -> None:
    # 30 priced tickets on prem, with 5 tickets on an unknown model and 4 bare requests without a model id in
    # between (cost null): the feature has 30 requests, all classification, and no gap is reported.
    rows: list[dict[str, Any]] = []
    for i in range(30):
        rows.append(ticket())
        if i % 6 == 0:
            rows.append({**ticket(), "model_id": "mystery"})
        if i % 8 == 0:
            rows.append({"feature": "tickets", "model_id": None, "input_tokens": 500, "output_tokens": 2})
    frame = frame_of(rows)
    assert frame.height == 39 and frame["cost_usd"].null_count() == 9
    result = LEVER.analyze(frame, LeverContext(prices=BOOK))  # type: ignore[arg-type]
    (finding,) = result.findings
    assert finding.code == "LA201"
    assert finding.evidence["feature_requests"] == 30
    assert finding.evidence["task_families"] == {"classification": 30}
    # 30 * (0.00508 - 0.000254) = 0.14478 if all moved; expected share 0.8 -> 0.115824
    assert finding.savings_usd == pytest.approx(0.115824, abs=1e-9)
    priced = frame.filter(pl.col("cost_usd").is_not_null())["row_id"]
    assert result.counterfactual["row_id"].to_list() == priced.to_list()
    assert result.gaps == []


def test_candidate_costs_are_priced_in_bounded_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiering, "_PRICE_ROWS", 7)
    book = CountingBook()
    legacy = {**essay(), "feature": "legacy", "model_id": "old-mid", "input_tokens": 1000, "output_tokens": 900}
    frame = frame_of([ticket() for _ in range(40)] + [legacy for _ in range(20)], book)
    book.heights.clear()
    result = LEVER.analyze(frame, LeverContext(prices=book))  # type: ignore[arg-type]
    # 40 tickets priced on smol in slices of 7, 7, 7, 7, 7, 5; 20 legacy requests on new-mid in 7, 7, 6
    assert book.heights == [7, 7, 7, 7, 7, 5, 7, 7, 6]
    by_code = {f.code: f for f in result.findings}
    assert by_code["LA201"].savings_usd == pytest.approx(0.154432, abs=1e-9)  # 40 * 0.004826 * 0.8
    assert by_code["LA203"].savings_usd == pytest.approx(0.11, abs=1e-9)  # 20 * (0.0165 - 0.011)
    cf = result.counterfactual
    assert cf["row_id"].to_list() == list(range(60))
    # a ticket: 0.00508 - 0.8 * 0.004826; a legacy request moves whole (expected share 1.0): 0.011
    assert cf["cost_after_usd"][0] == Decimal("0.001219200000")
    assert cf["cost_after_usd"][59] == Decimal("0.011000000000")
