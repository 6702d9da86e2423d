"""JSONL files parsed by worker processes, block by block (issue 7: the per-record parse is the cost at volume).

Workers read an uncompressed JSONL file's byte ranges themselves (cut at newlines; a first pass counts lines so
numbering is absolute). A compressed file is decompressed by the main process, which hands out blocks of whole
lines (reader.iter_items) -- unless there are several, then each worker takes whole files. A worker parses its
lines with the same per-record code as the serial read and passes its chunks through the same `on_chunk` hook
(the scan's filter + token estimate + lever features + text cut). Only the reduced chunks come back. Results are
merged in file and block order, so skipped records keep their order.

Canonical Parquet files go one row group per task: the worker reads its row group itself.

Records that need state across lines (Claude Code de-duplication, Codex turn context, OpenAI Batch joins) cannot be
split across workers: a block whose parse touched that state makes the whole file go back to the serial read.
Files that are not line-delimited (JSON arrays) and non-canonical Parquet are read serially too.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from auditor.ingest import canonical
from auditor.ingest.collect import CHUNK_ROWS, ChunkHook, Frames, parse_record
from auditor.ingest.context import RecordContext
from auditor.ingest.reader import (  # the private names: the same container decision as the serial reader
    GZIP_MAGIC,
    LINE_SUFFIXES,
    PARQUET_MAGIC,
    ZSTD_MAGIC,
    LineBlock,
    Record,
    _chunks,
    _parses,
    _Source,
    base_suffix,
    iter_items,
    iter_records,
    line_record,
    magic,
)
from auditor.ingest.result import SkippedRecord

BLOCK_BYTES = 64 << 20  # ~12K envelope lines: big enough to amortize the hand-off, small enough to bound memory
MIN_BYTES = 256 << 20  # below this much input, starting processes costs more than it saves
IN_FLIGHT_PER_WORKER = 2  # blocks queued per worker: keeps workers busy while bounding raw bytes held

# Allocator settings of the worker processes, which read them from the environment when they start: keep freed
# memory for the next block instead of handing it back to the OS, which would fault it in again page by page (a
# minor fault costs ~3 us on a VM: the workers of a 1M-request scan took ~5.5M of them, ~10 s of system time). A
# worker holds about one block's worth of memory anyway; the main process keeps the defaults (its peaks are the
# scan's). jemalloc (polars) takes the last value of an option: ours follow polars' defaults and any the user set.
# GLIBC_TUNABLES (glibc malloc, which Python's larger objects use) is left alone when the user set it.
_JEMALLOC_KEEP = "dirty_decay_ms:-1,muzzy_decay_ms:-1"  # never purge freed pages
_GLIBC_KEEP = (
    "glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=1073741824:glibc.malloc.top_pad=67108864"
)


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment variables to set while workers start, given the current environment."""
    jemalloc = environ.get("_RJEM_MALLOC_CONF")
    env = {"_RJEM_MALLOC_CONF": f"{jemalloc},{_JEMALLOC_KEEP}" if jemalloc else _JEMALLOC_KEEP}
    if "GLIBC_TUNABLES" not in environ:
        env["GLIBC_TUNABLES"] = _GLIBC_KEEP
    return env


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


def parse_file(file: str) -> BlockResult:
    """A whole (compressed) file the serial way, decompression included (runs in a worker)."""
    return _parse_records(file, iter_records(Path(file)))


def count_lines(file: str, start: int, end: int) -> int:
    """Newlines in bytes [start, end) of a plain file (runs in a worker: phase one of a plain file's read)."""
    with open(file, "rb") as handle:
        handle.seek(start)
        return handle.read(end - start).count(b"\n")


def parse_range(file: str, start: int, end: int, first_line: int) -> BlockResult:
    """Lines in bytes [start, end) of a plain file, the first numbered `first_line` (runs in a worker)."""
    with open(file, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    return parse_block(file, first_line, data)


def parse_block(file: str, first_line: int, data: bytes) -> BlockResult:
    """Parse one block of lines exactly as the serial read would (runs in a worker)."""
    lines = (line_record(first_line + offset, raw) for offset, raw in enumerate(data.split(b"\n")))
    return _parse_records(file, (record for record in lines if record is not None))


def _parse_records(file: str, records: Iterable[Record]) -> BlockResult:
    """The serial read's loop over one file's records, into chunks through the worker's hook."""
    assert _SETUP is not None, "runs in a worker set up by ParallelReader"
    input_format, attribution, on_chunk = _SETUP
    frames = Frames(on_chunk)
    result = BlockResult()
    ctx = RecordContext(file=file, line=0, attribution=attribution)
    for record in records:
        if record.error is not None or record.line is None:
            result.skipped.append(SkippedRecord(file, record.line, record.error or "unreadable"))
            continue
        ctx.line = record.line
        parse_record(record.obj, ctx, input_format, frames, result.ignored, result.skipped)
    frames.flush()
    result.frames, result.formats = frames.frames, frames.formats
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
        self.broken = False  # workers could not start (e.g. a script without `if __name__ == "__main__":`)
        self.whole: dict[Path, Future[BlockResult]] = {}  # compressed files handed to a worker whole
        self._saved_env: dict[str, str | None] = {}  # the variables worker_env changed, with their old values

    def prefetch(self, paths: Sequence[Path]) -> None:
        """With several big compressed files, each worker takes whole files: decompression is sequential, and
        done by the main process it would compete with the workers it feeds."""
        compressed = [path for path in paths if _is_big_compressed(path)]
        if len(compressed) < 2 or self.broken:
            return
        try:
            self.whole = {path: self.pool.submit(parse_file, str(path)) for path in compressed}
        except BrokenProcessPool:
            self.broken = True

    def __enter__(self) -> ParallelReader:
        # Workers are spawned by the first submits, inside the with block: they start with worker_env's settings.
        for name, value in worker_env(os.environ).items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            for name, old in self._saved_env.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old
            self._saved_env.clear()

    def read_file(self, path: Path, progress: Callable[[int], None] | None) -> list[BlockResult] | None:
        """The file's block results in order, or None when it must be read serially (see the module docstring).

        Read errors of the file itself (truncated compression) come back as one-record results in their place.
        """
        if self.broken:
            return None
        try:
            return self._read_file(path, progress)
        except BrokenProcessPool:
            # Spawned workers re-import the caller's main module; unguarded scripts cannot start them. Serial
            # reading gives the same result, only slower.
            self.broken = True
            return None

    def _read_file(self, path: Path, progress: Callable[[int], None] | None) -> list[BlockResult] | None:
        if path in self.whole:
            result = self.whole.pop(path).result()
            if progress is not None:
                progress(path.stat().st_size)
            return None if result.stateful else [result]
        try:
            if path.stat().st_size < BLOCK_BYTES:
                return None  # small files (most Claude Code / Codex transcripts) are not worth a worker
            head = magic(path)
            if head.startswith(PARQUET_MAGIC):
                return self._read_parquet(path, progress)
            if not head.startswith((GZIP_MAGIC, ZSTD_MAGIC)):
                return self._read_plain(path, progress)
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

    def _read_plain(self, path: Path, progress: Callable[[int], None] | None) -> list[BlockResult] | None:
        """An uncompressed JSONL file: workers read their own byte ranges, so the main process moves no data.

        Phase one counts each range's newlines (line numbers must be absolute: a request without an id is
        named file:line, and --sample hashes that name); phase two parses.
        """
        if not _read_line_by_line(path):
            return None
        ranges = _ranges(path, path.stat().st_size)
        counted = [self.pool.submit(count_lines, str(path), a, b) for a, b in ranges]
        counts = [future.result() for future in counted]
        firsts = [1 + sum(counts[:k]) for k in range(len(ranges))]
        futures = [
            self.pool.submit(parse_range, str(path), a, b, first) for (a, b), first in zip(ranges, firsts, strict=True)
        ]
        results = []
        for (a, b), future in zip(ranges, futures, strict=True):
            results.append(future.result())
            if progress is not None:
                progress(b - a)
        if any(result.stateful for result in results):
            return None
        return results

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


def _is_big_compressed(path: Path) -> bool:
    try:
        return path.stat().st_size >= BLOCK_BYTES and magic(path).startswith((GZIP_MAGIC, ZSTD_MAGIC))
    except OSError:
        return False


def _read_line_by_line(path: Path) -> bool:
    """Whether the serial reader would take this file as JSONL lines (reader.iter_records' container decision)."""
    first = _Source(_chunks(path, None)).peek_first_line()
    if not first.strip() or b"\x00" in first[:8192] or first.startswith(b"["):
        return False
    return base_suffix(path) in LINE_SUFFIXES or _parses(first)


def _ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about BLOCK_BYTES, each ending just after a newline (the last at end of file)."""
    starts = [0]
    with path.open("rb") as handle:
        position = BLOCK_BYTES
        while position < size:
            handle.seek(position)
            while True:
                window = handle.read(1 << 16)
                newline = window.find(b"\n")
                if not window or newline >= 0:
                    position = position + newline + 1 if newline >= 0 else size
                    break
                position += len(window)
            if position >= size:
                break
            starts.append(position)
            position += BLOCK_BYTES
    return list(zip(starts, [*starts[1:], size], strict=True))


def _is_read_error(item: Record) -> bool:
    return item.error is not None and item.obj is None


def _result(entry: Future[BlockResult] | BlockResult) -> BlockResult:
    return entry if isinstance(entry, BlockResult) else entry.result()


def _cancel(pending: deque[Future[BlockResult] | BlockResult]) -> None:
    for entry in pending:
        if isinstance(entry, Future):
            entry.cancel()
