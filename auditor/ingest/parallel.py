"""JSONL files parsed by worker processes, block by block (issue 7: the per-record parse is the cost at volume).

The main process reads a JSONL file (plain, gzip or zstd) as blocks of whole lines (reader.iter_items) and hands
each block to a worker, which parses its lines with the same per-record code as the serial read and passes its
chunks through the same `on_chunk` hook (the scan's filter + token estimate + lever features + text cut). Only the
reduced chunks come back. Results are merged in block order, so skipped records keep their order.

Canonical Parquet files go one row group per task: the worker reads its row group itself.

Records that need state across lines (Claude Code de-duplication, Codex turn context, OpenAI Batch joins) cannot be
split across workers: a block whose parse touched that state makes the whole file go back to the serial read.
Files that are not line-delimited (JSON arrays) and non-canonical Parquet are read serially too.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.ingest import canonical
from auditor.ingest.collect import CHUNK_ROWS, ChunkHook, Frames, parse_record
from auditor.ingest.context import RecordContext
from auditor.ingest.reader import PARQUET_MAGIC, LineBlock, Record, iter_items, line_record, magic
from auditor.ingest.result import SkippedRecord

BLOCK_BYTES = 64 << 20  # ~12K envelope lines: big enough to amortize the hand-off, small enough to bound memory
MIN_BYTES = 256 << 20  # below this much input, starting processes costs more than it saves
IN_FLIGHT_PER_WORKER = 2  # blocks queued per worker: keeps workers busy while bounding raw bytes held


def worker_count() -> int:
    """Worker processes to use: one per core (LLM_AUDIT_WORKERS overrides; 1 = serial)."""
    configured = os.environ.get("LLM_AUDIT_WORKERS")
    if configured and configured.isdigit():
        return max(1, int(configured))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class BlockResult:
    frames: list[pl.DataFrame] = field(default_factory=list)  # chunks after on_chunk
    skipped: list[SkippedRecord] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)  # rows produced per source format (before on_chunk)
    ignored: Counter[str] = field(default_factory=Counter)
    stateful: bool = False  # a record needed cross-line state: the file must be read serially


# Set once per worker process by _init (the hook is a picklable callable; see pipeline.ChunkReducer).
_SETUP: tuple[str | None, Mapping[str, Sequence[str]], ChunkHook | None] | None = None


def _init(input_format: str | None, attribution: Mapping[str, Sequence[str]], on_chunk: ChunkHook | None) -> None:
    global _SETUP
    _SETUP = (input_format, attribution, on_chunk)


def parse_parquet_group(file: str, group: int, first_row: int) -> BlockResult:
    """One row group of a canonical Parquet file, in batches through the chunk hook (runs in a worker)."""
    assert _SETUP is not None, "parse_parquet_group runs in a worker set up by ParallelReader"
    _, _, on_chunk = _SETUP
    frames = Frames(on_chunk)
    result = BlockResult()
    for batch in pq.ParquetFile(file).iter_batches(batch_size=CHUNK_ROWS, row_groups=[group]):
        frame = pl.from_arrow(pa.Table.from_batches([batch]))
        assert isinstance(frame, pl.DataFrame)
        kept, bad = canonical.read_parquet(file, frame, first_row)
        frames.add_frame(kept)
        result.skipped.extend(bad)
        first_row += batch.num_rows
    frames.flush()
    result.frames, result.formats = frames.frames, frames.formats
    return result


def parse_block(file: str, first_line: int, data: bytes) -> BlockResult:
    """Parse one block of lines exactly as the serial read would (runs in a worker)."""
    assert _SETUP is not None, "parse_block runs in a worker set up by ParallelReader"
    input_format, attribution, on_chunk = _SETUP
    frames = Frames(on_chunk)
    result = BlockResult()
    ctx = RecordContext(file=file, line=0, attribution=attribution)
    for offset, raw in enumerate(data.split(b"\n")):
        record = line_record(first_line + offset, raw)
        if record is None:
            continue
        if record.error is not None or record.line is None:
            result.skipped.append(SkippedRecord(file, record.line, record.error or "unreadable"))
            continue
        ctx.line = record.line
        parse_record(record.obj, ctx, input_format, frames, result.ignored, result.skipped)
    frames.flush()
    result.frames = frames.frames
    result.formats = frames.formats
    result.stateful = bool(ctx.state) or bool(ctx.file_state)
    return result


class ParallelReader:
    """A pool of worker processes reading JSONL files; use as a context manager."""

    def __init__(
        self,
        workers: int,
        input_format: str | None,
        attribution: Mapping[str, Sequence[str]],
        on_chunk: ChunkHook | None,
    ) -> None:
        # spawn, not fork: forking a process that already runs polars' thread pool can deadlock the child.
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(input_format, attribution, on_chunk),
        )
        self.window = workers * IN_FLIGHT_PER_WORKER

    def __enter__(self) -> ParallelReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def read_file(self, path: Path, progress: Callable[[int], None] | None) -> list[BlockResult] | None:
        """The file's block results in order, or None when it must be read serially (see the module docstring).

        Read errors of the file itself (truncated compression) come back as one-record results in their place.
        """
        try:
            if path.stat().st_size < BLOCK_BYTES:
                return None  # small files (most Claude Code / Codex transcripts) are not worth a worker
            if magic(path).startswith(PARQUET_MAGIC):
                return self._read_parquet(path, progress)
        except OSError:
            return None
        pending: deque[Future[BlockResult] | BlockResult] = deque()
        done: list[BlockResult] = []
        for item in iter_items(path, progress, block_bytes=BLOCK_BYTES):
            if isinstance(item, LineBlock):
                pending.append(self.pool.submit(parse_block, str(path), item.first_line, item.data))
            elif _is_read_error(item):
                pending.append(BlockResult(skipped=[SkippedRecord(str(path), item.line, item.error or "unreadable")]))
            else:
                _cancel(pending)
                return None  # not line-delimited (a JSON array, one object): the serial reader handles it
            while len(pending) > self.window:
                done.append(_result(pending.popleft()))
        done.extend(_result(entry) for entry in pending)
        if any(result.stateful for result in done):
            return None
        return done

    def _read_parquet(self, path: Path, progress: Callable[[int], None] | None) -> list[BlockResult] | None:
        """Canonical Parquet, one row group per task; other Parquet files are read serially."""
        try:
            handle = pq.ParquetFile(path)
            if not canonical.is_canonical(handle.schema_arrow.names):
                return None
            sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
        except (OSError, ValueError, pa.ArrowException):
            return None  # the serial read reports the problem with its file and reason
        firsts = [1 + sum(sizes[:g]) for g in range(len(sizes))]
        futures = [self.pool.submit(parse_parquet_group, str(path), g, firsts[g]) for g in range(len(sizes))]
        results = [future.result() for future in futures]
        if progress is not None:
            progress(path.stat().st_size)
        return results


def _is_read_error(item: Record) -> bool:
    return item.error is not None and item.obj is None


def _result(entry: Future[BlockResult] | BlockResult) -> BlockResult:
    return entry if isinstance(entry, BlockResult) else entry.result()


def _cancel(pending: deque[Future[BlockResult] | BlockResult]) -> None:
    for entry in pending:
        if isinstance(entry, Future):
            entry.cancel()
