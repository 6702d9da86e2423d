"""prompt_caching's result does not depend on how polars holds the rows (chunk layout, order of partial sums).

At 1M requests, parallel and serial ingest (and one file vs eight) gave per-request counterfactuals 1e-12 apart on
~100 rows: per-unit float sums combined partial sums in a layout-dependent order, and the report's nano-dollar
digits flipped. Per-unit money totals are now exact decimal sums (caching._exact_sum)."""

from __future__ import annotations

import random

import polars as pl

from auditor.levers import caching
from tests.test_lever_caching_batches import sample_logs_input
from tests.test_lever_caching_reduced import as_dicts


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
    frame, ctx = sample_logs_input()

    whole = caching.LEVER.analyze(frame.rechunk(), ctx)
    for rows in (3, 64, 1000):
        assert as_dicts(caching.LEVER.analyze(rechunked(frame, rows), ctx)) == as_dicts(whole)
    assert whole.counterfactual.height > 0
