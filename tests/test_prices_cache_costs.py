"""PriceBook.cache_costs: several cache-token variants priced from one join, equal to `cost` on modified copies."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl

from auditor.prices import PriceBook
from auditor.schema import MONEY
from tests.helpers import canonical

ZERO = pl.lit(0, dtype=pl.Int64)
FULL = pl.col("input_tokens")
VARIANTS = {
    "none": (ZERO, ZERO, ZERO),
    "read": (FULL, ZERO, ZERO),
    "w5": (ZERO, FULL, ZERO),
    "w1": (ZERO, ZERO, FULL),
    "half": (FULL // 2, FULL // 4, ZERO),
}


def test_cache_variants_by_hand() -> None:
    # claude-sonnet-4-5: 3 in, read 0.30, 5m write 3.75, 1h write 6, 15 out; 10,000 input, 1,000 output (15,000).
    # none 30,000 + 15,000 = 45,000; read 3,000 + 15,000 = 18,000; w5 37,500 + 15,000 = 52,500;
    # w1 60,000 + 15,000 = 75,000; half: 2,500 uncached x3 + 5,000 x0.3 + 2,500 x3.75 = 7,500 + 1,500 + 9,375
    # = 18,375 + 15,000 = 33,375 (USD x 1e6)
    frame = canonical([{"model": "claude-sonnet-4-5", "provider": "anthropic", "input_tokens": 10_000,
                        "cache_read_tokens": 7_000, "output_tokens": 1_000}])  # fmt: skip
    costs = PriceBook.load().cache_costs(frame, VARIANTS)
    assert costs.columns == list(VARIANTS) and all(dtype == MONEY for dtype in costs.dtypes)
    expected = ["0.045", "0.018", "0.0525", "0.075", "0.033375"]
    assert list(costs.row(0)) == [Decimal(x) for x in expected]


def test_cache_costs_equal_cost_of_modified_copies() -> None:
    rows = [
        # long-context cliff (gemini-2.5-pro above 200K), its threshold, batch, flex, off-peak and peak DeepSeek,
        # an unknown model, a failed request without usage, a 1h-write model without a 1h price
        {"model": "gemini-2.5-pro", "provider": "google", "input_tokens": 250_000, "output_tokens": 1_000},
        {"model": "gemini-2.5-pro", "provider": "google", "input_tokens": 200_000, "output_tokens": 1_000},
        {"model": "claude-sonnet-4-5", "provider": "anthropic", "input_tokens": 9_000, "batch": True},
        {"model": "gpt-4.1", "provider": "openai", "input_tokens": 5_000, "service_tier": "flex"},
        {"model": "deepseek-v4-flash", "provider": "deepseek", "input_tokens": 8_000, "output_tokens": 10,
         "timestamp": datetime(2026, 10, 1, 2, 0, tzinfo=UTC)},
        {"model": "deepseek-v4-flash", "provider": "deepseek", "input_tokens": 8_000, "output_tokens": 10,
         "timestamp": datetime(2026, 10, 1, 12, 0, tzinfo=UTC)},
        {"model": "mystery-model-9", "provider": "acme", "input_tokens": 100, "output_tokens": 1},
        {"model": "gpt-4o", "provider": "openai", "status": "error"},
        {"model": "gpt-4o-mini", "provider": "openai", "input_tokens": 3_000, "cache_read_tokens": 1_024},
    ]  # fmt: skip
    frame = canonical(rows)
    book = PriceBook.load()
    costs = book.cache_costs(frame, VARIANTS)
    for name, (read, w5, w1) in VARIANTS.items():
        modified = frame.with_columns(
            read.alias("cache_read_tokens"), w5.alias("cache_write_5m_tokens"), w1.alias("cache_write_1h_tokens")
        )
        assert costs[name].to_list() == book.cost(modified).to_list(), name
    assert costs["none"].null_count() == 1  # the unknown model; the failed request costs 0
    # the logged cache columns as the one variant: the frame's own cost
    read, w5, w1 = (pl.col(c) for c in ("cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens"))
    assert book.cache_costs(frame, {"logged": (read, w5, w1)})["logged"].to_list() == frame["cost_usd"].to_list()
