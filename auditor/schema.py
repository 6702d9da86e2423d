"""The canonical request table: one row per billed model call, whatever the source format.

Every reader produces exactly these columns (missing values are null = *unknown*, never 0), and every
later stage (pricing, levers, plan) reads only these. The meaning of each column matters more than its
name; it is documented in docs/canonical-format.md and summarised here.

Token columns share one meaning across sources:
  input_tokens            all input tokens: uncached + cache read + cache write (OpenAI/OTel semantics)
  cache_read_tokens       subset of input_tokens served from the provider's prompt cache
  cache_write_5m_tokens   subset of input_tokens written to a 5-minute (or the provider's only) cache
  cache_write_1h_tokens   subset of input_tokens written to a 1-hour cache (Anthropic prices these 2x)
  output_tokens           all output tokens, reasoning/thinking included
  reasoning_tokens        subset of output_tokens
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import polars as pl

UTC_MICROS = pl.Datetime("us", "UTC")
MONEY = pl.Decimal(38, 12)  # USD, exact to a pico-dollar; rounded only when rendered

# Columns produced by ingest (the order is the canonical column order of exports).
INGEST_SCHEMA: dict[str, pl.DataType] = {
    # identity
    "request_id": pl.String(),
    "timestamp": UTC_MICROS,  # start of request, UTC
    "latency_ms": pl.Float64(),
    "provider": pl.String(),  # openai | anthropic | google | deepseek | mistral | xai | bedrock | vertex | ...
    "model": pl.String(),  # as logged (response model preferred over requested model)
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),  # 1-based line (JSONL) or row number (Parquet / JSON array element)
    # attribution
    "feature": pl.String(),
    "tenant": pl.String(),
    "user": pl.String(),
    "session_id": pl.String(),  # conversation, trace or agent run
    "tags": pl.String(),  # JSON object of the remaining string tags, sorted keys; null when none
    # tokens
    "input_tokens": pl.Int64(),
    "cache_read_tokens": pl.Int64(),
    "cache_write_5m_tokens": pl.Int64(),
    "cache_write_1h_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "reasoning_tokens": pl.Int64(),
    "tokens_estimated": pl.Boolean(),  # counts came from our tokenizer, not from the provider
    # request shape
    "system_text": pl.String(),  # system prompt / instructions as one string (null if none or not logged)
    "prompt_text": pl.String(),  # whole prompt rendered in the provider's cache order: tools -> system -> messages
    "last_user_text": pl.String(),  # text of the last user message (the "question")
    "messages_count": pl.Int64(),  # number of messages in the request (conversation length)
    "prompt_hash": pl.String(),  # fingerprint of prompt_text (or of a logged prompt hash); model-independent
    "system_hash": pl.String(),  # fingerprint of system_text
    "max_tokens": pl.Int64(),  # requested output cap (max_tokens / max_completion_tokens / max_output_tokens)
    "temperature": pl.Float64(),
    "response_format": pl.String(),  # text | json_object | json_schema | null
    "tools_count": pl.Int64(),
    "stream": pl.Boolean(),
    "service_tier": pl.String(),  # standard | batch | flex | priority (normalised); null if unknown
    "batch": pl.Boolean(),  # billed at batch prices
    # outcome
    "status": pl.String(),  # ok | error
    "http_status": pl.Int64(),
    "error_type": pl.String(),  # rate_limit | server_error | timeout | invalid_request | ... (normalised)
    "finish_reason": pl.String(),  # stop | length | tool_calls | content_filter | ... (normalised)
    "output_text": pl.String(),
    # money the source logged itself (LiteLLM spend, Langfuse cost, Helicone cost)
    "logged_cost_usd": pl.Float64(),
}

# Columns added by pricing (auditor.prices.PriceBook.add_costs).
PRICED_SCHEMA: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),  # stable row number after the deterministic sort; levers key on it
    "model_id": pl.String(),  # resolved price-table key; null when unknown
    "price_date": pl.Date(),  # the date whose prices were applied
    "unpriced": pl.Boolean(),
    "cost_usd": MONEY,  # recomputed cost; null when unpriced (never 0 for an unknown model)
}

CANONICAL_SCHEMA: dict[str, pl.DataType] = {**INGEST_SCHEMA, **PRICED_SCHEMA}

TOKEN_COLUMNS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)

# Deterministic order of the canonical table: same input, same report, whatever the file order.
SORT_KEYS = ("timestamp", "source_file", "source_line", "request_id")


def empty_frame(schema: Mapping[str, pl.DataType] = INGEST_SCHEMA) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def rows_to_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Canonical rows (dicts with a subset of INGEST_SCHEMA keys) -> a frame with exactly INGEST_SCHEMA.

    Keys a reader did not set become null. Timestamps are timezone-aware datetimes (UTC).
    """
    rows = list(rows)
    if not rows:
        return empty_frame()
    # One pass over the rows, then a transpose (C loops), instead of one pass per column.
    try:
        records = list(map(_ALL_COLUMNS, rows))  # rows that set every column (the envelope parser's)
    except KeyError:
        records = [tuple(map(row.get, _NAMES)) for row in rows]
    columns: dict[str, Any] = dict(zip(_NAMES, map(list, zip(*records, strict=True)), strict=True))
    columns["timestamp"] = _micros(columns["timestamp"])
    columns["system_text"] = _shared_texts(columns["system_text"])
    return pl.DataFrame(columns, schema=dict(INGEST_SCHEMA), strict=False)


_NAMES = tuple(INGEST_SCHEMA)
_ALL_COLUMNS = itemgetter(*_NAMES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(values: list[Any]) -> pl.Series | list[Any]:
    """Aware datetimes -> the UTC microseconds polars stores for them (polars' own conversion of Python datetimes
    is several times slower); any other value leaves the column to polars as it is."""
    if not all(value is None or (type(value) is datetime and value.tzinfo is not None) for value in values):
        return values
    try:
        micros = [None if value is None else (value - _EPOCH) // _MICROSECOND for value in values]
    except (TypeError, OverflowError):  # a tzinfo without an offset counts as naive
        return values
    return pl.Series(micros, dtype=pl.Int64()).cast(UTC_MICROS)


def _shared_texts(values: list[Any]) -> pl.Series | list[Any]:
    """A text column whose values repeat (system prompts: a few per app, kilobytes each) with each distinct text
    copied once: polars' gather makes the rows views of that one buffer. Other columns are left to polars."""
    index: dict[str, int] = {}
    codes: list[int | None] = []
    for value in values:
        if value is None:
            codes.append(None)
        elif type(value) is str:
            codes.append(index.setdefault(value, len(index)))
        else:
            return values
    if len(index) * 2 > len(values):
        return values  # mostly distinct: nothing to share
    return pl.Series(list(index), dtype=pl.String()).gather(pl.Series(codes, dtype=pl.UInt32()))


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Add missing canonical ingest columns as nulls, cast known ones, keep the canonical order."""
    exprs = []
    for name, dtype in INGEST_SCHEMA.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(exprs)
