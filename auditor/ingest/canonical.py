"""llm-audit's own canonical rows (columns = auditor.schema.INGEST_SCHEMA), as JSONL or Parquet.

JSONL rows are type-checked field by field. Parquet files whose columns are canonical take a fast path: read
with polars, values that do not fit a column's type are reported (and those rows skipped), then conformed.
Provenance (source_format/file/line) always names the file being read, not a file a previous run read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import polars as pl

from auditor.ingest.context import Parsed, RecordContext, Row
from auditor.ingest.result import SkippedRecord
from auditor.ingest.values import RecordError, flag, number, text, timestamp, token_count
from auditor.schema import CANONICAL_SCHEMA, INGEST_SCHEMA, TOKEN_COLUMNS, conform

NAME = "canonical"
DESCRIPTION = "llm-audit canonical rows (docs/canonical-format.md) as JSONL or Parquet"

_PROVENANCE = ("source_format", "source_file", "source_line")
_KNOWN = set(CANONICAL_SCHEMA)


def is_canonical(columns: Any) -> bool:
    keys = set(columns)
    return keys <= _KNOWN and "model" in keys and bool(keys & {"input_tokens", "output_tokens", "prompt_text"})


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    if not is_canonical(obj):
        unknown = sorted(set(obj) - _KNOWN)
        hint = f"unknown column(s) {', '.join(unknown[:5])}" if unknown else "needs model and a token column"
        raise RecordError(f"not a canonical row ({hint})")
    row: Row = ctx.base(NAME)
    for name, dtype in INGEST_SCHEMA.items():
        if name in _PROVENANCE or name not in obj:
            continue
        value = obj[name]
        if name in TOKEN_COLUMNS:
            row[name] = token_count(value, name)
        elif dtype == pl.Int64():
            row[name] = None if value is None else int(_int(value, name))
        elif dtype == pl.Float64():
            row[name] = number(value, name)
        elif dtype == pl.Boolean():
            row[name] = flag(value)
            if value is not None and row[name] is None:
                raise RecordError(f"{name} is {value!r}, expected true or false")
        elif name == "timestamp":
            row[name] = timestamp(value, name)
        else:
            if value is not None and not isinstance(value, str):
                raise RecordError(f"{name} is {value!r}, expected a string")
            row[name] = value
    row["request_id"] = text(row.get("request_id")) or ctx.fallback_id
    row["tokens_estimated"] = bool(row.get("tokens_estimated"))
    row["batch"] = bool(row.get("batch"))
    return row


def _int(value: Any, name: str) -> int:
    result = number(value, name)
    if result is None or not result.is_integer():
        raise RecordError(f"{name} is {value!r}, expected an integer")
    return int(result)


def read_parquet(path: str, frame: pl.DataFrame, first_row: int = 1) -> tuple[pl.DataFrame, list[SkippedRecord]]:
    """Canonical Parquet fast path: vectorised type check, then conform to INGEST_SCHEMA.

    `frame` holds the file's rows from number `first_row` (1-based) on: big files come in record batches.
    """
    frame = frame.with_row_index("__line", offset=first_row)
    bad = pl.lit(False)
    reasons = []
    for name, dtype in INGEST_SCHEMA.items():
        if name not in frame.columns or name in _PROVENANCE:
            continue
        cast = pl.col(name).cast(dtype, strict=False)
        broken = pl.col(name).is_not_null() & cast.is_null()
        if name in TOKEN_COLUMNS:
            broken = broken | (cast < 0).fill_null(False)
        reasons.append(pl.when(broken).then(pl.lit(f"{name}: value does not fit {dtype} or is negative")))
        bad = bad | broken
    skipped: list[SkippedRecord] = []
    if reasons:
        flagged = frame.select("__line", pl.coalesce(reasons).alias("__reason"))
        flagged = flagged.filter(pl.col("__reason").is_not_null())
        skipped = [SkippedRecord(path, int(line), str(reason)) for line, reason in flagged.iter_rows()]
        frame = frame.filter(~bad)
    basename = os.path.basename(path)
    out = conform(frame.drop([c for c in _PROVENANCE if c in frame.columns])).with_columns(
        pl.lit(NAME).alias("source_format"),
        pl.lit(path).alias("source_file"),
        frame["__line"].cast(pl.Int64).alias("source_line"),
        pl.col("tokens_estimated").fill_null(False),
        pl.col("batch").fill_null(False),
    )
    out = out.with_columns(
        pl.coalesce(pl.col("request_id"), pl.lit(basename + ":") + pl.col("source_line").cast(pl.String))
    )
    return out.select(list(INGEST_SCHEMA)), skipped
