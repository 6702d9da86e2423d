"""Parsed rows -> kept chunks: the per-record parse step and the chunked frame builder, shared by the serial read
(run.py) and the worker processes (parallel.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl

from auditor.ingest.context import RecordContext, Row
from auditor.ingest.detect import PARSERS, detect, unknown_reason
from auditor.ingest.result import SkippedRecord
from auditor.ingest.values import RecordError
from auditor.schema import INGEST_SCHEMA, empty_frame, rows_to_frame

CHUNK_ROWS = 20_000

ChunkHook = Callable[[pl.DataFrame], pl.DataFrame]


class Frames:
    """Rows -> frames of CHUNK_ROWS, so Python dicts never pile up for the whole input.

    Each finished chunk (INGEST_SCHEMA) goes through `on_chunk` before it is kept: the scan filters it and cuts its
    texts down there (auditor.reduce), so full texts never exist for more than one chunk at a time.
    """

    def __init__(self, on_chunk: ChunkHook | None = None) -> None:
        self.rows: list[Row] = []
        self.frames: list[pl.DataFrame] = []
        self.pending: list[pl.DataFrame] = []  # fast-path frames not yet CHUNK_ROWS long
        self.formats: Counter[str] = Counter()
        self.on_chunk = on_chunk

    def keep(self, frame: pl.DataFrame) -> None:
        frame = frame.select(list(INGEST_SCHEMA))
        self.frames.append(self.on_chunk(frame) if self.on_chunk is not None else frame)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.formats[row["source_format"]] += 1
        if len(self.rows) >= CHUNK_ROWS:
            self.flush()

    def add_kept(self, kept: list[pl.DataFrame], formats: Counter[str]) -> None:
        """Chunks that already went through on_chunk elsewhere (a worker process), with their row counts."""
        self.frames.extend(kept)
        self.formats.update(formats)

    def add_frame(self, frame: pl.DataFrame) -> None:
        """Rows built as a frame (fast paths); kept in chunks of at least CHUNK_ROWS."""
        if frame.is_empty():
            return
        self.pending.append(frame)
        for name, count in frame["source_format"].value_counts().iter_rows():
            self.formats[name] += count
        if sum(f.height for f in self.pending) >= CHUNK_ROWS:
            self.flush_frames()

    def flush_frames(self) -> None:
        if self.pending:
            self.keep(pl.concat(self.pending, how="vertical") if len(self.pending) > 1 else self.pending[0])
            self.pending = []

    def flush(self) -> None:
        if self.rows:
            self.keep(rows_to_frame(self.rows))
            self.rows = []
        self.flush_frames()

    @property
    def rows_seen(self) -> int:
        """Rows produced by the parsers, before `on_chunk` filters any."""
        return sum(self.formats.values())

    def frame(self) -> pl.DataFrame:
        self.flush()
        if not self.frames:
            self.keep(empty_frame())
        return pl.concat(self.frames, how="vertical", rechunk=False)


def parse_record(
    obj: Any,
    ctx: RecordContext,
    input_format: str | None,
    frames: Frames,
    ignored: Counter[str],
    skipped: list[SkippedRecord],
) -> None:
    if not isinstance(obj, dict):
        skipped.append(SkippedRecord(ctx.file, ctx.line, f"expected a JSON object, got {type(obj).__name__}"))
        return
    try:
        name = input_format or detect(obj)
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        # a detector meeting a shape it did not expect: skip the record with a reason, never crash the scan
        reason = f"unexpected structure while detecting the format ({type(exc).__name__}: {exc})"
        skipped.append(SkippedRecord(ctx.file, ctx.line, reason))
        return
    if name is None:
        skipped.append(SkippedRecord(ctx.file, ctx.line, unknown_reason(obj)))
        return
    try:
        parsed = PARSERS[name](obj, ctx)
    except RecordError as exc:
        skipped.append(SkippedRecord(ctx.file, ctx.line, f"{name}: {exc}"))
        return
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        # A structure the parser did not expect (e.g. a list where an object belongs): user data, not a crash.
        reason = f"{name}: unexpected structure ({type(exc).__name__}: {exc})"
        skipped.append(SkippedRecord(ctx.file, ctx.line, reason))
        return
    if isinstance(parsed, dict):
        frames.add(parsed)
    elif isinstance(parsed, str):
        ignored[parsed] += 1
