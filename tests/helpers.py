"""Shared test helpers: build priced canonical frames from a few hand-written rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from auditor.prices import ModelPrice

from auditor.schema import SORT_KEYS, rows_to_frame

T0 = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A timestamp `seconds` after T0 (2026-10-01 12:00:00 UTC)."""
    return T0 + timedelta(seconds=seconds)


def model_price(model_id: str, provider: str, inp: str, out: str, **extra: Any) -> ModelPrice:
    """A price-table entry with input/output USD per million tokens only (no cache prices), from 2025-01-01."""
    from auditor.prices import ModelPrice

    return ModelPrice(
        model_id=model_id,
        provider=provider,
        effective_from=date(2025, 1, 1),
        input_mtok=Decimal(inp),
        output_mtok=Decimal(out),
        cache_read_mtok=None,
        cache_write_5m_mtok=None,
        cache_write_1h_mtok=None,
        **extra,
    )


def canonical(rows: list[dict[str, Any]], *, priced: bool = True) -> pl.DataFrame:
    """Rows -> canonical frame sorted like the pipeline sorts it, with row_id and (by default) costs.

    Defaults filled per row: source_format "test", source_file "test.jsonl", source_line = position + 1,
    status "ok", batch False, tokens_estimated False.
    """
    filled = []
    for i, row in enumerate(rows):
        base: dict[str, Any] = {
            "source_format": "test",
            "source_file": "test.jsonl",
            "source_line": i + 1,
            "status": "ok",
            "batch": False,
            "tokens_estimated": False,
            "timestamp": at(i),
        }
        base.update(row)
        filled.append(base)
    frame = rows_to_frame(filled).sort(list(SORT_KEYS), nulls_last=True).with_row_index("row_id")
    frame = frame.with_columns(pl.col("row_id").cast(pl.Int64))
    if priced:
        from auditor.prices import PriceBook

        frame = PriceBook.load().add_costs(frame)
    return frame
