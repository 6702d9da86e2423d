"""PriceBook.cost / cache_costs / add_costs price in slices of PRICE_SLICE_ROWS: same values, same order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from auditor import prices as prices_module
from auditor.prices import PriceBook
from tests.helpers import canonical

# Rows whose costs differ (models, tiers, cliff, off-peak, unknown, failed), repeated so every slice of 3 mixes them.
ROWS = [
    {"model": "gemini-2.5-pro", "provider": "google", "input_tokens": 250_000, "output_tokens": 1_000},
    {"model": "claude-sonnet-4-5", "provider": "anthropic", "input_tokens": 10_000, "output_tokens": 1_000,
     "cache_read_tokens": 7_000},
    {"model": "claude-sonnet-4-5", "provider": "anthropic", "input_tokens": 9_000, "batch": True},
    {"model": "gpt-4.1", "provider": "openai", "input_tokens": 5_000, "service_tier": "flex"},
    {"model": "deepseek-v4-flash", "provider": "deepseek", "input_tokens": 8_000, "output_tokens": 10,
     "timestamp": datetime(2026, 10, 1, 2, 0, tzinfo=UTC)},
    {"model": "mystery-model-9", "provider": "acme", "input_tokens": 100, "output_tokens": 1},
    {"model": "gpt-4o", "provider": "openai", "status": "error"},
]  # fmt: skip
VARIANTS = {
    "none": (pl.lit(0, dtype=pl.Int64), pl.lit(0, dtype=pl.Int64), pl.lit(0, dtype=pl.Int64)),
    "read": (pl.col("input_tokens"), pl.lit(0, dtype=pl.Int64), pl.lit(0, dtype=pl.Int64)),
}


@pytest.fixture
def frame() -> pl.DataFrame:
    return canonical(ROWS * 3)  # 21 rows: 7 slices of 3 below


def test_sliced_costs_are_the_same(frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    book = PriceBook.load()
    whole_cost, whole_cache = book.cost(frame), book.cache_costs(frame, VARIANTS)
    whole_added = book.add_costs(frame.drop("model_id", "price_date", "unpriced", "cost_usd"))
    monkeypatch.setattr(prices_module, "PRICE_SLICE_ROWS", 3)
    assert len(prices_module.row_slices(frame)) == 7
    assert_series_equal(book.cost(frame), whole_cost)
    assert_frame_equal(book.cache_costs(frame, VARIANTS), whole_cache)
    assert_frame_equal(book.add_costs(frame.drop("model_id", "price_date", "unpriced", "cost_usd")), whole_added)
    # and the values are the ones worked out by hand for the Sonnet row: 3,000 x 3 + 7,000 x 0.30 + 1,000 x 15
    # = 9,000 + 2,100 + 15,000 = 26,100 USD x 1e-6 (the frame's logged cache columns), 0.045 with none cached
    sonnet = ((frame["model"] == "claude-sonnet-4-5") & (frame["cache_read_tokens"] == 7_000)).arg_true()
    assert sonnet.len() == 3 and set(whole_cost.gather(sonnet).to_list()) == {Decimal("0.0261")}
    assert set(whole_cache["none"].gather(sonnet).to_list()) == {Decimal("0.045")}
    assert set(whole_cache["read"].gather(sonnet).to_list()) == {Decimal("0.018")}
    assert whole_cost.null_count() == 3  # the unknown model in each copy; the failed request costs 0
    assert whole_added["cost_usd"].to_list() == whole_cost.to_list()


def test_empty_frame_prices_to_an_empty_column(frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prices_module, "PRICE_SLICE_ROWS", 3)
    assert PriceBook.load().cost(frame.clear()).len() == 0
