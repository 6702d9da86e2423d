"""model_tiering reprices a group on its candidate in slices of COST_SLICE_ROWS (bounded memory at 10M requests):
the same numbers as one call over the whole group."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from auditor.levers import tiering
from auditor.levers.base import LeverContext
from tests.test_lever_tiering import BOOK, FakeBook, essay, frame_of, ticket, yes_no


class CountingBook(FakeBook):
    """FakeBook that remembers how many rows each cost() call priced."""

    def __init__(self) -> None:
        super().__init__()
        self.heights: list[int] = []

    def cost(self, frame: pl.DataFrame, price_date: date | None = None) -> pl.Series:
        self.heights.append(frame.height)
        return super().cost(frame, price_date)


def _rows() -> list[dict[str, object]]:
    legacy = {**essay(), "feature": "legacy", "model_id": "old-mid", "input_tokens": 1000, "output_tokens": 900}
    return [ticket() for _ in range(40)] + [yes_no() for _ in range(20)] + [essay() for _ in range(20)] + [legacy] * 20


def test_sliced_repricing_gives_the_unsliced_result(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = frame_of(_rows())
    whole = tiering.LEVER.analyze(frame, LeverContext(prices=BOOK))  # type: ignore[arg-type]
    book = CountingBook()
    monkeypatch.setattr(tiering, "COST_SLICE_ROWS", 7)
    sliced = tiering.LEVER.analyze(frame, LeverContext(prices=book))  # type: ignore[arg-type]
    assert max(book.heights) == 7 and len(book.heights) > 3  # the 40 tickets alone take 6 calls
    assert sliced.counterfactual.equals(whole.counterfactual)
    assert [(f.code, f.savings_usd, f.evidence) for f in sliced.findings] == [
        (f.code, f.savings_usd, f.evidence) for f in whole.findings
    ]
    la203 = next(f for f in sliced.findings if f.code == "LA203")
    # old-mid 1000*3/1e6 + 900*15/1e6 = 0.0165, new-mid 0.002 + 0.009 = 0.011: 20 * 0.0055 = 0.11
    assert la203.savings_usd == pytest.approx(0.11, abs=1e-9)
