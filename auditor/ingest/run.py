"""read_paths: expand paths, stream every file's records through detection and the format parsers, and build
the canonical frame in chunks (memory is bounded by the output, not by the input files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from auditor.config import DEFAULT_ATTRIBUTION
from auditor.ingest import canonical, fast
from auditor.ingest.context import RecordContext, Row
from auditor.ingest.detect import FINISHERS, FORMATS, PARSERS, detect, unknown_reason
from auditor.ingest.paths import expand_paths
from auditor.ingest.reader import (
    PARQUET_MAGIC,
    LineBlock,
    Record,
    iter_items,
    iter_records,
    line_record,
    magic,
    parquet_columns,
    read_parquet_rows,
)
from auditor.ingest.result import IngestResult, SkippedRecord
from auditor.ingest.values import RecordError
from auditor.schema import INGEST_SCHEMA, empty_frame, rows_to_frame

CHUNK_ROWS = 20_000


ChunkHook = Callable[[pl.DataFrame], pl.DataFrame]


class _Frames:
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


def read_paths(
    paths: Sequence[str],
    *,
    input_format: str | None = None,
    attribution: Mapping[str, Sequence[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    on_chunk: ChunkHook | None = None,
) -> IngestResult:
    """Read every log file under `paths` into the canonical frame; bad input is skipped and reported, not raised.

    `input_format` forces one source format for every record (see FORMATS); ValueError if it is unknown.
    `progress` receives the number of (on-disk) bytes read since its last call. `on_chunk` maps every chunk of
    INGEST_SCHEMA rows to what is kept of it (same columns in every chunk); without it the frame is INGEST_SCHEMA.
    """
    if input_format is not None and input_format not in PARSERS:
        raise ValueError(f"unknown input format {input_format!r}; known: {', '.join(sorted(FORMATS))}")
    files, skipped = expand_paths(paths)
    frames = _Frames(on_chunk)
    ignored: Counter[str] = Counter()
    state: dict[str, Any] = {}
    attribution = attribution if attribution is not None else DEFAULT_ATTRIBUTION
    plan = fast.plan_for(attribution) if input_format in (None, "envelope") else None
    for path in files:
        ctx = RecordContext(file=str(path), line=0, attribution=attribution, state=state)
        for record in _file_records(path, ctx, frames, skipped, progress, plan):
            if record.error is not None or record.line is None:
                skipped.append(SkippedRecord(ctx.file, record.line, record.error or "unreadable"))
                continue
            ctx.line = record.line
            _parse(record.obj, ctx, input_format, frames, ignored, skipped)
    for finish in FINISHERS:
        rows, kinds = finish(state)
        for row in rows:
            frames.add(row)
        ignored.update(kinds)
    frame = frames.frame()
    return IngestResult(
        frame=frame,
        files=[str(p) for p in files],
        records_read=frames.rows_seen + sum(ignored.values()) + len(skipped),
        skipped=skipped,
        formats=dict(sorted(frames.formats.items())),
        ignored=dict(sorted(ignored.items())),
    )


def _file_records(
    path: Path,
    ctx: RecordContext,
    frames: _Frames,
    skipped: list[SkippedRecord],
    progress: Callable[[int], None] | None,
    plan: fast.Plan | None,
) -> Iterator[Record]:
    """The file's records for the per-record path; JSONL blocks go through the fast path first (fast.py), which
    hands back the lines it does not take. A file whose first block is mostly slow lines stays per-record."""
    use_fast = plan is not None
    for item in _records(path, ctx, frames, skipped, progress, blocks=use_fast):
        if isinstance(item, Record):
            yield item
            continue
        if use_fast and plan is not None:
            result = fast.parse_block(item.data, item.first_line, ctx.file, plan)
            if result.frame is not None:
                frames.add_frame(result.frame)
            slow = result.slow
            use_fast = result.fast_rows >= fast.MIN_FAST_SHARE * (result.fast_rows + len(slow))
        else:
            lines = item.data.split(b"\n")
            slow = [(item.first_line + i, raw) for i, raw in enumerate(lines)]
        for number, raw in slow:
            record = line_record(number, raw)
            if record is not None:
                yield record


def _records(
    path: Path,
    ctx: RecordContext,
    frames: _Frames,
    skipped: list[SkippedRecord],
    progress: Callable[[int], None] | None,
    *,
    blocks: bool,
) -> Iterable[Record | LineBlock]:
    """Records of one file (JSONL as LineBlocks); canonical Parquet goes straight to `frames` (fast path)."""
    try:
        head = magic(path)
    except OSError as exc:
        return [Record(None, error=f"cannot open: {exc.strerror or exc}")]
    if not head.startswith(PARQUET_MAGIC):
        return iter_items(path, progress) if blocks else iter_records(path, progress)
    try:
        columns = parquet_columns(path)
        if canonical.is_canonical(columns):
            frame, bad = canonical.read_parquet(ctx.file, pl.read_parquet(path))
            frames.add_frame(frame)
            skipped.extend(bad)
            if progress is not None:
                progress(path.stat().st_size)
            return []
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        return [Record(None, error=f"not a readable Parquet file ({exc})")]
    return _parquet_rows(path, progress)


def _parquet_rows(path: Path, progress: Callable[[int], None] | None) -> Iterator[Record]:
    last = 0
    try:
        for record in read_parquet_rows(path, progress):
            last = record.line or last
            yield record
    except (OSError, ValueError) as exc:
        yield Record(last + 1, error=f"Parquet data cannot be read from here on ({exc})")


def _parse(
    obj: Any,
    ctx: RecordContext,
    input_format: str | None,
    frames: _Frames,
    ignored: Counter[str],
    skipped: list[SkippedRecord],
) -> None:
    if not isinstance(obj, dict):
        skipped.append(SkippedRecord(ctx.file, ctx.line, f"expected a JSON object, got {type(obj).__name__}"))
        return
    name = input_format or detect(obj)
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
