"""Spill mode (issue 7: 10M requests in 8 GiB): the reduced rows wait on disk, only the base columns stay in memory.

The reduced frame is ~1.4 KB per request (text heads, lever features), ~14 GiB at 10M requests. In spill mode the
chunk hook (pipeline.ChunkReducer, which runs in the ingest workers too) writes every reduced chunk whole to an
Arrow IPC *part* file and keeps only a stub: the STUB_COLUMNS (sorting, pricing, the report, the plan) plus `_part`
(the part's random 64-bit id) and `_part_row` (the row's index in its part). After the sort the sort-only columns
go, and `SpillStore` loads the other columns a lever declares (`Lever.reads`, its own `_<lever id>_*` features) for
that lever only, in the sorted row order, and the pipeline frees them before the next lever. `SpillStore.rows`
reads some columns of a few rows (the text heads a finding shows) from the parts holding them.

Mode: LLM_AUDIT_SPILL=auto|always|never (default auto). auto spills when the reduced frame, estimated from the
input sizes, would take more than SHARE_OF_AVAILABLE of the memory available or more than MAX_IN_MEMORY bytes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

import polars as pl

from auditor.schema import TOKEN_COLUMNS

SPILL_ENV = "LLM_AUDIT_SPILL"
MODES = ("auto", "always", "never")
PART = "_part"  # UInt64: the part file a stub row's other columns are in
PART_ROW = "_part_row"  # UInt32: the row's index within that part
# Measured on reduced chunks of the benchmark data (10K rows): uncompressed 1,298 B/row, lz4 515, zstd 303; writing
# costs 1.1 / 3.3 / 4.7 us per row against ~80 us to parse it. zstd: 10M requests need ~3 GB of disk, not 13.
COMPRESSION: Literal["zstd"] = "zstd"

# What stays in memory: the sort keys, PriceBook.add_costs' inputs and outputs, what the report and the plan read.
# Every 8 bytes per row here is 80 MB at 10M requests: a column only some levers read is loaded for those levers.
# The sort's other keys (SORT_ONLY) ride in the stubs for the sort and are dropped after it (request_id alone is
# ~50 B per request): the levers showing request ids declare it in `reads` and get it from disk.
BASE_COLUMNS: tuple[str, ...] = (
    *("row_id", "timestamp"),  # sort (SORT_KEYS, with SORT_ONLY) and row_id
    *("model", "provider", *TOKEN_COLUMNS, "batch", "service_tier", "status"),  # pricing
    *("feature", "tenant", "tokens_estimated", "logged_cost_usd"),  # totals, breakdowns, compare_logged
    *("model_id", "price_date", "unpriced", "cost_usd"),  # added by pricing
)

# Base strings with few distinct values (models, features, tenants): Categorical once priced (pipeline.prepare_frame),
# 4 bytes a row instead of a 16-byte view plus the text, ~1.2 GB less at 10M requests.
CATEGORICAL_COLUMNS: tuple[str, ...] = ("provider", "model", "model_id", "feature", "tenant", "service_tier", "status")

SORT_ONLY: tuple[str, ...] = ("source_file", "source_line", "request_id")
STUB_COLUMNS: tuple[str, ...] = (*BASE_COLUMNS, *SORT_ONLY)

# Bytes of reduced frame per byte of input, from the benchmark data (~1.4 KB per request): JSONL ~5.5 KB per request,
# the same requests zstd-compressed ~0.53 KB, canonical Parquet ~1.1 KB.
PLAIN_FACTOR = 0.25
COMPRESSED_FACTOR = 2.5
PARQUET_FACTOR = 1.3
SHARE_OF_AVAILABLE = 0.25  # the sort and pricing briefly hold about two copies, the levers add their own
MAX_IN_MEMORY = 6 << 30

_GZIP, _ZSTD, _PARQUET = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PAR1"


class SpillError(Exception):
    """The spill directory could not be made or written (full disk, no permission); the message says what to do."""


def spill_mode(environ: dict[str, str] | None = None) -> str:
    """LLM_AUDIT_SPILL, checked (ValueError names the allowed values)."""
    value = (environ if environ is not None else os.environ).get(SPILL_ENV, "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{SPILL_ENV}={value!r} is not one of {', '.join(MODES)}")
    return value


def estimated_reduced_bytes(files: Iterable[Path]) -> int:
    """The reduced frame's size in memory, estimated from the input files' sizes and containers."""
    total = 0.0
    for path in files:
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(4)
        except OSError:
            continue  # ingest reports it
        if head.startswith(_PARQUET):
            total += size * PARQUET_FACTOR
        elif head.startswith((_GZIP, _ZSTD)):
            total += size * COMPRESSED_FACTOR
        else:
            total += size * PLAIN_FACTOR
    return int(total)


def available_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable in bytes (Linux); None where the kernel does not say."""
    try:
        with open(meminfo, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def should_spill(mode: str, estimate: int, available: int | None) -> bool:
    """always / never as told; auto when the estimate is over MAX_IN_MEMORY or SHARE_OF_AVAILABLE of `available`."""
    if mode != "auto":
        return mode == "always"
    if estimate > MAX_IN_MEMORY:
        return True
    return available is not None and estimate > SHARE_OF_AVAILABLE * available


def write_part(directory: str, chunk: pl.DataFrame) -> pl.DataFrame:
    """Write the reduced chunk whole as a part file; return its stub (STUB_COLUMNS it has, `_part`, `_part_row`).

    Runs in the ingest workers too. An empty chunk writes nothing (its stub is empty as well).
    """
    part = secrets.randbits(64)
    if chunk.height:
        path = part_path(directory, part)
        try:
            chunk.write_ipc(path, compression=COMPRESSION)
        except (OSError, pl.exceptions.PolarsError) as exc:
            path.unlink(missing_ok=True)
            raise SpillError(_cannot_write(directory, exc)) from exc
    # the stubs of a whole scan wait in memory until the sort: few-valued strings as Categorical (sorted lexically,
    # so the sort order is the same), ~25 bytes a row less each
    few_valued = {*CATEGORICAL_COLUMNS, "source_file"}
    return chunk.select(
        *(pl.col(c).cast(pl.Categorical) if c in few_valued else pl.col(c) for c in chunk.columns if c in STUB_COLUMNS),
        pl.lit(part, dtype=pl.UInt64).alias(PART),
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(PART_ROW),
    )


def _compact(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with their strings in buffers of their own: a gathered string column still points into the whole
    part's buffer, which would stay alive (~3 MB of text heads per part) for the few rows kept."""
    strings = [c for c, dtype in rows.schema.items() if dtype == pl.String]
    return rows.with_columns(pl.concat_str([pl.col(c), pl.lit("")]) for c in strings) if strings else rows


def part_path(directory: str, part: int) -> Path:
    return Path(directory) / f"{part:016x}.arrow"


def _cannot_write(directory: str, exc: BaseException) -> str:
    return (
        f"cannot write the scan's temporary files in {directory} ({exc}). A scan this large keeps its reduced rows "
        "on disk (~300 bytes per request): free space there, or point TMPDIR at a disk with room, "
        f"or set {SPILL_ENV}=never to keep them in memory."
    )


class SpillStore:
    """The part files of one scan: made in a fresh temporary directory, removed by close() (use as a context
    manager, so errors and Ctrl-C remove them too).

    index() learns the parts in ingest order from the stub frame as ingest returned it; order() takes the sorted
    stub, keeps where each sorted row is in ingest order and drops `_part` / `_part_row`; load() then returns
    columns in that sorted order.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.parts: list[int] = []  # in ingest order
        self.columns: list[str] = []  # the part files' columns, in their order
        self.positions: pl.Series | None = None  # ingest-order position of each sorted row; None = same order
        self.height = 0  # rows in the scan
        self._offsets = pl.DataFrame(schema={PART: pl.UInt64, "_offset": pl.UInt64})  # first row of each part

    @classmethod
    def create(cls, parent: str | None = None) -> SpillStore:
        parent = parent if parent is not None else tempfile.gettempdir()
        try:
            return cls(Path(tempfile.mkdtemp(prefix="llm-audit-spill-", dir=parent)))
        except OSError as exc:
            raise SpillError(_cannot_write(parent, exc)) from exc

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def index(self, stubs: pl.DataFrame) -> None:
        """The parts in the order their stubs appear in the ingested frame, and their row counts."""
        counts = stubs.group_by(PART, maintain_order=True).len()
        self.parts = counts[PART].to_list()
        self.height = stubs.height
        offsets = counts["len"].cum_sum() - counts["len"]
        self._offsets = pl.DataFrame({PART: counts[PART], "_offset": offsets.cast(pl.UInt64)})
        self.columns = list(pl.read_ipc_schema(part_path(str(self.directory), self.parts[0]))) if self.parts else []

    def order(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The sorted stub frame without `_part` / `_part_row` and the SORT_ONLY columns; remembers each row's
        ingest-order position."""
        positions = (
            frame.select(PART, PART_ROW)
            .join(self._offsets, on=PART, how="left", maintain_order="left")
            .select((pl.col("_offset") + pl.col(PART_ROW)).alias("position"))
            .to_series()
        )
        if frame.height < 2**32:
            positions = positions.cast(pl.UInt32)  # half the bytes: at 10M rows this is 40 MB
        identity = positions.equals(pl.Series("position", range(frame.height), dtype=positions.dtype))
        self.positions = None if identity else positions
        return frame.drop(PART, PART_ROW, *(c for c in SORT_ONLY if c in frame.columns))

    def load(self, columns: Sequence[str]) -> pl.DataFrame:
        """These part-file columns for every row, in the order order() saw. Peak memory is the result plus one
        column: parts are read whole per column set, then each column is put in order (or made contiguous) alone."""
        names = [c for c in self.columns if c in columns]
        if not names:
            return pl.DataFrame()
        pieces = [pl.read_ipc(part_path(str(self.directory), part), columns=names) for part in self.parts]
        loaded = pl.concat(pieces, how="vertical", rechunk=False)
        del pieces
        if loaded.height != self.height:
            raise ValueError(f"spilled parts hold {loaded.height} rows, the scan has {self.height}")
        out = []
        for name in names:
            column = loaded.drop_in_place(name)
            out.append(column.rechunk() if self.positions is None else column.gather(self.positions))
            del column
        return pl.DataFrame(out)

    def rows(self, row_ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
        """`row_id` and these part-file columns for the sorted rows `row_ids` (row_id = sorted position), in the
        order given, duplicates repeated; a row_id out of range raises IndexError. Reads only the parts holding
        them, only these columns: for the few rows a finding shows, not a column for every row."""
        names = [c for c in columns if c in self.columns]
        ids = row_ids.cast(pl.Int64).rename("row_id")
        if ids.null_count() or (ids.len() and (ids.min() < 0 or ids.max() >= self.height)):  # type: ignore[operator]
            raise IndexError(f"row ids must be within 0..{self.height - 1}")
        position = ids if self.positions is None else self.positions.gather(ids)
        # The part of each wanted row: the last part starting at or before its ingest position.
        wanted = (
            pl.DataFrame({"_want": pl.int_range(ids.len(), eager=True), "_position": position.cast(pl.UInt64)})
            .sort("_position")
            .join_asof(self._offsets.sort("_offset"), left_on="_position", right_on="_offset", strategy="backward")
        )
        pieces = []
        for (part,), group in wanted.group_by(PART, maintain_order=True):
            read = pl.read_ipc(part_path(str(self.directory), int(part)), columns=names)
            local = (group["_position"] - group["_offset"]).cast(pl.Int64)
            pieces.append(_compact(read.gather(local)).with_columns(group["_want"]))
            del read
        if not pieces:  # no rows asked for
            schema = pl.read_ipc_schema(part_path(str(self.directory), self.parts[0])) if self.parts else {}
            return pl.DataFrame([ids, *(pl.Series(c, [], dtype=schema[c]) for c in names)])
        found = pl.concat(pieces, how="vertical").sort("_want").drop("_want")
        return found.insert_column(0, ids)
