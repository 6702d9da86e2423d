"""pipeline.sort_frame: the column-by-column sort gives the order frame.sort gives."""

from __future__ import annotations

from polars.testing import assert_frame_equal

from auditor.pipeline import sort_frame
from auditor.schema import SORT_KEYS, rows_to_frame
from tests.helpers import at


def test_same_order_as_a_whole_frame_sort() -> None:
    rows = [
        {"request_id": "c", "timestamp": at(5), "source_file": "b.jsonl", "source_line": 2, "model": "m1"},
        {"request_id": "a", "timestamp": at(5), "source_file": "a.jsonl", "source_line": 9, "model": "m2"},
        {"request_id": "b", "timestamp": None, "source_file": "a.jsonl", "source_line": 1, "model": "m3"},
        {"request_id": "d", "timestamp": at(1), "source_file": "a.jsonl", "source_line": 3, "model": None},
        {"request_id": "e", "timestamp": at(5), "source_file": "a.jsonl", "source_line": 9, "model": "m4"},
    ]
    frame = rows_to_frame(rows)
    expected = frame.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True)
    got = sort_frame(rows_to_frame(rows))
    assert_frame_equal(got, expected)
    # at(1) first; the three at(5) by file, line, id; the null timestamp last
    assert got["request_id"].to_list() == ["d", "a", "e", "c", "b"]


def test_sampling_an_empty_chunk_keeps_nothing_and_does_not_fail() -> None:
    # A worker's chunk can be empty after --since/--until; sampling it must give an empty mask, not a dtype error.
    import polars as pl

    from auditor.pipeline import sample_mask

    assert sample_mask(pl.Series("request_id", [], dtype=pl.String), 0.1).to_list() == []
    assert sample_mask(pl.Series("request_id", ["a", "b"]), 1.0).to_list() == [True, True]
