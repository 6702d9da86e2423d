"""prompt_caching's result does not depend on how polars holds the rows (chunk layout, order of partial sums).

At 1M requests, parallel and serial ingest (and one file vs eight) gave per-request counterfactuals 1e-12 apart on
~100 rows: per-unit float sums combined partial sums in a layout-dependent order, and the report's nano-dollar
digits flipped. Per-unit money totals are now exact decimal sums (caching._exact_sum)."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl

from auditor.ingest import read_paths
from auditor.levers import caching
from auditor.levers.base import LeverContext
from auditor.pipeline import ScanOptions, chunk_reducer, lever_contexts, lever_frame, prepare_frame, row_fetcher
from auditor.prices import PriceBook
from tests.test_lever_caching_reduced import as_dicts

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"


def rechunked(frame: pl.DataFrame, rows: int) -> pl.DataFrame:
    """The same rows in chunks of `rows` rows."""
    return pl.concat([frame.slice(at, rows) for at in range(0, frame.height, rows)], rechunk=False)


def costs() -> pl.DataFrame:
    """Float USD costs of varied magnitude in three units, as the candidates hold them."""
    rng = random.Random(3)
    n = 30_000
    return pl.DataFrame(
        {
            "unit": [rng.randrange(3) for _ in range(n)],
            "cur": [rng.random() * 10 ** rng.randrange(-6, 2) for _ in range(n)],
        },
        schema={"unit": pl.UInt32, "cur": pl.Float64},
    )


def per_unit(frame: pl.DataFrame, total: pl.Expr) -> list[tuple[int, float]]:
    return sorted(frame.group_by("unit").agg(total.alias("total")).iter_rows())


def test_exact_sum_is_the_same_for_any_layout_and_order_where_a_float_sum_is_not() -> None:
    frame = costs()
    layouts = [frame, rechunked(frame, 7), rechunked(frame, 1000), frame.reverse(), rechunked(frame.reverse(), 333)]
    exact = [per_unit(f, caching._exact_sum(pl.col("cur"))) for f in layouts]
    assert all(e == exact[0] for e in exact)
    # the data is sensitive: plain float sums of the same rows in another order do not agree to the last bit
    floats = [per_unit(f, pl.col("cur").sum()) for f in layouts]
    assert any(f != floats[0] for f in floats)
    # and the exact sum is the float sum to within float rounding (values are rounded to 1e-12 first)
    for (_, e), (_, f) in zip(exact[0], floats[0], strict=True):
        assert abs(e - f) <= 1e-9 * max(1.0, abs(f))


def test_lever_result_does_not_depend_on_the_frame_layout() -> None:
    """A guard for the whole lever (sample_logs is too small to have flipped a digit with float sums; the 1M check in
    benchmarks/run.py --check-split is what caught it)."""
    options = ScanOptions(paths=[str(SAMPLES)])
    prices = PriceBook.load()
    levers = [(lv, ctx) for lv, ctx in lever_contexts(options, prices) if lv.id == caching.LEVER_ID]
    ingest = read_paths(options.paths, attribution=options.config.attribution, on_chunk=chunk_reducer(options, levers))
    priced = prepare_frame(ingest.frame, options, prices)
    frame = lever_frame(priced, caching.LEVER)
    ctx = LeverContext(prices=prices, rows=row_fetcher(priced))

    whole = caching.LEVER.analyze(frame.rechunk(), ctx)
    for rows in (3, 64, 1000):
        assert as_dicts(caching.LEVER.analyze(rechunked(frame, rows), ctx)) == as_dicts(whole)
    assert whole.counterfactual.height > 0
