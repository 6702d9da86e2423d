"""Row fetch (LeverContext.rows, levers.base.fetch_rows, SpillStore.rows): some columns of a few rows, the text
heads a finding shows, in memory and from spilled parts, in the order asked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from auditor import pipeline
from auditor.levers.base import LeverContext, fetch_rows
from auditor.prices import PriceBook
from auditor.spill import SpillStore, write_part

BASE = datetime(2026, 10, 1, tzinfo=UTC)


def _chunk(start: int, times: list[int]) -> pl.DataFrame:
    """Reduced rows as a chunk hook sees them: request i has timestamp BASE + times[i] s and head "q<start+i>"."""
    return pl.DataFrame(
        {
            "timestamp": [BASE + timedelta(seconds=t) for t in times],
            "request_id": [f"r{start + i}" for i in range(len(times))],
            "last_user_text": [f"q{start + i}" if (start + i) % 4 else None for i in range(len(times))],
            "_x_n": [start + i for i in range(len(times))],
        }
    )


# Three parts (and an empty chunk) whose rows interleave in time: sorted, row_id r holds request SORTED[r].
CHUNKS = [_chunk(0, [5, 1, 9]), _chunk(3, []), _chunk(3, [4, 0]), _chunk(5, [7, 2, 8])]
SORTED = [4, 1, 6, 3, 0, 5, 7, 2]  # request numbers in time order (t = 0, 1, 2, 4, 5, 7, 8, 9)


def _store(tmp_path: Path) -> tuple[SpillStore, pl.DataFrame]:
    store = SpillStore.create(str(tmp_path))
    stubs = pl.concat([write_part(str(store.directory), c) for c in CHUNKS])
    store.index(stubs)
    base = store.order(stubs.sort("timestamp")).with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    return store, base


def test_store_rows_any_order_duplicates_several_parts(tmp_path: Path) -> None:
    store, base = _store(tmp_path)
    with store:
        assert len(store.parts) == 3 and base.columns == ["row_id", "timestamp"]
        ids = pl.Series([7, 0, 3, 7, 5, 1])  # parts 1, 2, 1, 1, 3, 1 by request number; 7 twice
        got = store.rows(ids, ["_x_n", "last_user_text", "not_there"])
        assert got.columns == ["row_id", "_x_n", "last_user_text"]  # in the order asked, unknown ones left out
        assert got["row_id"].to_list() == [7, 0, 3, 7, 5, 1]
        assert got["_x_n"].to_list() == [SORTED[i] for i in [7, 0, 3, 7, 5, 1]] == [2, 4, 3, 2, 5, 1]
        assert got["last_user_text"].to_list() == ["q2", None, "q3", "q2", "q5", "q1"]  # q0, q4 are null
        empty = store.rows(pl.Series([], dtype=pl.Int64), ["last_user_text"])
        assert empty.schema == pl.Schema({"row_id": pl.Int64, "last_user_text": pl.String}) and empty.height == 0
        for bad in ([8], [-1], [None]):
            with pytest.raises(IndexError):
                store.rows(pl.Series(bad, dtype=pl.Int64), ["_x_n"])


def test_store_rows_in_ingest_order(tmp_path: Path) -> None:
    # rows already in time order: no positions kept, row_id is the ingest position
    with SpillStore.create(str(tmp_path)) as store:
        stubs = pl.concat([write_part(str(store.directory), _chunk(i * 2, [i * 2, i * 2 + 1])) for i in range(3)])
        store.index(stubs)
        store.order(stubs)
        assert store.positions is None
        assert store.rows(pl.Series([5, 2, 2]), ["request_id"])["request_id"].to_list() == ["r5", "r2", "r2"]


def test_row_fetcher_spilled_mixes_memory_and_disk_columns(tmp_path: Path) -> None:
    store, base = _store(tmp_path)
    with store:
        rows = pipeline.row_fetcher(base, store)
        got = rows(pl.Series([6, 2]), ["request_id", "timestamp"])
        assert got.columns == ["row_id", "request_id", "timestamp"]
        assert got["request_id"].to_list() == ["r7", "r6"]
        assert got["timestamp"].to_list() == [BASE + timedelta(seconds=8), BASE + timedelta(seconds=2)]


def test_row_fetcher_in_memory_gathers_by_row_id() -> None:
    frame = pl.concat(CHUNKS).sort("timestamp").with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    got = pipeline.row_fetcher(frame)(pl.Series([3, 3, 0]), ["last_user_text", "_x_n"])
    expected = pl.DataFrame(
        {"row_id": [3, 3, 0], "last_user_text": ["q3", "q3", None], "_x_n": [3, 3, 4]},
        schema={"row_id": pl.Int64, "last_user_text": pl.String, "_x_n": pl.Int64},
    )
    assert_frame_equal(got, expected)


def test_fetch_rows_reads_the_levers_own_frame_first() -> None:
    calls: list[tuple[list[int], list[str]]] = []

    def rows(ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
        calls.append((ids.to_list(), list(columns)))
        return pl.DataFrame({"row_id": ids, "last_user_text": [f"disk{i}" for i in ids]})

    own = pl.DataFrame({"row_id": [10, 11, 12], "last_user_text": ["a", None, "c"], "cost": [1, 2, 3]})
    with_rows = LeverContext(prices=PriceBook.load(), rows=rows)
    # the frame has the column (a full frame in a test): read there, even with ctx.rows set; unknown ids are null
    got = fetch_rows(own, with_rows, pl.Series([12, 10, 12, 99]), ["last_user_text"])
    assert got.rows() == [(12, "c"), (10, "a"), (12, "c"), (99, None)] and calls == []
    # the pipeline's projection has no heads: fetched through ctx.rows
    got = fetch_rows(own.drop("last_user_text"), with_rows, pl.Series([11, 10]), ["last_user_text"])
    assert got.rows() == [(11, "disk11"), (10, "disk10")] and calls == [([11, 10], ["last_user_text"])]
    # neither: the missing column fails loudly
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        fetch_rows(
            own.drop("last_user_text"), LeverContext(prices=PriceBook.load()), pl.Series([10]), ["last_user_text"]
        )
