"""Replay of a provider prompt cache over time-ordered requests, in bulk (no Python loop per request).

Input is one row per (request, prefix block) from auditor.levers.prefix.chain_keys, with the request's cache
scope and start time. The model of the cache:

- A request *touches* (writes or refreshes) every prefix block it shares with at least one other request of
  its scope: that is where a breakpoint after the stable prefix puts the cache entry, and blocks no other
  request ever shares are never read, whatever the configuration.
- Block k of request r is a hit under TTL T when the same prefix was touched by an earlier request (strictly
  earlier start: parallel fan-out all miss) at most T before r. Touches refresh the entry, reads included.
- Because keys are prefix-closed (sharing block k implies sharing every block before it), the hit length
  is simply the largest hit block, and the "earlier request" test is one sort plus a shift.

The provider's rules (minimum cacheable length, granularity) are applied afterwards in token space by
`cached_tokens`; TTLs, multipliers and minimums come from the price tables via the caller.

The same module holds the token-only analysis of logged cache usage (no prompt text needed): gaps longer
than the TTL between requests of a session, and cache writes that no later request read.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

MICROS = 1_000_000
_NO_PREVIOUS = -(2**62)  # marks "first touch of this prefix in its scope" in the prev-time column


def hit_column(index: int) -> str:
    return f"hit_bytes_{index}"


def replay(blocks: pl.DataFrame, ttls: Sequence[float | None]) -> pl.DataFrame:
    """Shared and hit prefix length (bytes) per request.

    `blocks` columns: req, scope, t (Int64 microseconds), block, end_byte, key, ordered by request start time
    and then block. `ttls` in seconds, None for an unbounded cache. Returns one row per request that shares a
    prefix: req, `shared_bytes` (longest prefix shared with any other request of the scope, before or after),
    `hit_bytes_<i>` for ttls[i] (0 = miss).
    """
    group = pl.struct("scope", "key").hash(41).alias("g")
    counted = blocks.select("req", "t", "end_byte", group).with_columns(pl.len().over("g").alias("n"))
    # Consecutive blocks of a request held by the same number of requests are held by the same requests
    # (keys are prefix-closed), so they share every touch time: keep only the deepest block of each run.
    last_of_run = (pl.col("n") != pl.col("n").shift(-1)) | (pl.col("req") != pl.col("req").shift(-1))
    shared = counted.filter(last_of_run.fill_null(True) & (pl.col("n") >= 2)).drop("n")
    # rows are in start-time order, so a stable sort by prefix gives (prefix, time) order
    shared = shared.sort("g", maintain_order=True)
    new_group = (pl.col("g") != pl.col("g").shift(1)).fill_null(True)
    new_time = new_group | (pl.col("t") != pl.col("t").shift(1)).fill_null(True)
    # The latest touch strictly before this request's start: the row before the first request of this
    # instant, carried over to the other requests of the same instant.
    previous = (
        pl.when(new_group)
        .then(pl.lit(_NO_PREVIOUS, dtype=pl.Int64))
        .when(new_time)
        .then(pl.col("t").shift(1))
        .otherwise(None)
        .forward_fill()
    )
    shared = shared.with_columns(previous.alias("prev_t")).with_columns(
        pl.when(pl.col("prev_t") == _NO_PREVIOUS).then(None).otherwise(pl.col("t") - pl.col("prev_t")).alias("gap")
    )
    aggs = [pl.col("end_byte").max().alias("shared_bytes")]
    for i, ttl in enumerate(ttls):
        alive = pl.col("gap").is_not_null() if ttl is None else pl.col("gap") <= int(ttl * MICROS)
        aggs.append(pl.col("end_byte").filter(alive).max().fill_null(0).alias(hit_column(i)))
    return shared.group_by("req").agg(aggs)


def cached_tokens(
    prefix_bytes: pl.Expr,
    tokens_per_byte: pl.Expr,
    input_tokens: pl.Expr,
    min_tokens: pl.Expr,
    granularity: pl.Expr,
) -> pl.Expr:
    """Tokens a cache entry of `prefix_bytes` covers under the provider's rules (0 below the minimum).

    Converted by the request's own tokens-per-byte ratio, capped at its input, then rounded down to the
    provider's steps above the minimum (OpenAI: 1,024 + 128 j).
    """
    raw = (prefix_bytes.cast(pl.Float64) * tokens_per_byte).floor().cast(pl.Int64)
    raw = pl.min_horizontal(raw, input_tokens)
    step = pl.max_horizontal(granularity, pl.lit(1))
    stepped = min_tokens + ((raw - min_tokens) // step) * step
    return pl.when((raw <= 0) | (raw < min_tokens)).then(0).otherwise(stepped).cast(pl.Int64)


# ---------------------------------------------------------------------------------------------------------
# Token-only analysis of the cache usage the log already has


def session_gaps(
    frame: pl.DataFrame, group: Sequence[str], short_ttl_s: float, long_ttl_s: float | None
) -> pl.DataFrame:
    """TTL-gap misses: a request that came back after more than the short TTL but within the long one,
    in the same group (scope + session), and read less from the cache than its predecessor had cached.

    `frame` needs `t` (Int64 µs), the group columns, `cache_read_tokens`, `cache_write_tokens` (both TTLs).
    Returns the frame with `gap_s`, `ttl_gap_miss` (bool) and `missed_tokens` (predecessor's cached prefix
    minus this request's read; what a longer TTL would have served from the cache).
    """
    ordered = frame.sort([*group, "t"])
    same = pl.lit(True)
    for column in group:
        same = same & (pl.col(column) == pl.col(column).shift(1)).fill_null(False)
    prev_cached = (pl.col("cache_read_tokens").fill_null(0) + pl.col("cache_write_tokens").fill_null(0)).shift(1)
    gap_s = pl.when(same).then((pl.col("t") - pl.col("t").shift(1)) / MICROS)
    missed = pl.when(same).then((prev_cached - pl.col("cache_read_tokens").fill_null(0)).clip(lower_bound=0))
    within_long = pl.lit(True) if long_ttl_s is None else pl.col("gap_s") <= long_ttl_s
    return ordered.with_columns(gap_s.alias("gap_s"), missed.fill_null(0).alias("missed_tokens")).with_columns(
        ((pl.col("gap_s") > short_ttl_s) & within_long & (pl.col("missed_tokens") > 0))
        .fill_null(False)
        .alias("ttl_gap_miss")
    )


def writes_never_read(frame: pl.DataFrame, group: Sequence[str], horizon_s: float | pl.Expr | None) -> pl.Series:
    """Per row (in `frame` order): it wrote to the cache and no later request of its group read from the cache
    within `horizon_s` (the longest TTL, a number or a per-row expression in seconds; None = ever).

    `frame` needs `t` (Int64 µs), the group columns (no nulls), `cache_read_tokens`, `cache_write_tokens`.
    One sort for all groups: the next read is carried backwards inside a group, never across its last row.
    """
    indexed = frame.with_row_index("_pos").sort([*group, "t", "_pos"])
    read_t = pl.when(pl.col("cache_read_tokens").fill_null(0) > 0).then(pl.col("t"))
    same_next = pl.lit(True)
    for column in group:
        same_next = same_next & (pl.col(column) == pl.col(column).shift(-1)).fill_null(False)
    # next read strictly after this row: the next row's read time, carried backwards; the last row of a group
    # holds a marker that stops the carry (and means "none")
    carried = pl.when(same_next).then(read_t.shift(-1)).otherwise(pl.lit(_NO_PREVIOUS, dtype=pl.Int64)).backward_fill()
    next_read = pl.when(carried != _NO_PREVIOUS).then(carried)
    wrote = pl.col("cache_write_tokens").fill_null(0) > 0
    unread = next_read.is_null()
    if horizon_s is not None:
        horizon = horizon_s if isinstance(horizon_s, pl.Expr) else pl.lit(horizon_s, dtype=pl.Float64)
        unread = unread | ((next_read - pl.col("t")) > (horizon * MICROS).cast(pl.Int64))
    # back in frame order: only the flag and its position are sorted again
    return indexed.select("_pos", (wrote & unread).alias("never_read")).sort("_pos")["never_read"]
