"""The priced base frame keeps its low-cardinality strings as Categorical (spill.CATEGORICAL_COLUMNS): every lever
must give the same result as on the same frame with those columns as plain strings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from auditor.pipeline import ScanOptions, analyze_lever, lever_contexts, scan
from auditor.prices import PriceBook
from auditor.spill import CATEGORICAL_COLUMNS

SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_logs"


def _as_strings(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).cast(pl.String) for c in CATEGORICAL_COLUMNS)


def test_reduced_frame_stores_categoricals_and_full_frame_keeps_strings() -> None:
    reduced = scan(ScanOptions(paths=[SAMPLE_LOGS], run_levers=False)).frame
    assert all(reduced.schema[c] == pl.Categorical for c in CATEGORICAL_COLUMNS)
    full = scan(ScanOptions(paths=[SAMPLE_LOGS], run_levers=False, keep_texts=True)).frame
    assert all(full.schema[c] == pl.String for c in CATEGORICAL_COLUMNS)
    # same values either way
    assert_frame_equal(
        _as_strings(reduced).select(CATEGORICAL_COLUMNS).sort(pl.all()),
        full.select(CATEGORICAL_COLUMNS).sort(pl.all()),
    )


def test_every_lever_gives_the_same_result_on_categoricals_as_on_strings() -> None:
    options = ScanOptions(paths=[SAMPLE_LOGS])
    frame = scan(options).frame  # reduced, with every lever's features
    strings = _as_strings(frame)
    for lever, ctx in lever_contexts(options, PriceBook.load()):
        on_categorical = analyze_lever(lever, ctx, frame)
        on_strings = analyze_lever(lever, ctx, strings)
        assert [dataclasses.asdict(f) for f in on_categorical.findings] == [
            dataclasses.asdict(f) for f in on_strings.findings
        ], lever.id
        assert_frame_equal(
            on_categorical.counterfactual.sort("row_id"), on_strings.counterfactual.sort("row_id"), check_dtypes=True
        )
        assert on_categorical.findings or lever.id in {"retries", "batching"}, lever.id  # the data exercises it
