"""read_paths: expand paths, stream every file's records through detection and the format parsers, and build
the canonical frame in chunks (memory is bounded by the output, not by the input files)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.config import DEFAULT_ATTRIBUTION
from auditor.ingest import canonical, fast, parallel
from auditor.ingest.collect import CHUNK_ROWS, ChunkHook, Frames, parse_record
from auditor.ingest.context import RecordContext
from auditor.ingest.detect import FINISHERS, FORMATS, PARSERS
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


def read_paths(
    paths: Sequence[str],
    *,
    input_format: str | None = None,
    attribution: Mapping[str, Sequence[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    on_chunk: ChunkHook | None = None,
    workers: int | None = None,
) -> IngestResult:
    """Read every log file under `paths` into the canonical frame; bad input is skipped and reported, not raised.

    `input_format` forces one source format for every record (see FORMATS); ValueError if it is unknown.
    `progress` receives the number of (on-disk) bytes read since its last call. `on_chunk` maps every chunk of
    INGEST_SCHEMA rows to what is kept of it (same columns in every chunk); without it the frame is INGEST_SCHEMA.
    Big JSONL files are parsed by `workers` processes (default: one per core; parallel.py), which needs a
    picklable `on_chunk`.
    """
    if input_format is not None and input_format not in PARSERS:
        raise ValueError(f"unknown input format {input_format!r}; known: {', '.join(sorted(FORMATS))}")
    files, skipped = expand_paths(paths)
    frames = Frames(on_chunk)
    ignored: Counter[str] = Counter()
    state: dict[str, Any] = {}
    attribution = attribution if attribution is not None else DEFAULT_ATTRIBUTION
    plan = fast.plan_for(attribution) if input_format in (None, "envelope") else None
    workers = parallel.worker_count() if workers is None else workers
    big = sum(_size(path) for path in files) >= parallel.MIN_BYTES
    reader = parallel.ParallelReader(workers, input_format, attribution, on_chunk) if workers > 1 and big else None
    with reader if reader is not None else nullcontext():
        if reader is not None and plan is None:
            reader.prefetch(files)
        for path in files:
            results = reader.read_file(path, progress) if reader is not None and plan is None else None
            if results is not None:
                for result in results:
                    frames.add_kept(result.frames, result.formats)
                    skipped.extend(result.skipped)
                    ignored.update(result.ignored)
                continue
            ctx = RecordContext(file=str(path), line=0, attribution=attribution, state=state)
            for record in _file_records(path, ctx, frames, skipped, progress, plan):
                if record.error is not None or record.line is None:
                    skipped.append(SkippedRecord(ctx.file, record.line, record.error or "unreadable"))
                    continue
                ctx.line = record.line
                parse_record(record.obj, ctx, input_format, frames, ignored, skipped)
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


def _size(path: Path) -> int:
    """Bytes of input as JSONL would hold them: Parquet compresses the same requests ~5x."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return size * 5 if path.suffix.lower() == ".parquet" else size


def _file_records(
    path: Path,
    ctx: RecordContext,
    frames: Frames,
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
    frames: Frames,
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
            _read_canonical_parquet(path, ctx, frames, skipped, progress)
            return []
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        return [Record(None, error=f"not a readable Parquet file ({exc})")]
    return _parquet_rows(path, progress)


def _read_canonical_parquet(
    path: Path,
    ctx: RecordContext,
    frames: Frames,
    skipped: list[SkippedRecord],
    progress: Callable[[int], None] | None,
) -> None:
    """Canonical Parquet in record batches of CHUNK_ROWS, so a file's full texts are never all in memory."""
    handle = pq.ParquetFile(path)
    first_row = 1
    done_bytes = 0
    for group in range(handle.num_row_groups):
        for batch in handle.iter_batches(batch_size=CHUNK_ROWS, row_groups=[group]):
            frame = pl.from_arrow(pa.Table.from_batches([batch]))
            assert isinstance(frame, pl.DataFrame)
            kept, bad = canonical.read_parquet(ctx.file, frame, first_row)
            frames.add_frame(kept)
            skipped.extend(bad)
            first_row += batch.num_rows
        if progress is not None:  # compressed bytes of the row group, so the bar ends at the file size
            group_bytes = handle.metadata.row_group(group).total_byte_size
            step = min(group_bytes, path.stat().st_size - done_bytes)
            done_bytes += step
            progress(step)
    if progress is not None and path.stat().st_size > done_bytes:
        progress(path.stat().st_size - done_bytes)


def _parquet_rows(path: Path, progress: Callable[[int], None] | None) -> Iterator[Record]:
    last = 0
    try:
        for record in read_parquet_rows(path, progress):
            last = record.line or last
            yield record
    except (OSError, ValueError) as exc:
        yield Record(last + 1, error=f"Parquet data cannot be read from here on ({exc})")
