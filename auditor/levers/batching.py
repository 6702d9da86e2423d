"""batching lever (LA5xx): traffic that could wait for an answer, moved to batch (or flex) prices.

Only requests that could go through a batch API at all are considered ("eligible"): billed, successful,
not already at batch/flex prices, not streamed, not part of a conversation or agent run (three or more
messages, or a session with more than one request), on a model whose price table has a batch (else flex)
multiplier. Their counterfactual is the same request with `batch` set (or `service_tier` flex), priced by
the PriceBook, so batch discounts stack with the logged cache tokens.

Whether a request *may* wait is not in any log field, so it is inferred per (feature, model):

- scheduled bursts: eligible requests are split into runs (a gap above `burst_gap_seconds` starts a new run);
  a run of at least `burst_min_requests` requests lasting at most `burst_max_minutes` is a burst. Bursts whose
  start, rounded to `schedule_slot_minutes`, falls in the same slot of the day on `min_days` or more dates are
  a schedule (a cron job such as a nightly digest at 02:00 UTC).
- names: the feature name (or every request's tags) contains a word such as batch, nightly, report, digest,
  backfill, eval, offline.

LA501: the feature is a job (scheduled bursts carry `scheduled_min_share` of its eligible requests, or its name
says so); every eligible request of it is priced at batch prices for a share of the traffic that can wait
(`scheduled_share`, or the weaker `named_share` on a name alone). LA502: inside other features, the requests in
scheduled bursts or tagged like a job, at the lower `mixed_share`. Savings per request = share x (cost - batch
cost). Confidence `heuristic`: the share that can wait is a judgement the logs cannot settle.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from auditor.config import ConfigError
from auditor.levers.base import (
    LeverContext,
    LeverResult,
    counterfactual_frame,
    dec,
    empty_counterfactual,
    fetch_rows,
    severity,
    total_cost,
)
from auditor.levers.options import count, names, number, reject_unknown
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, usd
from auditor.schema import MONEY
from auditor.spill import BASE_COLUMNS

LEVER_ID = "batching"
_OPT = f"levers.{LEVER_ID}"
UNATTRIBUTED = "(unattributed)"
BATCH_FILE_LIMIT = 50_000  # OpenAI: requests per batch input file
SHARE = pl.Decimal(38, 6)
LONG_LATENCY_MS = 10_000  # a median this slow means nobody is watching a spinner (reported as a signal only)
# Per-row codes as Enums (1 byte a row, not a 16-byte string view), categories in alphabetical order so that sorting
# them sorts the names.
REASON = pl.Enum(
    ["already_batch_or_flex", "conversation_or_agent_run", "error", "no_batch_price", "streaming", "unpriced"]
)
TIER = pl.Enum(["batch", "flex"])

DEFAULT_KEYWORDS = (
    "batch", "nightly", "daily", "weekly", "report", "digest", "backfill", "eval", "offline", "cron",
    "scheduled", "bulk",
)  # fmt: skip

_TITLES = {
    "LA501": "Scheduled or bulk job on real-time prices",
    "LA502": "Latency-tolerant requests inside an interactive feature",
}
_FIXES = {
    "LA501": (
        "Submit this job through the provider's batch API (OpenAI/Azure Batch, Anthropic Message Batches, Gemini "
        "or Bedrock batch): write the night's requests to a file (at most 50,000 per OpenAI batch file), poll for "
        "results within the 24-hour window, and keep a real-time fallback for items that must not wait."
    ),
    "LA502": (
        "Split the latency-tolerant part off this feature (the scheduled or tagged requests) and send it through "
        "the batch API or the flex tier; keep the interactive requests on real-time prices."
    ),
}


# ---------------------------------------------------------------------------------------------- options


Shares = tuple[float, float, float]


@dataclass(frozen=True)
class BatchingOptions:
    burst_gap_seconds: float = 120.0  # a longer pause between two requests of a feature ends a burst
    burst_min_requests: int = 10  # fewer requests in a run are not a burst
    burst_max_minutes: float = 120.0  # a run lasting longer is steady traffic, not a job run
    schedule_slot_minutes: float = 15.0  # burst starts are rounded to slots of the day this wide
    min_days: int = 3  # a slot with bursts on this many dates is a schedule
    scheduled_min_share: float = 0.8  # share of a feature's eligible requests in scheduled bursts for LA501
    scheduled_share: Shares = (0.5, 0.9, 1.0)  # low / expected / high share that can wait, scheduled job
    named_share: Shares = (0.3, 0.7, 1.0)  # the same when only the name says "job"
    mixed_share: Shares = (0.1, 0.4, 0.8)  # the same for the job-like part of an interactive feature (LA502)
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS  # words in feature names or tags that mean "job"
    examples: int = 3  # request ids listed per finding

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> BatchingOptions:
        reject_unknown(raw, cls.__dataclass_fields__, _OPT)
        d = cls()
        slot = number(raw, "schedule_slot_minutes", d.schedule_slot_minutes, _OPT, upper=1440, unit="minutes")
        if slot <= 0:
            raise ConfigError(f"{_OPT}.schedule_slot_minutes must be above 0")
        return cls(
            burst_gap_seconds=number(raw, "burst_gap_seconds", d.burst_gap_seconds, _OPT, unit="seconds"),
            burst_min_requests=max(2, count(raw, "burst_min_requests", d.burst_min_requests, _OPT)),
            burst_max_minutes=number(raw, "burst_max_minutes", d.burst_max_minutes, _OPT, unit="minutes"),
            schedule_slot_minutes=slot,
            min_days=max(1, count(raw, "min_days", d.min_days, _OPT)),
            scheduled_min_share=number(raw, "scheduled_min_share", d.scheduled_min_share, _OPT, upper=1),
            scheduled_share=_shares(raw, "scheduled_share", d.scheduled_share),
            named_share=_shares(raw, "named_share", d.named_share),
            mixed_share=_shares(raw, "mixed_share", d.mixed_share),
            keywords=tuple(k.lower() for k in names(raw, "keywords", list(d.keywords), _OPT) if k.strip()),
            examples=count(raw, "examples", d.examples, _OPT),
        )


def _shares(raw: dict[str, Any], key: str, default: Shares) -> Shares:
    """[low, expected, high]: three shares between 0 and 1, in increasing order."""
    value = raw.get(key, list(default))
    numeric = isinstance(value, list | tuple) and len(value) == 3
    numeric = numeric and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not numeric or not 0 <= value[0] <= value[1] <= value[2] <= 1:
        raise ConfigError(f"{_OPT}.{key} must be [low, expected, high]: three numbers from 0 to 1, increasing")
    return float(value[0]), float(value[1]), float(value[2])


# ---------------------------------------------------------------------------------------------- detection


def _secs(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def _keyword_pattern(keywords: tuple[str, ...]) -> str:
    """A keyword as a whole word of a name (separators _ - . / space), plural allowed: nightly_digests."""
    words = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
    return rf"(?:^|[^a-z0-9])({words})(?:e?s)?(?:[^a-z0-9]|$)"


def _reason(name: str) -> pl.Expr:
    return pl.lit(name, dtype=REASON)


def _exclusion(frame: pl.DataFrame) -> pl.Expr:
    """Why a request cannot move to batch prices (null = it can, if its model has a batch or flex price)."""
    # the few tier names, lowercased in Python: no lowercased string per row
    tiers = frame.get_column("service_tier").drop_nulls().unique().cast(pl.String).to_list()
    async_tier = [t for t in tiers if t.lower() in ("batch", "flex")]
    return (
        pl.when(pl.col("cost_usd").is_null())
        .then(_reason("unpriced"))
        .when((pl.col("status") == "error").fill_null(False))
        .then(_reason("error"))
        .when(pl.col("batch").fill_null(False) | pl.col("service_tier").is_in(async_tier).fill_null(False))
        .then(_reason("already_batch_or_flex"))
        .when(pl.col("stream").fill_null(False))
        .then(_reason("streaming"))
        # is_duplicated = more than one request in the session, without a count per row
        .when(
            (pl.col("messages_count").fill_null(0) >= 3)
            | (pl.col("session_id").is_not_null() & pl.col("session_id").is_duplicated())
        )
        .then(_reason("conversation_or_agent_run"))
    )


def _service_prices(frame: pl.DataFrame, ctx: LeverContext) -> pl.DataFrame:
    """Per (model_id, price_date): the cheaper asynchronous tier the price table has (batch first, else flex)."""
    pairs = frame.select("model_id", "price_date").drop_nulls().unique()
    rows: list[dict[str, Any]] = []
    for model_id, day in pairs.iter_rows():
        price = ctx.prices.model(model_id, ctx.price_date or day)
        tier = "batch" if price.batch_multiplier is not None else "flex" if price.flex_multiplier is not None else None
        rows.append({"model_id": model_id, "price_date": day, "_tier": tier})
    return pl.DataFrame(rows, schema={"model_id": pl.String, "price_date": pl.Date, "_tier": TIER})


def _prepare(frame: pl.DataFrame, ctx: LeverContext) -> pl.DataFrame:
    """Every request with `_feature`, `_model` and `_excluded`, the columns the findings read (selected, not copied)
    and `feature` / `tags` for the keyword search on the eligible rows only."""
    work = frame.select(
        "row_id",
        "timestamp",
        "feature",
        "tags",
        pl.coalesce("model_id", "model").fill_null("(unknown model)").alias("_model"),
        pl.col("feature").fill_null(UNATTRIBUTED).alias("_feature"),
        pl.col("feature").is_null().alias("_no_feature"),
        "stream",
        "latency_ms",
        "error_type",
        "http_status",
        "cost_usd",
        _exclusion(frame).alias("_excluded"),
    )
    # the join carries only its keys: joining `work` would copy every column of it
    keys = frame.select("model_id", "price_date")
    table = _service_prices(keys, ctx)
    table = table.with_columns(pl.col("model_id").cast(keys.schema["model_id"]))  # the frame's may be Categorical
    tiers = keys.join(table, on=["model_id", "price_date"], how="left", maintain_order="left").get_column("_tier")
    del keys
    return work.with_columns(tiers).with_columns(
        pl.when(pl.col("_excluded").is_null() & pl.col("_tier").is_null())
        .then(_reason("no_batch_price"))
        .otherwise(pl.col("_excluded"))
        .alias("_excluded")
    )


def _keywords(opts: BatchingOptions) -> list[pl.Expr]:
    """`_name_kw` / `_tag_kw`: the first job word in the feature name / the tags (null = none)."""
    if not opts.keywords:
        return [pl.lit(None, pl.String).alias("_name_kw"), pl.lit(None, pl.String).alias("_tag_kw")]
    pattern = _keyword_pattern(opts.keywords)
    return [
        pl.col("feature").cast(pl.String).str.to_lowercase().str.extract(pattern, 1).alias("_name_kw"),
        pl.col("tags").str.to_lowercase().str.extract(pattern, 1).alias("_tag_kw"),
    ]


def _bursts(eligible: pl.LazyFrame, opts: BatchingOptions) -> pl.LazyFrame:
    """Eligible rows with their run, whether the run is a burst, its slot of the day and `_sched`."""
    keys = ["_feature", "_model"]
    ordered = eligible.sort([*keys, "timestamp", "row_id"])
    same_group = pl.all_horizontal(pl.col(k) == pl.col(k).shift(1) for k in keys).fill_null(False)
    gap = _secs(pl.col("timestamp") - pl.col("timestamp").shift(1))
    runs = ordered.with_columns((~(same_group & (gap <= opts.burst_gap_seconds))).cum_sum().alias("_run"))
    slot_s = opts.schedule_slot_minutes * 60
    start = pl.col("timestamp").min().over("_run")
    second_of_day = _secs(start - start.dt.truncate("1d"))
    runs = runs.with_columns(
        pl.len().over("_run").alias("_run_len"),
        start.alias("_run_start"),
        _secs(pl.col("timestamp").max().over("_run") - start).alias("_run_seconds"),
        # rounded to the nearest slot, so a job started at 01:59:58 or 02:00:03 lands in the 02:00 slot
        ((second_of_day / slot_s).round(0).cast(pl.Int64) % max(1, round(86400 / slot_s))).alias("_slot"),
    )
    burst = (pl.col("_run_len") >= opts.burst_min_requests) & (pl.col("_run_seconds") <= opts.burst_max_minutes * 60)
    runs = runs.with_columns(pl.when(burst).then(pl.col("_slot")).alias("_burst_slot"))
    days = pl.col("_run_start").dt.date().n_unique().over([*keys, "_burst_slot"])
    return runs.with_columns((pl.col("_burst_slot").is_not_null() & (days >= opts.min_days)).alias("_sched"))


def async_cost(frame: pl.DataFrame, tiers: pl.DataFrame, ctx: LeverContext) -> pl.DataFrame:
    """(row_id, _alt_cost): the cost of the `tiers` rows (row_id, _tier) at batch or flex prices, priced on the
    original rows so every token and cache column is kept (the discounts stack with cache prices)."""
    # pricing reads base columns only: the join need not carry the lever's strings (session ids, tags)
    base = frame.select(c for c in frame.columns if c in BASE_COLUMNS)
    original = base.join(tiers, on="row_id", how="inner", maintain_order="left")
    repriced = original.with_columns(
        (pl.col("_tier") == "batch").alias("batch"), pl.col("_tier").cast(pl.String).alias("service_tier")
    )
    return original.select("row_id", ctx.prices.cost(repriced, ctx.price_date).alias("_alt_cost"))


def _share_exprs(opts: BatchingOptions) -> list[pl.Expr]:
    """Per-row share that can wait (low / expected / high) from the row's code and evidence level."""

    def pick(i: int) -> pl.Expr:
        def lit(shares: Shares) -> pl.Expr:
            return pl.lit(Decimal(str(shares[i])), dtype=SHARE)

        return (
            pl.when(pl.col("_level") == "scheduled")
            .then(lit(opts.scheduled_share))
            .when(pl.col("_level") == "named")
            .then(lit(opts.named_share))
            .otherwise(lit(opts.mixed_share))
        )

    return [pick(0).alias("_share_low"), pick(1).alias("_share"), pick(2).alias("_share_high")]


def detect(frame: pl.DataFrame, ctx: LeverContext, opts: BatchingOptions) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(work, flagged): every request with its exclusion reason; the flagged eligible requests with `_code`
    (LA501/LA502), `_level`, shares, the cost at batch/flex prices and the cost after for the three cases
    (None when no request is flagged)."""
    work = _prepare(frame, ctx)
    # lazy up to the flagged rows, and only the columns the detection reads: the sort copies what it carries
    eligible = work.lazy().filter(pl.col("_excluded").is_null())
    rows = _bursts(eligible.select("row_id", "timestamp", "_feature", "_model", *_keywords(opts)), opts)
    keys = ["_feature", "_model"]
    sched_share = pl.col("_sched").mean().over(keys)
    # the group is named when its feature name says so, or every eligible request carries a job-like tag
    named = pl.col("_name_kw").is_not_null() | pl.col("_tag_kw").is_not_null().all().over(keys)
    scheduled = sched_share >= opts.scheduled_min_share
    rows = rows.with_columns(
        pl.when(scheduled)
        .then(pl.lit("scheduled"))
        .when(named)
        .then(pl.lit("named"))
        .when(pl.col("_sched") | pl.col("_tag_kw").is_not_null())
        .then(pl.lit("mixed"))
        .alias("_level"),
        sched_share.alias("_sched_share"),
    ).with_columns(
        pl.when(pl.col("_level") == "mixed").then(pl.lit("LA502")).when(pl.col("_level").is_not_null())
        .then(pl.lit("LA501")).alias("_code")
    )  # fmt: skip
    flagged = rows.filter(pl.col("_code").is_not_null()).collect()
    if flagged.height == 0:
        return work, None
    shown = work.select("row_id", "stream", "latency_ms", "cost_usd", "_tier")
    shown = shown.filter(pl.col("row_id").is_in(flagged.get_column("row_id").implode()))
    flagged = flagged.join(shown, on="row_id", how="left", maintain_order="left")
    alt = async_cost(frame, flagged.select("row_id", "_tier"), ctx)
    flagged = flagged.join(alt, on="row_id", how="left").with_columns(_share_exprs(opts))
    full = (pl.col("cost_usd") - pl.col("_alt_cost")).clip(lower_bound=0)
    return work, flagged.with_columns(
        (pl.col("cost_usd") - full * pl.col(share)).cast(MONEY).alias(name)
        for share, name in (("_share", "_after"), ("_share_low", "_after_low"), ("_share_high", "_after_high"))
    )


# ---------------------------------------------------------------------------------------------- findings


def _slot_label(slot: int, opts: BatchingOptions) -> str:
    minutes = round(slot * opts.schedule_slot_minutes)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d} UTC"


def _schedules(flagged: pl.DataFrame, opts: BatchingOptions) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (feature, model), the scheduled slots: dates, bursts, typical size and duration."""
    runs = (
        flagged.filter(pl.col("_sched"))
        .group_by("_feature", "_model", "_burst_slot", "_run")
        .agg(pl.len().alias("n"), pl.col("_run_seconds").first(), pl.col("_run_start").first())
    )
    slots = (
        runs.group_by("_feature", "_model", "_burst_slot")
        .agg(
            pl.col("_run_start").dt.date().n_unique().alias("days"),
            pl.len().alias("bursts"),
            pl.col("n").median().alias("median_requests"),
            pl.col("_run_seconds").median().alias("median_seconds"),
        )
        .sort(["_feature", "_model", "days", "_burst_slot"], descending=[False, False, True, False])
    )
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in slots.iter_rows(named=True):
        out.setdefault((r["_feature"], r["_model"]), []).append(
            {
                "slot": _slot_label(int(r["_burst_slot"]), opts),
                "days": int(r["days"]),
                "bursts": int(r["bursts"]),
                "median_requests_per_burst": float(r["median_requests"]),
                "median_burst_seconds": round(float(r["median_seconds"]), 1),
            }
        )
    return out


def _excluded_counts(work: pl.DataFrame) -> dict[tuple[str, str], dict[str, int]]:
    excluded = work.lazy().filter(pl.col("_excluded").is_not_null())  # lazy: no copy of the excluded rows
    counts = excluded.group_by("_feature", "_model", "_excluded").len().collect()
    out: dict[tuple[str, str], dict[str, int]] = {}
    for feature, model, reason, n in counts.sort("_excluded").iter_rows():
        out.setdefault((feature, model), {})[reason] = int(n)
    return out


def _name_keywords(feature: str, keywords: tuple[str, ...]) -> list[str]:
    """Every job word in a feature name (the detection pattern reports only the first)."""
    return [k for k in keywords if re.search(rf"(?:^|[^a-z0-9]){re.escape(k)}(?:e?s)?(?=[^a-z0-9]|$)", feature.lower())]


def _signals(r: dict[str, Any], schedule: list[dict[str, Any]], opts: BatchingOptions) -> list[str]:
    signals = []
    if schedule:
        top = schedule[0]
        signals.append(f"bursts starting at {top['slot']} on {top['days']} days")
    in_name = _name_keywords(r["_feature"], opts.keywords) if r["name_keywords"] else []
    if in_name:
        signals.append(f"feature name says {', '.join(repr(k) for k in in_name)}")
    if r["tag_keywords"]:
        signals.append(f"tags say {', '.join(repr(k) for k in r['tag_keywords'])}")
    if r["streamed_unknown"] == 0:
        signals.append("no streaming")
    signals.append("single-turn requests outside conversations")
    if r["latency_p50"] is not None and r["latency_p50"] >= LONG_LATENCY_MS:
        signals.append(f"median latency {r['latency_p50'] / 1000:.1f} s: callers already wait")
    return signals


def _findings(flagged: pl.DataFrame, work: pl.DataFrame, total: Decimal, opts: BatchingOptions) -> list[Finding]:
    schedules = _schedules(flagged, opts)
    excluded = _excluded_counts(work)
    rate_limited = (
        work.select("_feature", "_model", "error_type", "http_status")
        .filter((pl.col("error_type") == "rate_limit") | (pl.col("http_status") == 429))
        .group_by("_feature", "_model")
        .len()
    )
    limited = {(f, m): int(n) for f, m, n in rate_limited.iter_rows()}
    saving = pl.col("cost_usd") - pl.col("_after")
    stats = (
        flagged.group_by("_code", "_feature", "_model")
        .agg(
            pl.len().alias("requests"),
            pl.col("cost_usd").sum().alias("cost"),
            pl.col("_alt_cost").sum().alias("alt_cost"),
            saving.sum().alias("savings"),
            (pl.col("cost_usd") - pl.col("_after_low")).sum().alias("savings_low"),
            (pl.col("cost_usd") - pl.col("_after_high")).sum().alias("savings_high"),
            pl.col("_level").first().alias("level"),
            pl.col("_share_low").first().alias("share_low"),
            pl.col("_share").first().alias("share"),
            pl.col("_share_high").first().alias("share_high"),
            pl.col("_tier").unique().sort().alias("tiers"),
            pl.col("_sched_share").first().alias("sched_share"),
            pl.col("_name_kw").drop_nulls().unique().sort().alias("name_keywords"),
            pl.col("_tag_kw").drop_nulls().unique().sort().alias("tag_keywords"),
            pl.col("stream").is_null().sum().alias("streamed_unknown"),
            pl.col("latency_ms").median().alias("latency_p50"),
            pl.col("timestamp").dt.date().value_counts().struct.field("count").max().alias("busiest_day"),
            pl.col("request_id").drop_nulls().sort().head(opts.examples).alias("examples"),
        )
        .sort("_code", "_feature", "_model")
    )
    findings = []
    for r in stats.iter_rows(named=True):
        code, key = r["_code"], (r["_feature"], r["_model"])
        savings, cost = dec(r["savings"]), dec(r["cost"])
        schedule = schedules.get(key, [])
        busiest = int(r["busiest_day"] or 0)
        evidence: dict[str, Any] = {
            "requests": int(r["requests"]),
            "cost_usd": usd(cost),
            "cost_at_async_prices_usd": usd(dec(r["alt_cost"])),
            "async_tier": " + ".join(r["tiers"]),  # batch, flex, or both when the models differ
            "evidence_level": r["level"],
            "share_that_can_wait": {
                "low": float(r["share_low"]),
                "expected": float(r["share"]),
                "high": float(r["share_high"]),
            },
            "savings_low_usd": usd(dec(r["savings_low"])),
            "savings_high_usd": usd(dec(r["savings_high"])),
            "share_in_scheduled_bursts": round(float(r["sched_share"]), 4),
            "schedule": schedule,
            "signals": _signals(r, schedule, opts),
            "rate_limited_requests": limited.get(key, 0),
            "busiest_day_requests": busiest,
            "batch_files_per_day": max(1, math.ceil(busiest / BATCH_FILE_LIMIT)),
            "excluded_requests": excluded.get(key, {}),
            "example_request_ids": list(r["examples"]),
        }
        if limited.get(key):
            evidence["note"] = "rate-limit errors in this feature: batch queues have their own, larger limits"
        findings.append(
            Finding(
                code=code,
                lever=LEVER_ID,
                title=f"{r['_feature']} on {r['_model']}: {_TITLES[code].lower()} ({int(r['requests']):,} requests)",
                severity=severity(savings, total),
                savings_usd=usd(savings) or 0.0,
                affected_requests=int(r["requests"]),
                recommendation=_FIXES[code],
                scope={"feature": r["_feature"], "model": r["_model"]},
                evidence=evidence,
            )
        )
    return findings


def _gaps(flagged: pl.DataFrame | None, work: pl.DataFrame, frame: pl.DataFrame, ctx: LeverContext) -> list[Gap]:
    gaps = []
    unknown_stream = flagged.filter(pl.col("stream").is_null()) if flagged is not None else work.head(0)
    if unknown_stream.height:
        at_stake = unknown_stream.select((pl.col("cost_usd") - pl.col("_after")).sum()).item()
        gaps.append(
            Gap(
                lever=LEVER_ID,
                missing_fields=["stream"],
                requests=unknown_stream.height,
                cost_at_stake_usd=usd(dec(at_stake)) or 0.0,
                note="streaming not logged: these requests were assumed non-streaming (a streamed request has "
                "a user watching and cannot wait for a batch)",
            )
        )
    flagged_ids = flagged.select("row_id") if flagged is not None else work.select("row_id").head(0)
    unattributed = (
        work.select("row_id", "_tier", "cost_usd", "_no_feature", "_excluded")
        .filter(pl.col("_no_feature") & pl.col("_excluded").is_null())
        .select("row_id", "_tier", "cost_usd")
        .join(flagged_ids, on="row_id", how="anti")
    )
    if unattributed.height:
        alt = async_cost(frame, unattributed.select("row_id", "_tier"), ctx)
        at_stake = unattributed.join(alt, on="row_id").select((pl.col("cost_usd") - pl.col("_alt_cost")).sum())
        gaps.append(
            Gap(
                lever=LEVER_ID,
                missing_fields=["feature"],
                requests=unattributed.height,
                cost_at_stake_usd=usd(dec(at_stake.item())) or 0.0,
                note="requests without a feature name that were not flagged: a scheduled job among them is found "
                "only by its timing, not by its name; the amount is their whole batch discount",
            )
        )
    return gaps


class BatchingLever:
    id = LEVER_ID
    title = "Batch and flex prices for traffic that can wait"
    reads: tuple[str, ...] = (
        *("latency_ms", "session_id", "tags", "messages_count"),
        *("stream", "http_status", "error_type"),
    )  # request_id: fetched (fetch_rows) for the flagged rows only, the examples come from them

    def check_options(self, options: dict[str, Any]) -> None:
        BatchingOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame()

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = BatchingOptions.parse(ctx.options)
        frame = ensure_reduced(frame, self, ctx.options)  # no texts needed: a full frame just sheds them
        s, n, m = opts.scheduled_share, opts.named_share, opts.mixed_share
        result = LeverResult(
            lever_id=LEVER_ID,
            title=self.title,
            confidence="heuristic",
            counterfactual=empty_counterfactual(),
            assumptions=[
                "Batch results arrive within the provider's 24-hour completion window; work that needs an answer "
                "sooner stays on real-time (or flex) prices.",
                f"Share of the traffic that can wait (low/expected/high): scheduled job {s[0]:g}/{s[1]:g}/{s[2]:g}, "
                f"job by name only {n[0]:g}/{n[1]:g}/{n[2]:g}, job-like part of an interactive feature "
                f"{m[0]:g}/{m[1]:g}/{m[2]:g}.",
                f"At most {BATCH_FILE_LIMIT:,} requests per batch file (OpenAI); larger runs are split.",
                "Prompt-cache hits inside a batch are best-effort: the logged cache tokens are kept and priced at "
                "batch prices (the discounts stack), which overstates savings if the batch caches less.",
                "Excluded: requests already at batch or flex prices, streamed requests, conversations and agent "
                "runs, failed requests, models without a batch or flex price.",
            ],
            method="Scheduled bursts (same slot of the day on several dates) and job-like names mark features "
            "that can wait; their requests are repriced with batch=True (or the flex tier) and the difference is "
            "scaled by the share that can wait.",
        )
        if frame.height == 0:
            return result
        work, flagged = detect(frame, ctx, opts)
        if flagged is None:
            result.gaps = _gaps(None, work, frame, ctx)
            return result
        touched = flagged.filter(pl.col("_alt_cost").is_not_null())
        result.counterfactual = counterfactual_frame(
            touched["row_id"], touched["_after"], touched["_after_low"], touched["_after_high"]
        )
        total = total_cost(frame)
        ids = fetch_rows(frame, ctx, touched.get_column("row_id"), ["request_id"]).get_column("request_id")
        result.findings = _findings(touched.with_columns(ids), work, total, opts)
        result.gaps = _gaps(touched, work, frame, ctx)
        return result


LEVER = BatchingLever()
