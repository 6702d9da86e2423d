"""The scan pipeline, one direction: ingest -> filter/sample -> tokens -> sort -> price -> levers -> plan -> Report.

Analysis never prints; progress is a callback the CLI passes in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from auditor import __version__
from auditor.config import Config, ConfigError
from auditor.ingest import IngestResult, read_paths
from auditor.levers import available_levers
from auditor.levers.base import Lever, LeverContext, LeverResult
from auditor.plan import build_plan
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from auditor.report import Finding, Gap, Report, usd
from auditor.schema import SORT_KEYS
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
    frame: pl.DataFrame  # the priced canonical table, reduced (auditor.reduce: text heads and lever features)
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
    features, cut the texts down (auditor.reduce). Only the reduced chunks are kept.

    A picklable object (lever ids, not lever objects) because ingest worker processes run it too.
    """

    def __init__(self, options: ScanOptions, lever_options: list[tuple[str, dict[str, Any]]]) -> None:
        self.options = options
        self.lever_options = lever_options
        self._levers: list[tuple[Lever, dict[str, Any]]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options, "lever_options": self.lever_options, "_levers": None}

    def __call__(self, chunk: pl.DataFrame) -> pl.DataFrame:
        chunk = fill_missing_tokens(filter_chunk(chunk, self.options))
        return chunk if self.options.keep_texts else reduce_chunk(chunk, self.levers())

    def levers(self) -> list[tuple[Lever, dict[str, Any]]]:
        if self._levers is None:
            by_id = {lever.id: lever for lever in available_levers()}
            self._levers = [(by_id[lever_id], options) for lever_id, options in self.lever_options]
        return self._levers


def chunk_reducer(options: ScanOptions, levers: list[tuple[Lever, LeverContext]]) -> ChunkReducer:
    return ChunkReducer(options, [(lever.id, ctx.options) for lever, ctx in levers])


def prepare_frame(frame: pl.DataFrame, options: ScanOptions, prices: PriceBook) -> pl.DataFrame:
    """Reduced ingested rows -> the priced canonical frame: deterministic sort, row_id, costs.

    Hand over the only reference to `frame` (see scan), so the unsorted copy is freed as soon as the sort is done.
    """
    frame = sort_frame(frame).with_row_index("row_id")
    frame = frame.with_columns(pl.col("row_id").cast(pl.Int64))
    return prices.add_costs(frame, price_date=options.price_date)


def sort_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows in SORT_KEYS order (ties keep ingest order)."""
    return frame.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True)


def run_levers(frame: pl.DataFrame, levers: list[tuple[Lever, LeverContext]], config: Config) -> list[LeverResult]:
    results = []
    for lever, ctx in levers:
        result = lever.analyze(frame, ctx)
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
    ingest = read_paths(
        options.paths,
        input_format=options.input_format,
        attribution=options.config.attribution,
        progress=progress,
        on_chunk=chunk_reducer(options, levers),
    )
    frame = prepare_frame(_take_frame(ingest), options, prices)
    results = run_levers(frame, levers, options.config) if frame.height else []
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
