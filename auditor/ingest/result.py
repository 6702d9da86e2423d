"""The ingest result types (kept apart from __init__ so format modules can import them without cycles)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass
class SkippedRecord:
    file: str
    line: int | None  # 1-based line / row / array element; None = the whole file or path
    reason: str


@dataclass
class IngestResult:
    frame: pl.DataFrame  # INGEST_SCHEMA columns (or what read_paths' on_chunk made of them), in no particular order
    files: list[str]  # files read (as given/resolved, sorted)
    records_read: int  # records seen: billed rows + non-billable records + skipped
    skipped: list[SkippedRecord] = field(default_factory=list)  # all of them; the caller truncates for display
    formats: dict[str, int] = field(default_factory=dict)  # source_format -> rows produced
    ignored: dict[str, int] = field(default_factory=dict)  # non-billable records by kind
