"""pipeline.sort_frame gives the order frame.sort gives, and hands back logs already in that order without a copy."""

from __future__ import annotations

import random

import polars as pl
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


def test_random_ties_and_nulls_sort_as_frame_sort_does() -> None:
    rng = random.Random(11)
    rows = [
        {
            "request_id": rng.choice(["a", "b", None]),
            "timestamp": rng.choice([at(1), at(2), at(3), None]),
            "source_file": rng.choice(["x.jsonl", "y.jsonl"]),
            "source_line": rng.randrange(4),
            "model": str(i),  # tells equal keys apart: their ingest order must be kept
        }
        for i in range(2_000)
    ]
    frame = rows_to_frame(rows)
    assert_frame_equal(sort_frame(frame), frame.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True))


def test_logs_already_in_order_come_back_as_they_are() -> None:
    rows = [
        {"request_id": f"r{i}", "timestamp": at(i // 2), "source_file": "a.jsonl", "source_line": i, "model": "m"}
        for i in range(50)
    ]
    frame = pl.concat([rows_to_frame(rows[:20]), rows_to_frame(rows[20:])], rechunk=False)  # two ingest chunks
    got = sort_frame(frame)
    assert_frame_equal(got, frame)
    assert got.n_chunks("all") == [1] * got.width  # one chunk per column, as a sorted copy has
    single = frame.rechunk()
    assert sort_frame(single) is single  # in order and in one chunk: no copy at all
    swapped = pl.concat([frame.slice(1, 1), frame.slice(0, 1), frame.slice(2)])
    assert sort_frame(swapped) is not swapped
    assert_frame_equal(sort_frame(swapped), frame.rechunk())


def test_sampling_an_empty_chunk_keeps_nothing_and_does_not_fail() -> None:
    # A worker's chunk can be empty after --since/--until; sampling it must give an empty mask, not a dtype error.
    from auditor.pipeline import sample_mask

    assert sample_mask(pl.Series("request_id", [], dtype=pl.String), 0.1).to_list() == []
    assert sample_mask(pl.Series("request_id", ["a", "b"]), 1.0).to_list() == [True, True]
