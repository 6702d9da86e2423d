"""The scan pipeline, one direction: ingest -> filter/sample -> tokens -> sort -> price -> levers -> plan -> Report.

Analysis never prints; progress is a callback the CLI passes in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from auditor import __version__
from auditor.config import Config, ConfigError
from auditor.ingest import IngestResult, expand_paths, read_paths
from auditor.levers import available_levers
from auditor.levers.base import Lever, LeverContext, LeverResult
from auditor.plan import build_plan
from auditor.prices import PriceBook
from auditor.reduce import is_reduced, reduce_chunk
from auditor.report import Finding, Gap, Report, usd
from auditor.schema import SORT_KEYS
from auditor.spill import (
    BASE_COLUMNS,
    CATEGORICAL_COLUMNS,
    SpillStore,
    available_memory,
    estimated_reduced_bytes,
    should_spill,
    spill_mode,
    write_part,
)
from auditor.tokens import fill_missing_tokens

SKIPPED_SAMPLES = 50  # how many skipped records the report lists one by one (all are counted)
BREAKDOWN_KEYS = ("model", "provider", "feature", "tenant", "day")
UNATTRIBUTED = "(none)"


@dataclass
class ScanOptions:
    paths: Sequence[str]
    input_format: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sample_rate: float | None = None  # keep this share of requests, chosen by a stable hash of request_id
    price_date: date | None = None
    config: Config = field(default_factory=Config)
    run_levers: bool = True
    keep_texts: bool = False  # full texts in ScanResult.frame (export-eval); otherwise cut down at ingest


@dataclass
class ScanResult:
    report: Report
    # The priced canonical table, reduced (auditor.reduce: text heads and lever features); after a spilled scan
    # (auditor.spill) only its BASE_COLUMNS: the other columns were on disk and are gone with the scan.
    frame: pl.DataFrame
    ingest: IngestResult
    lever_results: list[LeverResult]


def sample_mask(request_ids: pl.Series, rate: float) -> pl.Series:
    """Deterministic sampling: a request is kept when a stable hash of its id falls under `rate`.

    blake2b rather than polars' hash, whose values may change between polars versions; each distinct id is
    hashed once.
    """
    unique = request_ids.unique()
    buckets = [
        int.from_bytes(hashlib.blake2b(str(rid).encode(), digest_size=8).digest(), "big") / 2**64 for rid in unique
    ]
    lookup = pl.DataFrame({"request_id": unique, "bucket": pl.Series(buckets, dtype=pl.Float64)})
    joined = request_ids.to_frame("request_id").join(lookup, on="request_id", how="left", maintain_order="left")
    return joined["bucket"] < rate


def filter_chunk(chunk: pl.DataFrame, options: ScanOptions) -> pl.DataFrame:
    """--since / --until / --sample on one chunk of ingested rows."""
    if options.since is not None:
        chunk = chunk.filter(pl.col("timestamp") >= options.since)
    if options.until is not None:
        chunk = chunk.filter(pl.col("timestamp") < options.until)
    if options.sample_rate is not None and options.sample_rate < 1.0:
        chunk = chunk.filter(sample_mask(chunk["request_id"], options.sample_rate))
    return chunk


def lever_contexts(options: ScanOptions, prices: PriceBook) -> list[tuple[Lever, LeverContext]]:
    """The levers this scan runs, each with its options; none for --no-levers."""
    if not options.run_levers:
        return []
    return [
        (
            lever,
            LeverContext(
                prices=prices,
                options=options.config.lever_options(lever.id),
                price_date=options.price_date,
                config=options.config,
            ),
        )
        for lever in available_levers()
    ]


class ChunkReducer:
    """What ingest does with each chunk: filter, estimate missing tokens (needs the texts), derive every lever's
    features, cut the texts down (auditor.reduce). Only the reduced chunks are kept -- or, with a `spill_dir`,
    written there whole, keeping only their stubs (auditor.spill.write_part).

    A picklable object (lever ids, not lever objects) because ingest worker processes run it too.
    """

    def __init__(
        self, options: ScanOptions, lever_options: list[tuple[str, dict[str, Any]]], spill_dir: str | None = None
    ) -> None:
        self.options = options
        self.lever_options = lever_options
        self.spill_dir = spill_dir
        self._levers: list[tuple[Lever, dict[str, Any]]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_levers": None}

    def __call__(self, chunk: pl.DataFrame) -> pl.DataFrame:
        chunk = fill_missing_tokens(filter_chunk(chunk, self.options))
        if self.options.keep_texts:
            return chunk
        reduced = reduce_chunk(chunk, self.levers())
        return reduced if self.spill_dir is None else write_part(self.spill_dir, reduced)

    def levers(self) -> list[tuple[Lever, dict[str, Any]]]:
        if self._levers is None:
            by_id = {lever.id: lever for lever in available_levers()}
            self._levers = [(by_id[lever_id], options) for lever_id, options in self.lever_options]
        return self._levers


def chunk_reducer(
    options: ScanOptions, levers: list[tuple[Lever, LeverContext]], store: SpillStore | None = None
) -> ChunkReducer:
    spill_dir = str(store.directory) if store is not None else None
    return ChunkReducer(options, [(lever.id, ctx.options) for lever, ctx in levers], spill_dir)


def wants_spill(options: ScanOptions) -> bool:
    """Whether this scan keeps its reduced rows on disk (auditor.spill; LLM_AUDIT_SPILL). export-eval's full texts
    never spill."""
    if options.keep_texts:
        return False
    try:
        mode = spill_mode()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if mode != "auto":
        return mode == "always"
    files, _ = expand_paths(options.paths)
    return should_spill(mode, estimated_reduced_bytes(files), available_memory())


def spill_store(options: ScanOptions) -> SpillStore | nullcontext[None]:
    """A fresh SpillStore when the scan spills (a context manager that removes it), else a stand-in yielding None."""
    return SpillStore.create() if wants_spill(options) else nullcontext()


def ingested_frame(ingest: IngestResult, store: SpillStore | None) -> pl.DataFrame:
    """The ingested frame, taken out of `ingest` (see _take_frame); a spilled scan's store learns its parts."""
    frame = _take_frame(ingest)
    if store is not None:
        store.index(frame)
    return frame


def prepare_frame(
    frame: pl.DataFrame, options: ScanOptions, prices: PriceBook, store: SpillStore | None = None
) -> pl.DataFrame:
    """Reduced ingested rows -> the priced canonical frame: deterministic sort, row_id, costs.

    Hand over the only reference to `frame` (see scan), so the unsorted copy is freed as soon as the sort is done.
    A spilled scan's stubs tell `store` the sorted order, then lose their part columns.
    """
    frame = sort_frame(frame)
    if store is not None:
        frame = store.order(frame)
    frame = frame.with_row_index("row_id")
    frame = frame.with_columns(pl.col("row_id").cast(pl.Int64))
    frame = prices.add_costs(frame, price_date=options.price_date)  # in bounded slices (prices.PRICE_SLICE_ROWS)
    if not is_reduced(frame):  # export-eval's full rows go out as they are
        return frame
    return frame.with_columns(pl.col(c).cast(pl.Categorical) for c in CATEGORICAL_COLUMNS if c in frame.columns)


def sort_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows in SORT_KEYS order (ties keep ingest order): what `frame.sort(SORT_KEYS, nulls_last=True,
    maintain_order=True)` gives. Logs usually arrive in time order already; then the rows stay where they are,
    instead of a sorted copy that doubles the reduced rows in memory for a moment (the 1M-request peak)."""
    order = frame.select(pl.arg_sort_by(list(SORT_KEYS), nulls_last=True, maintain_order=True)).to_series()
    if not order.is_sorted():  # a permutation in ascending order is the identity
        return frame.select(pl.all().gather(order))
    # Already in order. One chunk per column all the same, as the sorted copy has: float sums in the levers then do
    # not depend on how ingest chunked the rows (one file or eight). A column at a time, so the copy is one column.
    for name in frame.columns:
        if frame.get_column(name).n_chunks() > 1:
            frame = frame.with_columns(frame.get_column(name).rechunk())
    return frame


def lever_columns(lever: Lever, available: Sequence[str]) -> list[str]:
    """The columns `lever.analyze` is given, in `available`'s order: BASE_COLUMNS, what the lever declares it
    reads (`Lever.reads`) and its own features (`_<lever id>_*`)."""
    wanted = {*BASE_COLUMNS, *lever.reads}
    own = f"_{lever.id}_"
    return [c for c in available if c in wanted or c.startswith(own)]


def lever_frame(frame: pl.DataFrame, lever: Lever, store: SpillStore | None = None) -> pl.DataFrame:
    """The frame one lever reads: a projection of the priced frame (a select, no copy), or with a spilled scan its
    base columns plus the declared ones loaded from disk for this lever only. A full frame (export-eval's texts,
    library callers) goes whole: the lever reduces it itself."""
    if not is_reduced(frame):
        return frame
    if store is None:
        return frame.select(lever_columns(lever, frame.columns))
    # The order the columns have in memory mode: row_id, the reduced chunk's columns, then pricing's.
    order = ["row_id", *store.columns, *(c for c in frame.columns if c not in store.columns and c != "row_id")]
    names = lever_columns(lever, order)
    loaded = store.load([c for c in names if c not in frame.columns])
    return pl.concat([frame, loaded], how="horizontal").select(names) if loaded.width else frame.select(names)


def row_fetcher(
    frame: pl.DataFrame, store: SpillStore | None = None
) -> Callable[[pl.Series, Sequence[str]], pl.DataFrame]:
    """LeverContext.rows for the priced frame: `row_id` and some columns of some rows (in the order asked), from
    the frame (row_id is the sorted position) or, for columns it does not hold, the spilled parts."""

    def rows(row_ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
        ids = row_ids.cast(pl.Int64).rename("row_id")
        on_disk = [c for c in columns if c not in frame.columns] if store is not None else []
        here = [c for c in columns if c not in on_disk]
        fetched = frame.select(here).gather(ids).insert_column(0, ids) if here else ids.to_frame()
        if store is None or not on_disk:
            return fetched
        return store.rows(ids, on_disk).hstack(fetched.drop("row_id").get_columns()).select("row_id", *columns)

    return rows


def analyze_lever(lever: Lever, ctx: LeverContext, frame: pl.DataFrame, store: SpillStore | None = None) -> LeverResult:
    """One lever on its columns of the priced frame (lever_frame), fetching other columns of a few rows through
    LeverContext.rows. Its columns are freed when it returns."""
    return lever.analyze(lever_frame(frame, lever, store), replace(ctx, rows=row_fetcher(frame, store)))


def run_levers(
    frame: pl.DataFrame, levers: list[tuple[Lever, LeverContext]], config: Config, store: SpillStore | None = None
) -> list[LeverResult]:
    results = []
    for lever, ctx in levers:
        result = analyze_lever(lever, ctx, frame, store)
        result.findings = [f for f in result.findings if config.code_enabled(f.code)]
        results.append(result)
    return results


def _take_frame(ingest: IngestResult) -> pl.DataFrame:
    """The ingested frame, leaving an empty one behind: the priced frame replaces it, keeping both doubles memory."""
    frame, ingest.frame = ingest.frame, ingest.frame.clear()
    return frame


def check_lever_options(config: Config) -> None:
    """Every lever validates its llm-audit.yaml section up front: a typo fails before a long scan, not after it."""
    for lever in available_levers():
        try:
            lever.check_options(config.lever_options(lever.id))
        except ConfigError as exc:
            raise ConfigError(f"{config.source or 'llm-audit.yaml'}: {exc}") from exc


def scan(options: ScanOptions, progress: Callable[[int], None] | None = None) -> ScanResult:
    prices = PriceBook.load(options.config.pricing or None)
    if options.run_levers:
        check_lever_options(options.config)
    levers = lever_contexts(options, prices)
    with spill_store(options) as store:  # a spilled scan's part files are removed however the scan ends
        ingest = read_paths(
            options.paths,
            input_format=options.input_format,
            attribution=options.config.attribution,
            progress=progress,
            on_chunk=chunk_reducer(options, levers, store),
        )
        frame = prepare_frame(ingested_frame(ingest, store), options, prices, store)
        results = run_levers(frame, levers, options.config, store) if frame.height else []
    report = build_report(frame, ingest, results, options, prices)
    return ScanResult(report=report, frame=frame, ingest=ingest, lever_results=results)


# ---------------------------------------------------------------------------------------------------------------
# Report assembly


def _int(value: Any) -> int:
    return int(value or 0)


def _money(value: Any) -> float:
    return usd(Decimal(value or 0)) or 0.0


def totals(frame: pl.DataFrame) -> dict[str, Any]:
    row = frame.select(
        pl.len().alias("requests"),
        pl.col("input_tokens").sum(),
        pl.col("output_tokens").sum(),
        pl.col("cache_read_tokens").sum(),
        (pl.col("cache_write_5m_tokens").fill_null(0) + pl.col("cache_write_1h_tokens").fill_null(0))
        .sum()
        .alias("cache_write_tokens"),
        pl.col("reasoning_tokens").sum(),
        pl.col("cost_usd").sum(),
        pl.col("unpriced").sum().alias("unpriced_requests"),
        pl.col("logged_cost_usd").sum(),
        pl.col("logged_cost_usd").is_not_null().sum().alias("logged_cost_requests"),
        pl.col("tokens_estimated").fill_null(False).sum().alias("estimated_token_requests"),
        (pl.col("status") == "error").sum().alias("error_requests"),
    ).row(0, named=True)
    unpriced = _int(row["unpriced_requests"])
    return {
        "requests": _int(row["requests"]),
        "input_tokens": _int(row["input_tokens"]),
        "output_tokens": _int(row["output_tokens"]),
        "cache_read_tokens": _int(row["cache_read_tokens"]),
        "cache_write_tokens": _int(row["cache_write_tokens"]),
        "reasoning_tokens": _int(row["reasoning_tokens"]),
        "cost_usd": _money(row["cost_usd"]),
        "cost_complete": unpriced == 0,
        "unpriced_requests": unpriced,
        "logged_cost_usd": usd(row["logged_cost_usd"]) if row["logged_cost_requests"] else None,
        "logged_cost_requests": _int(row["logged_cost_requests"]),
        "estimated_token_requests": _int(row["estimated_token_requests"]),
        "error_requests": _int(row["error_requests"]),
    }


def breakdown(frame: pl.DataFrame, key: str) -> list[dict[str, Any]]:
    key_expr = pl.col("timestamp").dt.date().cast(pl.String) if key == "day" else pl.col(key)
    missing = "(unknown)" if key == "day" else UNATTRIBUTED
    grouped = (
        frame.group_by(key_expr.fill_null(missing).alias("key"))
        .agg(
            pl.len().alias("requests"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
            pl.col("cache_read_tokens").sum(),
            pl.col("cost_usd").sum(),
            pl.col("unpriced").sum().alias("unpriced_requests"),
        )
        .sort(["cost_usd", "requests", "key"], descending=[True, True, False], nulls_last=True)
    )
    if key == "day":
        grouped = grouped.sort("key")
    total_cost = frame.select(pl.col("cost_usd").sum()).item() or Decimal(0)
    rows = []
    for row in grouped.iter_rows(named=True):
        cost = Decimal(row["cost_usd"] or 0)
        rows.append(
            {
                "key": row["key"],
                "requests": _int(row["requests"]),
                "input_tokens": _int(row["input_tokens"]),
                "output_tokens": _int(row["output_tokens"]),
                "cache_read_tokens": _int(row["cache_read_tokens"]),
                "tokens": _int(row["input_tokens"]) + _int(row["output_tokens"]),
                "cost_usd": _money(cost),
                "cost_share": round(float(cost / total_cost), 4) if total_cost else 0.0,
                "unpriced_requests": _int(row["unpriced_requests"]),
            }
        )
    return rows


def _time_range(frame: pl.DataFrame) -> dict[str, str | None]:
    if frame.height == 0:
        return {"start": None, "end": None}
    start, end = frame.select(pl.col("timestamp").min().alias("start"), pl.col("timestamp").max().alias("end")).row(0)
    return {
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }


def _finding_sort_key(finding: Finding) -> tuple[Any, ...]:
    severity = {"high": 0, "medium": 1, "low": 2, "info": 3}
    return (-finding.savings_usd, severity.get(finding.severity, 9), finding.code, sorted(finding.scope.items()))


def build_report(
    frame: pl.DataFrame,
    ingest: IngestResult,
    results: list[LeverResult],
    options: ScanOptions,
    prices: PriceBook,
) -> Report:
    from auditor.prices import compare_logged, unpriced_models

    plan, summaries = build_plan(frame, results)
    findings = sorted((f for r in results for f in r.findings), key=_finding_sort_key)
    gaps: list[Gap] = [g for r in results for g in r.gaps]
    skipped = ingest.skipped
    return Report(
        tool={"name": "llm-audit", "version": __version__},
        inputs={
            "files": list(ingest.files),
            "records_read": ingest.records_read,
            "records_skipped": len(skipped),
            "skipped": [{"file": s.file, "line": s.line, "reason": s.reason} for s in skipped[:SKIPPED_SAMPLES]],
            "formats": dict(sorted(ingest.formats.items())),
            "ignored": dict(sorted(ingest.ignored.items())),
            "time_range": _time_range(frame),
            "filters": {
                "since": options.since.isoformat() if options.since else None,
                "until": options.until.isoformat() if options.until else None,
                "sample_rate": options.sample_rate,
                "requests_after_filters": frame.height,
            },
        },
        pricing={
            "table_date": prices.table_date().isoformat(),
            "price_date": options.price_date.isoformat() if options.price_date else None,
            "unpriced_models": unpriced_models(frame),
            "overrides": options.config.pricing or {},
            "logged_vs_recomputed": compare_logged(frame),
        },
        totals=totals(frame),
        breakdowns={key: breakdown(frame, key) for key in BREAKDOWN_KEYS},
        levers=summaries,
        findings=findings,
        plan=plan,
        gaps=sorted(gaps, key=lambda g: (-g.cost_at_stake_usd, g.lever)),
    )
