"""retries lever (LA4xx): calls that were made more than once although one call was enough.

A "call" is identified by (scope, model, prompt fingerprint), where scope is the session when logged, else
the user. Within one call key, consecutive attempts (ordered by start time) are linked:

- after an error (LA401): the next attempt started within `retry_window_seconds` of the failed attempt's end.
  Retrying a transient error (rate limit, overload, 5xx, timeout) is legitimate; retrying a validation, auth
  or not-found error repeats a failure. Waste = the billed cost of the failed attempts in such chains (most
  failures are unbilled, so often $0 with a count worth fixing) and of retries of non-transient errors.
- after a success (LA402): the next attempt started within `duplicate_window_seconds` of the previous start,
  or while the previous was still running (start < previous start + latency). Waste = the later copies.

Across models (LA403): the same prompt, same scope, sent to two or more models whose calls succeeded, each
start within `fanout_window_seconds` of the previous one. One answer is used; the others are waste. Which one
is used is unknowable from logs, so the expected case keeps the call that finished first (what a hedging
client uses), the pessimistic case keeps the most expensive call and the optimistic case the cheapest.

Agent loops (LA404): in one session and model, a run of `loop_threshold` or more consecutive calls that
end in the identical tool call (finish_reason tool_calls, same output text). The first `loop_threshold - 1`
calls are kept (one or two retries of a failing tool are reasonable); the rest are waste.

A request belongs to at most one kind, in the order LA401, LA402, LA403, LA404, so a dollar is counted once.
All counterfactuals remove calls (cost_after 0): confidence `measured`.
"""

from __future__ import annotations

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
from auditor.levers.options import count, flag, number, reject_unknown
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, Severity, usd

LEVER_ID = "retries"
_OPT = f"levers.{LEVER_ID}"
UNATTRIBUTED = "(unattributed)"

TRANSIENT_ERRORS = frozenset({"rate_limit", "overloaded", "server_error", "timeout"})
# HTTP codes that say "try again later" when the log has no normalized error_type.
_TRANSIENT_HTTP = (408, 409, 425, 429)

_CODES = ("LA401", "LA402", "LA403", "LA404")
# Per-request feature (auditor.reduce): the tool call a request ended in, as a u64 hash of its full output_text
# (null when the answer is not a tool call), so LA404 compares whole calls, not their 300-character heads.
CALL_HASH = f"_{LEVER_ID}_call_hash"
_TITLES = {
    "LA401": "Retries after errors",
    "LA402": "Duplicate submissions of the same call",
    "LA403": "Same prompt fanned out to several models",
    "LA404": "Agent loop repeats the same tool call",
}
_FIXES = {
    "LA401": (
        "Give retries a budget per error class: back off and retry 429/529/5xx/timeouts a few times, never retry "
        "400/401/403/404 (fix the request instead); raise client timeouts or stream so a slow call is not paid twice."
    ),
    "LA402": (
        "Deduplicate before calling the model: an idempotency key per user action, disable the submit button "
        "while a call is in flight, and do not let the client retry a request that is still running."
    ),
    "LA403": (
        "Call one model and fall back to another only on error or timeout (hedge after a delay, cancel the loser); "
        "if several answers are compared on purpose, sample that comparison instead of running it on all traffic."
    ),
    "LA404": (
        "Cap agent steps and identical tool calls per run: stop or change strategy after the same tool call "
        "fails twice, and feed the tool error back in a form the model can act on."
    ),
}


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RetryOptions:
    retry_window_seconds: float = 300.0  # an attempt after a failure (failure end -> next start) is a retry
    duplicate_window_seconds: float = 10.0  # a repeat this soon after a success (start -> start) is a duplicate
    fanout_window_seconds: float = 5.0  # calls to different models this close together are one fan-out
    loop_window_seconds: float = 600.0  # longest pause between two steps of one agent loop
    loop_threshold: int = 3  # identical consecutive tool calls that make a loop; the first threshold-1 are kept
    require_identity: bool = True  # chain only requests with a session or user (else reported as a gap)
    worst_sessions: int = 5  # sessions listed per finding

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> RetryOptions:
        reject_unknown(raw, cls.__dataclass_fields__, _OPT)
        d = cls()
        threshold = count(raw, "loop_threshold", d.loop_threshold, _OPT)
        if threshold < 2:
            raise ConfigError(f"{_OPT}.loop_threshold must be at least 2")
        return cls(
            retry_window_seconds=_seconds(raw, "retry_window_seconds", d.retry_window_seconds),
            duplicate_window_seconds=_seconds(raw, "duplicate_window_seconds", d.duplicate_window_seconds),
            fanout_window_seconds=_seconds(raw, "fanout_window_seconds", d.fanout_window_seconds),
            loop_window_seconds=_seconds(raw, "loop_window_seconds", d.loop_window_seconds),
            loop_threshold=threshold,
            require_identity=flag(raw, "require_identity", d.require_identity, _OPT),
            worst_sessions=count(raw, "worst_sessions", d.worst_sessions, _OPT),
        )


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    return number(raw, key, default, _OPT, unit="seconds")


# ---------------------------------------------------------------------------------------------- detection


def features(chunk: pl.DataFrame) -> pl.DataFrame:
    """CALL_HASH of each request, from the full output text."""
    output = pl.col("output_text")
    tool_call = (pl.col("finish_reason") == "tool_calls") & output.is_not_null()
    return chunk.select(pl.when(tool_call).then(output.hash()).alias(CALL_HASH))


def _secs(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def _prepare(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns detection reads and no others: the steps below gather from them in key order.

    The call scope is (_scope_kind, _scope_id): kind 2 = session, 1 = user, 0 = neither (all such requests form
    one anonymous scope, id ""). Two columns compare like the "session <id>" / "user <name>" string the findings
    show, without building that string for every request (only the flagged rows get it, in `detect`).
    """
    error_type = pl.col("error_type")
    http = pl.col("http_status")
    is_error = pl.col("status").fill_null("ok") == "error"
    transient = error_type.is_in(list(TRANSIENT_ERRORS)) | (
        error_type.is_null() & (http.is_in(list(_TRANSIENT_HTTP)) | (http >= 500))
    )
    # Unknown error class (no type, no status) is not called a misuse: benefit of the doubt.
    non_transient = (
        is_error
        & ~transient.fill_null(False)
        & (
            error_type.is_in(["invalid_request", "auth", "not_found", "content_filter"])
            | (error_type.is_null() & http.is_between(400, 499))
        ).fill_null(False)
    )
    latency_us = (pl.col("latency_ms").fill_null(0.0).clip(0.0, None) * 1000).cast(pl.Int64)
    session, user = pl.col("session_id"), pl.col("user")
    return frame.select(
        "row_id",
        "timestamp",
        (pl.col("timestamp") + pl.duration(microseconds=latency_us)).alias("_end"),
        pl.when(session.is_not_null())
        .then(pl.lit(2, pl.UInt8))
        .when(user.is_not_null())
        .then(pl.lit(1, pl.UInt8))
        .otherwise(pl.lit(0, pl.UInt8))
        .alias("_scope_kind"),
        pl.coalesce(session, user, pl.lit("")).alias("_scope_id"),
        pl.coalesce("model_id", "model").alias("_model"),
        "prompt_hash",
        is_error.alias("_error"),
        non_transient.alias("_non_transient"),
        CALL_HASH,
        "cost_usd",
    )


def _same(keys: list[str]) -> pl.Expr:
    """This row has the same (non-null) key values as the previous row of the sorted frame."""
    expr = pl.lit(True)
    for key in keys:
        expr = expr & (pl.col(key) == pl.col(key).shift(1))
    return expr.fill_null(False)


def _in_time_order(work: pl.DataFrame) -> bool:
    """Rows already in (timestamp, row_id) order, as the pipeline's sorted frame is (row_id = position)."""
    timestamp = work["timestamp"]
    return timestamp.null_count() == 0 and timestamp.is_sorted() and work["row_id"].is_sorted()


def _order(work: pl.DataFrame, keys: list[str], rows: pl.Series, time_ordered: bool) -> pl.Series:
    """The positions `rows` of `work` rearranged so that the rows of one key are together, in time order
    (timestamp, row_id). Only positions are sorted: each step then gathers the few columns it reads.

    Sorting on a 64-bit hash of the key is several times faster than on the strings; `_same` still compares the
    real values, so a collision can only split a chain. Rows already in time order need only a stable sort on
    the hash (same order, less memory and time than a three-key sort).
    """
    by = pl.DataFrame([work.select(pl.struct(keys).hash().alias("_k")).to_series().gather(rows), rows.alias("_i")])
    if time_ordered:
        return by.sort("_k", maintain_order=True)["_i"]
    by = by.with_columns(work.select("timestamp", "row_id").gather(rows))
    return by.sort(["_k", "timestamp", "row_id"])["_i"]


def _sequence(work: pl.DataFrame, order: pl.Series, keys: list[str], columns: list[str]) -> pl.DataFrame:
    """`columns` of the rows `order` in that order, `_i` (their positions) and `_same` (same key as the row
    before). The keys (strings) are gathered only to be compared, then dropped."""
    same = work.select(keys).gather(order).select(_same(keys).alias("_same")).to_series()
    return work.select(columns).gather(order).with_columns(order.alias("_i"), same)


def _positions(work: pl.DataFrame, condition: pl.Expr) -> pl.Series:
    """Positions of the rows of `work` meeting `condition` (a filter of one index, not of every column)."""
    return work.select(condition.arg_true()).to_series()


def _chains(work: pl.DataFrame, opts: RetryOptions, time_ordered: bool) -> pl.DataFrame:
    """Same-model repeats, for the rows a chain flags: `_i` (position in work), `_kind` (1 = LA401, 2 = LA402 or
    null: a retry that succeeded) and the retry flags for the evidence. Rows not listed are in no chain."""
    keys = ["_scope_kind", "_scope_id", "_model", "prompt_hash"]
    rows = _positions(work, pl.col("prompt_hash").is_not_null() & pl.col("_model").is_not_null())
    order = _order(work, keys, rows, time_ordered)
    del rows
    chained = (
        _sequence(work, order, keys, ["timestamp", "_end", "_error", "_non_transient"])
        .lazy()
        .with_columns(
            _secs(pl.col("timestamp") - pl.col("_end").shift(1)).alias("_idle"),
            _secs(pl.col("timestamp") - pl.col("timestamp").shift(1)).alias("_gap"),
            pl.col("_error").shift(1).alias("_prev_error"),
            pl.col("_non_transient").shift(1).alias("_prev_non_transient"),
        )
        .with_columns(
            (pl.col("_same") & pl.col("_prev_error") & (pl.col("_idle") <= opts.retry_window_seconds))
            .fill_null(False)
            .alias("_retry"),
            (
                pl.col("_same")
                & ~pl.col("_prev_error")
                & ((pl.col("_gap") <= opts.duplicate_window_seconds) | (pl.col("_idle") < 0))
            )
            .fill_null(False)
            .alias("_dup"),
        )
        .with_columns(pl.col("_retry").shift(-1).fill_null(False).alias("_retried"))
    )
    # A failed attempt that was retried, or a retry that failed again, was paid for nothing.
    failed_in_chain = pl.col("_error") & (pl.col("_retry") | pl.col("_retried"))
    after_non_transient = pl.col("_prev_non_transient").fill_null(False)
    return (
        chained.filter(failed_in_chain | pl.col("_dup") | pl.col("_retry"))
        .select(
            "_i",
            pl.when(failed_in_chain)
            .then(pl.lit(1, pl.UInt8))
            .when(pl.col("_dup"))
            .then(pl.lit(2, pl.UInt8))
            .alias("_kind"),
            (pl.col("_retry") & ~after_non_transient).alias("_retry_transient"),
            (pl.col("_retry") & after_non_transient).alias("_retry_non_transient"),
        )
        .collect()
    )


def _fanout(work: pl.DataFrame, opts: RetryOptions, time_ordered: bool) -> pl.DataFrame:
    """Cross-model fan-out among requests no earlier rule claimed (`_kind` null): `_i` and keeper flags per case."""
    keys = ["_scope_kind", "_scope_id", "prompt_hash"]
    eligible = (
        pl.col("_kind").is_null()
        & ~pl.col("_error")
        & pl.col("prompt_hash").is_not_null()
        & pl.col("_model").is_not_null()
    )
    order = _order(work, keys, _positions(work, eligible), time_ordered)
    grouped = (
        _sequence(work, order, keys, ["timestamp", "_model"])
        .lazy()
        .with_columns(
            (
                ~pl.col("_same")
                | (_secs(pl.col("timestamp") - pl.col("timestamp").shift(1)) > opts.fanout_window_seconds)
            )
            .fill_null(True)
            .cum_sum()
            .alias("_group")
        )
        .filter(pl.col("_model").n_unique().over("_group") >= 2)
        .select("_i", "_group")
        .collect()
    )
    if grouped.height == 0:
        return pl.DataFrame(
            schema={"_i": pl.UInt32, "_keep": pl.Boolean, "_keep_low": pl.Boolean, "_keep_high": pl.Boolean}
        )
    kept = grouped.with_columns(work.select("row_id", "_end", "cost_usd").gather(grouped["_i"]))
    cost = pl.col("cost_usd").cast(pl.Float64)
    first_done = pl.col("row_id").sort_by(["_end", "row_id"]).first().over("_group")
    dearest = pl.col("row_id").sort_by([cost.fill_null(-1.0), "row_id"], descending=[True, False]).first()
    cheapest = pl.col("row_id").sort_by([cost.fill_null(float("inf")), "row_id"]).first()
    return kept.select(
        "_i",
        (pl.col("row_id") == first_done).alias("_keep"),
        (pl.col("row_id") == dearest.over("_group")).alias("_keep_low"),
        (pl.col("row_id") == cheapest.over("_group")).alias("_keep_high"),
    )


def _loops(work: pl.DataFrame, opts: RetryOptions, time_ordered: bool) -> pl.Series:
    """Runs of identical consecutive tool calls per (session, model): `_i` of the calls past the allowance."""
    if work[CALL_HASH].null_count() == work.height:  # no tool calls (most chat traffic): nothing to sort
        return pl.Series("_i", [], dtype=pl.UInt32)
    in_session = (pl.col("_scope_kind") == 2) & pl.col("_model").is_not_null()
    order = _order(work, ["_scope_id", "_model"], _positions(work, in_session), time_ordered)
    steps = _sequence(work, order, ["_scope_id", "_model", CALL_HASH], ["timestamp", "_end", CALL_HASH]).lazy()
    runs = steps.rename({CALL_HASH: "_call"}).with_columns(
        (
            ~(
                pl.col("_same") & (_secs(pl.col("timestamp") - pl.col("_end").shift(1)) <= opts.loop_window_seconds)
            ).fill_null(False)
        )
        .cum_sum()
        .alias("_run")
    )
    # Rows of a run are contiguous: step = position since the run's first row, length via the run's last step.
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    start = pl.when(pl.col("_run") != pl.col("_run").shift(1).fill_null(-1)).then(index).forward_fill()
    runs = runs.with_columns((index - start + 1).alias("_step"))
    runs = runs.join(runs.group_by("_run").agg(pl.col("_step").max().alias("_run_len")), on="_run", how="left")
    return (
        runs.filter(
            pl.col("_call").is_not_null()
            & (pl.col("_run_len") >= opts.loop_threshold)
            & (pl.col("_step") >= opts.loop_threshold)
        )
        .select("_i")
        .collect()
        .to_series()
    )


def _place(height: int, index: pl.Series, values: pl.Series) -> pl.Series:
    """A full-height column: `values` at positions `index`, null elsewhere (results attached by position, not by a
    join that would copy every column of the frame)."""
    return pl.repeat(None, height, dtype=values.dtype, eager=True).alias(values.name).scatter(index, values)


def _outcomes(work: pl.DataFrame, opts: RetryOptions) -> pl.DataFrame:
    """Per request of `work`, in its order: `_kind` code (1..4 = LA401..LA404, or null), the retry flags and the
    fan-out keeper flags (null outside a fan-out group). Narrow: a few bytes a request."""
    height = work.height
    time_ordered = _in_time_order(work)
    chains = _chains(work, opts, time_ordered)
    out = pl.DataFrame([_place(height, chains["_i"], chains[c]) for c in chains.columns if c != "_i"])
    del chains
    fanout = _fanout(work.with_columns(out["_kind"]), opts, time_ordered)
    out = out.with_columns(_place(height, fanout["_i"], fanout[c]) for c in fanout.columns if c != "_i")
    del fanout
    out = out.with_columns(
        pl.when(pl.col("_kind").is_null() & pl.col("_keep").is_not_null())
        .then(pl.lit(3, pl.UInt8))
        .otherwise(pl.col("_kind"))
        .alias("_kind")
    )
    loops = _loops(work, opts, time_ordered)
    loop = _place(height, loops, pl.repeat(True, loops.len(), eager=True).alias("_loop"))
    return out.with_columns(
        pl.when(pl.col("_kind").is_null() & loop.fill_null(False))
        .then(pl.lit(4, pl.UInt8))
        .otherwise(pl.col("_kind"))
        .alias("_kind")
    )


def detect(frame: pl.DataFrame, opts: RetryOptions) -> pl.DataFrame:
    """The requests the lever flags (a kind LA401..LA404, or a retry LA401's evidence counts), in frame order: the
    columns the findings read, `_kind` and the cost after the lever for the expected / pessimistic / optimistic
    cases (null where the lever leaves it alone).
    """
    outcomes = _outcomes(_prepare(frame), opts)
    flagged = outcomes.with_row_index("_i").filter(
        pl.col("_kind").is_not_null()
        | pl.col("_retry_transient").fill_null(False)
        | pl.col("_retry_non_transient").fill_null(False)
    )
    del outcomes
    rows = frame.select(
        "row_id", "model", "feature", "session_id", "user", "error_type", "http_status", "cost_usd"
    ).gather(flagged["_i"])
    work = rows.hstack(flagged.drop("_i").get_columns())
    zero = pl.lit(Decimal(0), dtype=pl.Decimal(38, 12))
    cost = pl.col("cost_usd")
    kind = pl.col("_kind")

    def after(keep: str) -> pl.Expr:
        fanout_keep = pl.col(keep).fill_null(False)
        return pl.when(kind.is_null()).then(None).when((kind == 3) & fanout_keep).then(cost).otherwise(zero)

    session, user = pl.col("session_id"), pl.col("user")
    scope = (
        pl.when(session.is_not_null())
        .then(pl.lit("session ") + session)
        .when(user.is_not_null())
        .then(pl.lit("user ") + user)
    )
    return work.select(
        "row_id",
        "model",
        "cost_usd",
        scope.alias("_scope"),
        pl.col("feature").fill_null(UNATTRIBUTED).alias("_feature"),
        pl.col("error_type").fill_null(pl.col("http_status").cast(pl.String)).fill_null("unknown").alias("_etype"),
        kind.replace_strict(dict(enumerate(_CODES, start=1)), default=None, return_dtype=pl.String).alias("_kind"),
        after("_keep").alias("_after"),
        after("_keep_low").alias("_after_low"),
        after("_keep_high").alias("_after_high"),
        pl.col("_retry_transient").fill_null(False),
        pl.col("_retry_non_transient").fill_null(False),
        # Only a chain makes LA401: a failed attempt in a chain that carried usage.
        ((kind == 1) & (cost > 0)).fill_null(False).alias("_billed_failure"),
        # Requests without a session or user cannot be told apart from other people's identical prompts.
        (session.is_null() & user.is_null()).alias("_anonymous"),
        # The extra calls; a fan-out group's kept call is part of the finding but not removed.
        (kind.is_not_null() & ~((kind == 3) & pl.col("_keep").fill_null(False))).alias("_removed"),
    )


# ---------------------------------------------------------------------------------------------- findings


def _severity(code: str, savings: Decimal, total: Decimal, non_transient: int) -> Severity:
    """Retrying errors that cannot succeed (400, auth) is worth a look even when it cost nothing."""
    return severity(savings, total, floor="low" if code == "LA401" and non_transient else "info")


def _worst(rows: pl.DataFrame, limit: int) -> dict[str, list[dict[str, Any]]]:
    """Per feature, the scopes (sessions or users) with the most waste."""
    waste = (pl.col("cost_usd") - pl.col("_after")).cast(pl.Float64).fill_null(0.0)
    ranked = (
        rows.group_by("_feature", "_scope")
        .agg(pl.len().alias("extra_calls"), waste.sum().alias("waste"))
        .sort(["_feature", "waste", "extra_calls", "_scope"], descending=[False, True, True, False])
        .group_by("_feature", maintain_order=True)
        .head(limit)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ranked.iter_rows(named=True):
        out.setdefault(r["_feature"], []).append(
            {"scope": r["_scope"], "extra_calls": int(r["extra_calls"]), "waste_usd": usd(r["waste"])}
        )
    return out


def _findings(flagged: pl.DataFrame, total: Decimal, opts: RetryOptions) -> list[Finding]:
    findings: list[Finding] = []
    for code in _CODES:
        rows = (
            flagged.filter(pl.col("_kind") == code)
            if code != "LA401"
            else flagged.filter(
                (pl.col("_kind") == "LA401") | pl.col("_retry_transient") | pl.col("_retry_non_transient")
            )
        )
        if rows.height == 0:
            continue
        mine = (pl.col("_kind") == code) & pl.col("_removed")
        worst = _worst(rows.filter(mine), opts.worst_sessions)
        stats = (
            rows.group_by("_feature")
            .agg(
                mine.sum().alias("removed"),
                (pl.col("cost_usd") - pl.col("_after")).filter(pl.col("_kind") == code).sum().alias("savings"),
                pl.col("_retry_transient").sum().alias("retry_transient"),
                pl.col("_retry_non_transient").sum().alias("retry_non_transient"),
                pl.col("_billed_failure").sum().alias("billed_failures"),
                pl.col("_etype").filter(pl.col("_kind") == "LA401").value_counts(sort=True).alias("error_types"),
                pl.col("model").drop_nulls().unique().sort().alias("models"),
                pl.col("_scope").filter(mine).n_unique().alias("scopes"),
                pl.col("request_id").filter(mine).drop_nulls().sort().head(3).alias("examples"),
            )
            .sort("_feature")
        )
        for r in stats.iter_rows(named=True):
            savings = dec(r["savings"])
            retries = int(r["retry_transient"]) + int(r["retry_non_transient"])
            affected = retries if code == "LA401" else int(r["removed"])
            evidence: dict[str, Any] = {
                "extra_calls" if code != "LA401" else "failed_attempts_removed": int(r["removed"]),
                "waste_usd": usd(savings),
                "models": list(r["models"]),
                "sessions_or_users": int(r["scopes"]),
                "worst_sessions": worst.get(r["_feature"], []),
                "example_request_ids": list(r["examples"]),
            }
            if code == "LA401":
                evidence |= {
                    "retries_after_transient_errors": int(r["retry_transient"]),
                    "retries_after_non_transient_errors": int(r["retry_non_transient"]),
                    "billed_failed_attempts": int(r["billed_failures"]),
                    "failed_attempts_by_error": {
                        str(v["_etype"]): int(v["count"]) for v in r["error_types"] if v["_etype"] is not None
                    },
                    "note": "retries after transient errors are legitimate; the waste is the billed cost of "
                    "failed attempts (usually unbilled) and of repeating non-transient errors",
                }
            noun = ("retry", "retries") if code == "LA401" else ("extra call", "extra calls")
            title = f"{_TITLES[code]} in {r['_feature']}: {affected:,} {noun[affected != 1]}"
            findings.append(
                Finding(
                    code=code,
                    lever=LEVER_ID,
                    title=title,
                    severity=_severity(code, savings, total, int(r["retry_non_transient"])),
                    savings_usd=usd(savings) or 0.0,
                    affected_requests=affected,
                    recommendation=_FIXES[code],
                    scope={"feature": r["_feature"]},
                    evidence=evidence,
                )
            )
    return _fold_free_retries(findings)


def _fold_free_retries(findings: list[Finding]) -> list[Finding]:
    """Retries that only followed transient, unbilled errors cost nothing: one summary instead of one per feature.

    They are still worth knowing (retry volume, error mix) but a dozen $0 findings would bury the ones that pay.
    """
    free = [f for f in findings if f.code == "LA401" and f.severity == "info" and not f.savings_usd]
    if len(free) < 2:
        return findings
    kept = [f for f in findings if f not in free]
    by_error: dict[str, int] = {}
    for finding in free:
        for error, n in finding.evidence.get("failed_attempts_by_error", {}).items():
            by_error[error] = by_error.get(error, 0) + n
    retries = sum(f.affected_requests for f in free)
    summary = Finding(
        code="LA401",
        lever=LEVER_ID,
        title=f"{retries:,} retries after transient errors in {len(free)} features; the failed attempts were unbilled",
        severity="info",
        savings_usd=0.0,
        affected_requests=retries,
        recommendation=_FIXES["LA401"],
        scope={},
        evidence={
            "retries_by_feature": {str(f.scope.get("feature")): f.affected_requests for f in free},
            "failed_attempts_by_error": dict(sorted(by_error.items())),
            "note": "retries after transient errors are legitimate and these failed attempts carried no usage, so "
            "no waste is counted; watch the volume (rate limits may call for backoff or a higher tier)",
        },
    )
    return [*kept, summary]


def _gaps(flagged: pl.DataFrame, frame: pl.DataFrame) -> list[Gap]:
    gaps: list[Gap] = []
    anonymous = flagged.filter(pl.col("_anonymous") & pl.col("_kind").is_not_null())
    if anonymous.height:
        at_stake = anonymous.select((pl.col("cost_usd") - pl.col("_after")).sum()).item()
        gaps.append(
            Gap(
                lever=LEVER_ID,
                missing_fields=["session_id", "user"],
                requests=anonymous.height,
                cost_at_stake_usd=usd(dec(at_stake)) or 0.0,
                note="repeated prompts without a session or user: retries, duplicates or different people asking "
                "the same thing; not counted as waste (set levers.retries.require_identity: false to count them)",
            )
        )
    unhashed = frame.select("prompt_hash", "cost_usd").filter(pl.col("prompt_hash").is_null())
    if unhashed.height:
        gaps.append(
            Gap(
                lever=LEVER_ID,
                missing_fields=["prompt_hash"],
                requests=unhashed.height,
                cost_at_stake_usd=usd(total_cost(unhashed)) or 0.0,
                note="no prompt text or fingerprint: retries and duplicates among these requests cannot be seen",
            )
        )
    return gaps


class RetriesLever:
    id = LEVER_ID
    title = "Retries, duplicates, fan-out and agent loops"
    # request_id (example ids): fetched for the flagged rows only (fetch_rows), not loaded for every request
    reads: tuple[str, ...] = ("latency_ms", "user", "session_id", "prompt_hash", "http_status", "error_type")

    def check_options(self, options: dict[str, Any]) -> None:
        RetryOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return features(chunk)

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = RetryOptions.parse(ctx.options)
        frame = ensure_reduced(frame, self, ctx.options)
        result = LeverResult(
            lever_id=LEVER_ID,
            title=self.title,
            confidence="measured",
            counterfactual=empty_counterfactual(),
            assumptions=[
                f"Same call = same session (else user), same model and same prompt fingerprint; retries within "
                f"{opts.retry_window_seconds:g}s of a failure, duplicates within {opts.duplicate_window_seconds:g}s "
                "of a success or while it was still running.",
                "Retries after transient errors (429/529/5xx/timeout) are legitimate; only the billed cost of "
                "failed attempts and retries of non-transient errors (400/401/403/404) count as waste.",
                "Duplicates keep the first call; fan-out keeps the call that finished first (range: the dearest "
                "to the cheapest call of the group).",
                f"Agent loops keep the first {opts.loop_threshold - 1} identical tool calls of a run; later steps "
                "are removed, and the shorter history they would leave in later prompts is not credited.",
            ],
            method="Attempts of the same call are linked in time order per (session or user, model, prompt hash); "
            "each extra attempt's cost is removed (cost after = 0).",
        )
        if frame.height == 0:
            return result
        flagged_all = detect(frame, opts)
        result.gaps = _gaps(flagged_all, frame) if opts.require_identity else _gaps(flagged_all.head(0), frame)
        flagged = flagged_all.filter(~pl.col("_anonymous")) if opts.require_identity else flagged_all
        flagged = flagged.with_columns(
            pl.col("_scope").fill_null("(no session or user)"),
            fetch_rows(frame, ctx, flagged["row_id"], ("request_id",))["request_id"],
        )
        touched = flagged.filter(pl.col("_kind").is_not_null() & pl.col("cost_usd").is_not_null())
        if touched.height:
            result.counterfactual = counterfactual_frame(
                touched["row_id"], touched["_after"], touched["_after_low"], touched["_after_high"]
            )
        total = total_cost(frame)
        result.findings = _findings(flagged, total, opts)
        return result


LEVER = RetriesLever()
