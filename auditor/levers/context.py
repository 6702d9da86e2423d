"""context_trimming lever (LA7xx): input tokens a request carries although the model hardly needs them.

History resent in full (LA701). Requests of one conversation, i.e. one (session_id, feature, model), are put in
time order; request n is "turn" n. A step is *append-only* when the input grew by at least
`min_growth_share` of the previous visible answer (output minus reasoning, which is never resent) and the
message count did not shrink (when logged). A conversation of at least `min_turns` turns whose steps are at
least `min_append_share` append-only resends its whole history on every turn.

The counterfactual keeps the system prompt and a window of the last K turns (`window_turns`, default 6):

    removed_n = max(0, min(input_{n-K}, input_n) - input_1)      for append-only turns n >= K + 2, else 0
    kept_n    = input_n - removed_n = input_1 + (input_n - input_{n-K})

input_1 (the first request: system prompt + opening message) stands for the part that is always kept, and
input_n - input_{n-K} is everything the last K turns appended (the current message included), so neither the
system prompt nor the current turn is ever removed. A log that starts mid-conversation makes input_1 larger
and the estimate smaller (conservative). `summary_tokens` > 0 prices summarization instead: that many tokens of
the removed span stay in the prompt as a running summary.

Which token classes are removed follows the prompt's layout: cache reads cover a prefix, then 1-hour and
5-minute cache writes, then uncached input. The removed span [input_1, input_1 + removed_n) is laid over
that layout and each class loses its overlap. Old history sits right after the system prompt, so in a cached
conversation it is mostly cache reads (cheap at ~0.1x) and trimming saves little; the evidence states the
cache share of the removed history. Trimming also moves the prefix boundary every turn, which can break the
cache for what is kept; prompt_caching is planned after this lever and prices what is left.

Oversized context (LA702). Per feature, when p99 input > `oversized_ratio` x median and > `oversized_min_tokens`,
requests above both thresholds with short answers (<= `short_output_tokens`) may carry over-fetched retrieval
or tool output. Whether the model needed it is unknowable from logs: the expected and pessimistic savings are
0; the optimistic case caps the input at the feature's p90 (`oversized_cap_quantile`), removing the tail of
the prompt (uncached input first, by the same layout rule).

Duplicated text (LA703). A line of at least `duplicate_min_chars` characters that occurs more than once in one
`prompt_text`. The extra copies' share of the prompt's characters times its input tokens is removed (from the
tail of the layout) in the expected and optimistic cases; the pessimistic case is 0, since repeating the
instructions after a long context can be deliberate. The full prompt exists only at ingest (auditor.reduce), so
`features` measures the copies there, once per distinct prompt of a chunk; `analyze` reads those features.

A request belongs to at most one code, in the order LA701, LA703, LA702. Confidence `heuristic`: whether a
shorter context keeps the answers as good is a quality assumption.
"""

from __future__ import annotations

from collections.abc import Callable
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
from auditor.levers.options import count, number, reject_unknown
from auditor.prices import row_slices
from auditor.redact import excerpt
from auditor.reduce import HEAD_CHARS, ensure_reduced
from auditor.report import Finding, Gap, usd
from auditor.schema import TOKEN_COLUMNS

LEVER_ID = "context_trimming"
_OPT = f"levers.{LEVER_ID}"
UNATTRIBUTED = "(unattributed)"
_MONEY = pl.Decimal(38, 12)
_CASES = ("expected", "low", "high")  # low = least savings (pessimistic), high = most savings (optimistic)
_KEYS = ["session_id", "_feature", "_model"]
_CACHE_CLASSES = ("cache_read_tokens", "cache_write_1h_tokens", "cache_write_5m_tokens")  # prompt order
# Features (auditor.reduce), null when the prompt has no repeated line: characters of the extra copies, and the
# first HEAD_CHARS characters of one repeated line (the evidence excerpt).
DUP_CHARS = f"_{LEVER_ID}_dup_chars"
DUP_TEXT = f"_{LEVER_ID}_dup_text"

_FIXES = {
    "LA701": (
        "Send the system prompt plus a sliding window of the last few turns instead of the whole conversation; "
        "keep older turns as a short running summary (regenerated every few turns) or retrieve them on demand. "
        "If the history is prompt-cached, keep the cache breakpoint after the stable part so the window does not "
        "rewrite the cache every turn."
    ),
    "LA702": (
        "Check what the large requests carry: cap retrieved chunks (top-k, a token budget per request), truncate or "
        "summarize long tool results before they go back to the model, and drop fields the answer never uses."
    ),
    "LA703": (
        "Remove the repeated text when the prompt is assembled (the same document or instructions inserted twice, "
        "the system prompt copied into the first user message); keep one copy."
    ),
}


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ContextOptions:
    window_turns: int = 6  # turns kept besides the system prompt (expected case)
    window_turns_low_savings: int = 10  # pessimistic case: a wider window
    window_turns_high_savings: int = 4  # optimistic case: a narrower window
    summary_tokens: int = 0  # tokens of a running summary that replace the dropped turns (0 = plain window)
    min_turns: int = 8  # shorter conversations are not flagged
    min_append_share: float = 0.8  # share of a conversation's steps that must be append-only
    min_growth_share: float = 0.5  # an append-only step grows by at least this share of the previous answer
    oversized_ratio: float = 4.0  # LA702: p99 input above this multiple of the feature's median ...
    oversized_min_tokens: int = 8000  # ... and above this many tokens
    oversized_min_requests: int = 20  # requests a feature needs before its distribution is trusted
    short_output_tokens: int = 500  # LA702 counts large requests whose answer is at most this long
    oversized_cap_quantile: float = 0.9  # LA702 optimistic case caps input at this quantile of the feature
    duplicate_min_chars: int = 500  # LA703: shortest repeated line that counts
    worst_sessions: int = 5  # sessions listed per finding

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ContextOptions:
        reject_unknown(raw, cls.__dataclass_fields__, _OPT)
        d = cls()
        opts = cls(
            window_turns=count(raw, "window_turns", d.window_turns, _OPT),
            window_turns_low_savings=count(raw, "window_turns_low_savings", d.window_turns_low_savings, _OPT),
            window_turns_high_savings=count(raw, "window_turns_high_savings", d.window_turns_high_savings, _OPT),
            summary_tokens=count(raw, "summary_tokens", d.summary_tokens, _OPT),
            min_turns=count(raw, "min_turns", d.min_turns, _OPT),
            min_append_share=number(raw, "min_append_share", d.min_append_share, _OPT, upper=1.0),
            min_growth_share=number(raw, "min_growth_share", d.min_growth_share, _OPT),
            oversized_ratio=number(raw, "oversized_ratio", d.oversized_ratio, _OPT),
            oversized_min_tokens=count(raw, "oversized_min_tokens", d.oversized_min_tokens, _OPT),
            oversized_min_requests=count(raw, "oversized_min_requests", d.oversized_min_requests, _OPT),
            short_output_tokens=count(raw, "short_output_tokens", d.short_output_tokens, _OPT),
            oversized_cap_quantile=number(raw, "oversized_cap_quantile", d.oversized_cap_quantile, _OPT, upper=1.0),
            duplicate_min_chars=count(raw, "duplicate_min_chars", d.duplicate_min_chars, _OPT),
            worst_sessions=count(raw, "worst_sessions", d.worst_sessions, _OPT),
        )
        if opts.window_turns < 1:
            raise ConfigError(f"{_OPT}.window_turns must be at least 1")
        if not opts.window_turns_low_savings >= opts.window_turns >= opts.window_turns_high_savings >= 1:
            raise ConfigError(
                f"{_OPT}: need window_turns_low_savings >= window_turns >= window_turns_high_savings >= 1 "
                "(a wider window saves less)"
            )
        if opts.duplicate_min_chars < 50:
            raise ConfigError(f"{_OPT}.duplicate_min_chars must be at least 50")
        return opts

    def window(self, case: str) -> int:
        return {"expected": self.window_turns, "low": self.window_turns_low_savings}.get(
            case, self.window_turns_high_savings
        )


# ---------------------------------------------------------------------------------------------- token layout


def _overlap(lo: pl.Expr, hi: pl.Expr, start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (pl.min_horizontal(hi, end) - pl.max_horizontal(lo, start)).clip(0)


def _trimmed(rows: pl.DataFrame, start: str, removed: str) -> pl.DataFrame:
    """A copy of the rows whose input lost the token span [start, start + removed) of the prompt.

    Layout in prompt order: cache reads, 1-hour writes, 5-minute writes, then uncached input (cached tokens are
    always a prefix). Each cache class loses its overlap with the span and input_tokens loses the whole span, so
    every class stays within its logged count and the cache columns still add up to at most input_tokens.
    """
    span_start = pl.col(start)
    span_end = span_start + pl.col(removed)
    lo: pl.Expr = pl.lit(0, dtype=pl.Int64)
    cut = []
    for name in _CACHE_CLASSES:
        hi = lo + pl.col(name).fill_null(0)
        cut.append((pl.col(name) - _overlap(lo, hi, span_start, span_end)).alias(name))
        lo = hi
    return rows.with_columns(*cut, (pl.col("input_tokens") - pl.col(removed)).alias("input_tokens"))


def _removed_classes(rows: pl.DataFrame, start: str, removed: str) -> pl.DataFrame:
    """Tokens of each class inside the removed span (for the evidence): _rm_read, _rm_write, _rm_uncached."""
    after = _trimmed(rows, start, removed)
    reads = (rows["cache_read_tokens"].fill_null(0) - after["cache_read_tokens"].fill_null(0)).alias("_rm_read")
    writes = (
        rows["cache_write_5m_tokens"].fill_null(0)
        + rows["cache_write_1h_tokens"].fill_null(0)
        - after["cache_write_5m_tokens"].fill_null(0)
        - after["cache_write_1h_tokens"].fill_null(0)
    ).alias("_rm_write")
    return rows.with_columns(reads, writes).with_columns(
        (pl.col(removed) - pl.col("_rm_read") - pl.col("_rm_write")).clip(0).alias("_rm_uncached")
    )


# Rows repriced at once (_price_after): the price join holds ~1.2 KB a row while it runs, and in conversational
# logs most requests can be resent history.
_PRICE_ROWS = 8192


def _price_after(rows: pl.DataFrame, ctx: LeverContext, start: str, removed: str) -> pl.Series:
    """Cost after removing the span, never above the logged cost (a lever never adds cost)."""
    pieces = [
        ctx.prices.cost(_trimmed(part, start, removed), price_date=ctx.price_date)
        for part in row_slices(rows, _PRICE_ROWS)
    ]
    cost = (pl.concat(pieces) if len(pieces) > 1 else pieces[0]).cast(_MONEY)
    logged = rows["cost_usd"].cast(_MONEY)
    return pl.select(pl.when(cost < logged).then(cost).otherwise(logged)).to_series()


# ---------------------------------------------------------------------------------------------- detection


def _candidates(frame: pl.DataFrame) -> pl.DataFrame:
    """Every request with the columns the conversations, pricing and the findings read, and the conversation keys
    `_feature` and `_model`: a select (no copy of the frame's columns); steps filter or gather the rows they need.
    request_id and prompt_chars are fetched for the few rows a finding reads them of (fetch_rows)."""
    return frame.select(
        "row_id",
        "timestamp",
        "session_id",
        "model",
        "model_id",
        "provider",
        pl.col("feature").fill_null(UNATTRIBUTED).alias("_feature"),
        pl.coalesce("model_id", "model").fill_null("(unknown model)").alias("_model"),
        *TOKEN_COLUMNS,
        "messages_count",
        pl.col(DUP_CHARS).alias("_dup_chars"),
        pl.col(DUP_TEXT).alias("_dup_text"),
        "batch",
        "service_tier",
        "status",
        "cost_usd",
    )


# Successful requests with an input count
_CANDIDATE = (pl.col("status").fill_null("ok") != "error") & pl.col("input_tokens").is_not_null()


# Columns of _candidates() only the duplicate and oversized checks read (on the rows outside conversations)
_NOT_IN_CONVERSATIONS = ("provider", "_dup_chars", "_dup_text")
# What deciding which conversations resend their history reads, besides `_g` (_append, _resent_runs)
_STEP_COLUMNS = ("input_tokens", "output_tokens", "reasoning_tokens", "messages_count")


def _in_time_order(rows: pl.DataFrame) -> bool:
    """Rows already in (timestamp, row_id) order, as the pipeline's sorted frame is (row_id = position)."""
    timestamp = rows["timestamp"]
    return timestamp.null_count() == 0 and timestamp.is_sorted() and rows["row_id"].is_sorted()


def _conversation_order(rows: pl.DataFrame) -> pl.Series:
    """Positions of the candidate rows with a session, sorted by conversation then time (timestamp, row_id).

    Only positions are sorted; each step then gathers the few columns it reads. Sorting on a 64-bit hash of the
    key is several times faster than on three strings (_conversation_ids still compares the real key values, so
    a hash collision can only split a conversation, never merge two). Rows already in time order need only a
    stable sort on the hash: the same order, for less memory and time than a three-key sort.
    """
    time_ordered = _in_time_order(rows)
    keyed = (
        rows.lazy()
        .with_row_index("_i")
        .filter(_CANDIDATE & pl.col("session_id").is_not_null())
        .select("_i", pl.struct(_KEYS).hash().alias("_k"), *([] if time_ordered else ["timestamp", "row_id"]))
    )
    ordered = keyed.sort("_k", maintain_order=True) if time_ordered else keyed.sort(["_k", "timestamp", "row_id"])
    return ordered.collect().get_column("_i")


def _conversation_ids(rows: pl.DataFrame, order: pl.Series) -> pl.Series:
    """`_g`, an integer id per conversation (1, 2, ...) for the rows `order`: a new id wherever a key differs
    from the row before. The keys (a string and two Categoricals) are gathered only to be compared."""
    same = pl.lit(True)
    for key in _KEYS:
        value = pl.col(key).gather(order)
        same = same & (value == value.shift(1))
    return rows.select((~same.fill_null(False)).cum_sum().alias("_g")).to_series()


def _earlier(expr: pl.Expr, k: int) -> pl.Expr:
    """`expr` k rows earlier in the same conversation, else null: `expr.shift(k).over("_g")` without a window
    (rows are sorted by conversation, so the row k back is in it exactly when it has the same `_g`)."""
    return pl.when(pl.col("_g").shift(k) == pl.col("_g")).then(expr.shift(k))


def _append(opts: ContextOptions) -> pl.Expr:
    """Whether a turn is append-only: its input grew by at least min_growth_share of the previous visible answer
    and its message count did not shrink (when logged); never the first turn of a conversation."""
    inp = pl.col("input_tokens")
    visible = (pl.col("output_tokens") - pl.col("reasoning_tokens").fill_null(0)).clip(0)
    growth = inp - _earlier(inp, 1)
    msgs, prev_msgs = pl.col("messages_count"), _earlier(pl.col("messages_count"), 1)
    return (
        (growth > 0)
        & (growth >= opts.min_growth_share * _earlier(visible, 1).fill_null(0))
        & (msgs.is_null() | prev_msgs.is_null() | (msgs > prev_msgs))
    ).fill_null(False)


def _resends(turns: pl.Expr, appends: pl.Expr, opts: ContextOptions) -> pl.Expr:
    """A conversation resends its history: enough turns, and enough of its steps append-only."""
    steps = (turns - 1).clip(1)
    return (turns >= opts.min_turns) & (appends >= opts.min_append_share * steps)


@dataclass(frozen=True)
class _Runs:
    """The conversations of the rows `order` (runs of equal `_g`), one row each: `_turns`, `_resent` and the
    conversation's `_feature`; and `_resent` per row of `order`."""

    runs: pl.DataFrame
    row_resent: pl.Series


def _resent_runs(cands: pl.DataFrame, order: pl.Series, g: pl.Series, opts: ContextOptions) -> _Runs:
    """Which conversations resend their history, from the step columns alone (not a copy of every column of every
    conversation row): per row only `_g`, the append flag and its running count; per conversation its turns and
    appends, from the running count at its last row (rows are sorted by conversation)."""
    steps = cands.select(_STEP_COLUMNS).gather(order).with_columns(g)
    last = (pl.col("_g") != pl.col("_g").shift(-1)).fill_null(True)
    counted = steps.select(pl.col("_g"), _append(opts).cast(pl.Int64).cum_sum().alias("_appended"), last.alias("_last"))
    del steps
    ends = counted.select(pl.int_range(pl.len(), dtype=pl.Int64).filter(pl.col("_last")).alias("_end"))
    at_end = counted.select("_appended").to_series().gather(ends.to_series())
    del counted
    runs = ends.with_columns(at_end).select(
        (pl.col("_end") - pl.col("_end").shift(1, fill_value=-1)).alias("_turns"),
        (pl.col("_appended") - pl.col("_appended").shift(1, fill_value=0)).alias("_appends"),
        (pl.col("_end").shift(1, fill_value=-1) + 1).alias("_start_at"),  # its first row
    )
    runs = runs.select(
        "_turns",
        _resends(pl.col("_turns"), pl.col("_appends"), opts).alias("_resent"),
        cands.get_column("_feature").gather(order.gather(runs["_start_at"])),
    )
    # _g counts conversations from 1: conversation _g is run _g - 1
    return _Runs(runs, runs.get_column("_resent").gather((g - 1).cast(pl.Int64)))


def _history(sessions: pl.DataFrame, opts: ContextOptions) -> pl.DataFrame:
    """Whole conversations in turn order (with `_g`) plus `_turn`, `_append`, `_resent` (the conversation resends
    its history) and, per case, `_removed_<case>` (history tokens outside the window) and `_start` (input_1)."""
    inp = pl.col("input_tokens")
    # Per-conversation counts from the first and last row of each run of `_g` (fills, not windows: faster).
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    first = (pl.col("_g") != pl.col("_g").shift(1)).fill_null(True)
    last = (pl.col("_g") != pl.col("_g").shift(-1)).fill_null(True)
    appended = pl.col("_append").cast(pl.Int64).cum_sum()
    sessions = sessions.with_columns(
        _append(opts).alias("_append"),
        pl.when(first).then(index).forward_fill().alias("_i0"),
        pl.when(last).then(index).backward_fill().alias("_i1"),
        pl.when(first).then(inp).forward_fill().alias("_first_input"),  # input_tokens is never null here
    ).with_columns(
        (index - pl.col("_i0") + 1).alias("_turn"),
        (pl.col("_i1") - pl.col("_i0") + 1).alias("_turns"),
        (
            pl.when(last).then(appended).backward_fill()
            - pl.when(first).then(appended - pl.col("_append").cast(pl.Int64)).forward_fill()
        ).alias("_appends"),
    )
    sessions = sessions.with_columns(
        _resends(pl.col("_turns"), pl.col("_appends"), opts).alias("_resent"),
        (pl.col("_first_input") + opts.summary_tokens).alias("_start"),
    ).drop("_i0", "_i1", "_appends")
    for case in _CASES:
        k = opts.window(case)
        history = (pl.min_horizontal(_earlier(inp, k), inp) - pl.col("_first_input")).clip(0)
        removed = (history - opts.summary_tokens).clip(0)
        eligible = pl.col("_resent") & pl.col("_append") & (pl.col("_turn") >= k + 2)
        sessions = sessions.with_columns(
            pl.when(eligible).then(removed).otherwise(0).fill_null(0).alias(f"_removed_{case}")
        )
    return sessions


@dataclass(frozen=True)
class Conversations:
    """What the findings read of the conversations: the resent ones whole, the others as counts."""

    resent: pl.DataFrame  # the rows of conversations resending their history: _history() columns
    flat: dict[str, int]  # per feature, conversations of at least min_turns turns that do not resend it


def conversations(cands: pl.DataFrame, opts: ContextOptions) -> Conversations:
    """The conversations of the candidate rows (_candidates()): one (session_id, feature, model) in time order.

    Which conversations resend their history is decided on a few columns per row; only their rows are then
    gathered whole (a copy of every column of every conversation row was this lever's peak)."""
    order = _conversation_order(cands)
    g = _conversation_ids(cands, order)
    runs = _resent_runs(cands, order, g, opts)
    flat = (
        runs.runs.filter(~pl.col("_resent") & (pl.col("_turns") >= opts.min_turns))
        .group_by("_feature")
        .agg(pl.len().alias("n"))
    )
    kept = runs.row_resent
    resent = cands.select(pl.exclude(_NOT_IN_CONVERSATIONS).gather(order.filter(kept))).with_columns(g.filter(kept))
    return Conversations(_history(resent, opts), {r["_feature"]: int(r["n"]) for r in flat.iter_rows(named=True)})


def oversized(rows: pl.DataFrame, opts: ContextOptions, where: pl.Expr) -> pl.DataFrame:
    """LA702 candidates among the rows meeting `where`: rows of flagged features above both thresholds with short
    answers, plus the feature's distribution and `_removed_high` (input above the cap quantile). Only those rows
    are copied: the distribution reads two columns, and the thresholds a feature cannot pass filter first."""
    inp = pl.col("input_tokens")
    considered = rows.lazy().filter(where)
    stats = (
        considered.group_by("_feature")
        .agg(
            pl.len().alias("_n"),
            inp.median().alias("_median"),
            inp.quantile(0.99, interpolation="nearest").alias("_p99"),
            inp.quantile(opts.oversized_cap_quantile, interpolation="nearest").alias("_cap"),
        )
        .filter(
            (pl.col("_n") >= opts.oversized_min_requests)
            & (pl.col("_p99") > opts.oversized_ratio * pl.col("_median"))
            & (pl.col("_p99") > opts.oversized_min_tokens)
        )
        .collect()
    )
    short = (pl.col("output_tokens") <= opts.short_output_tokens).fill_null(False)
    flagged = considered.filter(
        pl.col("_feature").is_in(stats["_feature"].implode()) & (inp > opts.oversized_min_tokens) & short
    )
    return (
        flagged.join(stats.lazy(), on="_feature", how="inner", maintain_order="left")
        .filter(inp > opts.oversized_ratio * pl.col("_median"))
        .with_columns(
            pl.col("_cap").cast(pl.Int64).alias("_start"),
            (inp - pl.col("_cap").cast(pl.Int64)).clip(0).alias("_removed_high"),
        )
        .collect()
    )


def duplicate_features(chunk: pl.DataFrame, min_chars: int) -> pl.DataFrame:
    """LA703 features of a chunk with full texts: DUP_CHARS (characters of the extra copies of every line of at
    least `min_chars` characters that occurs more than once in the prompt) and DUP_TEXT (the head of the smallest
    such line), null when the prompt has none; same height and order as `chunk`.

    Each distinct prompt of the chunk (by a 64-bit hash of its text) is split into lines once; lines are grouped by
    their hash, and only the few (prompt, hash) pairs seen twice are compared on the text itself, so a collision
    cannot invent a duplicate.
    """
    schema = {DUP_CHARS: pl.Int64(), DUP_TEXT: pl.String()}
    text = pl.col("prompt_text")
    # two lines of min_chars characters need at least 2 * min_chars bytes: shorter prompts are not split
    keyed = chunk.select(pl.when(text.str.len_bytes() >= 2 * min_chars).then(text.hash()).alias("_fp"), text)
    distinct = keyed.filter(pl.col("_fp").is_not_null()).unique("_fp", keep="any")
    lines = (
        distinct.select("_fp", text.str.split("\n").alias("_line"))
        .explode("_line")
        .filter(pl.col("_line").str.len_bytes() >= min_chars)  # bytes >= characters: a cheap bound first
        .with_columns(pl.col("_line").hash().alias("_h"))
    )
    twice = lines.group_by("_fp", "_h").agg(pl.len().alias("_n")).filter(pl.col("_n") >= 2).drop("_n")
    # Equal lines have equal lengths, so the exact character threshold can wait until the few repeated ones.
    repeated = (
        lines.join(twice, on=["_fp", "_h"], how="semi")
        .filter(pl.col("_line").str.len_chars() >= min_chars)
        .group_by("_fp", "_line")
        .agg(pl.len().alias("_copies"))
        .filter(pl.col("_copies") >= 2)
        .group_by("_fp")
        .agg(
            ((pl.col("_copies") - 1) * pl.col("_line").str.len_chars()).sum().cast(pl.Int64).alias(DUP_CHARS),
            pl.col("_line").min(),
        )
    )
    if repeated.height == 0:
        return pl.DataFrame(schema=schema).clear(chunk.height)  # all null
    # One head per distinct repeated line (many prompts often repeat the same one); joins share it, and
    # concat_str copies it, where a plain slice would keep the whole line alive.
    heads = repeated.select(pl.col("_line").unique()).with_columns(
        pl.concat_str(pl.col("_line").str.slice(0, HEAD_CHARS), pl.lit("")).alias(DUP_TEXT)
    )
    repeated = repeated.join(heads, on="_line", how="left").drop("_line")
    return keyed.select("_fp").join(repeated, on="_fp", how="left", maintain_order="left").select(*schema)


# ---------------------------------------------------------------------------------------------- findings


def _scope(feature: str, models: list[str]) -> dict[str, str]:
    return {"feature": feature, "model": models[0]} if len(models) == 1 else {"feature": feature}


def _saving(case: str) -> pl.Expr:
    return (pl.col("cost_usd") - pl.col(f"_after_{case}")).fill_null(Decimal(0))


class ContextLever:
    id = LEVER_ID
    title = "Resent history and oversized context"
    # last_user_text heads only for the excerpts shown: fetched for those rows (fetch_rows), not loaded for all
    # Nor request_id and prompt_chars: fetched for the duplicate and oversized requests that read them.
    reads: tuple[str, ...] = ("session_id", "messages_count")

    def __init__(self) -> None:
        self.full_text = False
        self._fetch: Callable[[pl.Series, tuple[str, ...]], pl.DataFrame] | None = None

    def check_options(self, options: dict[str, Any]) -> None:
        ContextOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return duplicate_features(chunk, ContextOptions.parse(dict(options)).duplicate_min_chars)

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = ContextOptions.parse(ctx.options)
        frame = ensure_reduced(frame, self, ctx.options)
        privacy = getattr(ctx.config, "privacy", None) or {}
        self.full_text = bool(privacy.get("show_full_text", False))
        self._fetch = lambda ids, columns: fetch_rows(frame, ctx, ids, columns)
        result = LeverResult(
            lever_id=LEVER_ID,
            title=self.title,
            confidence="heuristic",
            counterfactual=empty_counterfactual(),
            assumptions=[
                f"Conversation = one session, feature and model; it resends its history when it has at least "
                f"{opts.min_turns} turns and at least {opts.min_append_share:.0%} of its steps grow the input by "
                f"the previous answer (append-only).",
                f"The window keeps the system prompt and the last {opts.window_turns} turns (range "
                f"{opts.window_turns_low_savings} to {opts.window_turns_high_savings}); removed tokens per turn = "
                "input of the turn K turns earlier minus the first turn's input. Answers are assumed as good and "
                "as long with the shorter history, which long conversations may contradict.",
                "Removed history is taken from the prompt position right after the first turn: cache reads first "
                "when the history is cached, else uncached input. Prompt caching of what is kept is left to the "
                "prompt_caching lever.",
                "Oversized context (LA702) saves nothing in the expected case; the optimistic case caps input at the "
                f"feature's p{opts.oversized_cap_quantile * 100:g}. Duplicated lines (LA703) are priced by their "
                "share of the prompt's characters; the pessimistic case keeps them.",
            ],
            method="Per conversation in time order, the token growth between turns shows what is resent; each "
            "request is repriced with its history beyond the window removed (PriceBook.cost on a copy).",
        )
        if frame.height == 0:
            return result
        # Each step copies only the rows it keeps: the resent conversations, the duplicates, the oversized ones.
        cands = _candidates(frame)
        convo = conversations(cands, opts)
        result.gaps = self._gaps(frame)
        outside = ~pl.col("row_id").is_in(convo.resent["row_id"].implode()) if convo.resent.height else pl.lit(True)
        resent = self._price_cases(convo.resent, ctx, {c: f"_removed_{c}" for c in _CASES})

        dups = self._duplicates(cands, _CANDIDATE & outside, ctx)
        big = oversized(cands, opts, _CANDIDATE & outside & ~pl.col("row_id").is_in(dups["row_id"].implode()))
        big = self._fetched(big, ("request_id",)).with_columns(pl.lit(0, dtype=pl.Int64).alias("_zero"))
        big = self._price_cases(big, ctx, {"expected": "_zero", "low": "_zero", "high": "_removed_high"})

        parts = [
            p.filter(pl.col("cost_usd").is_not_null() & (pl.col("_after_high") < pl.col("cost_usd")))
            for p in (resent, dups, big)
            if p.height
        ]
        touched = [p.select("row_id", "_after_expected", "_after_low", "_after_high") for p in parts if p.height]
        if touched:
            cf = pl.concat(touched)
            result.counterfactual = counterfactual_frame(
                cf["row_id"], cf["_after_expected"], cf["_after_low"], cf["_after_high"]
            )
        total = total_cost(frame)
        result.findings = [
            *self._history_findings(resent, convo.flat, total, opts),
            *self._duplicate_findings(dups, total),
            *self._oversized_findings(big, total, opts),
        ]
        return result

    # -- pricing ------------------------------------------------------------------------------------------------

    @staticmethod
    def _price_cases(rows: pl.DataFrame, ctx: LeverContext, removed: dict[str, str]) -> pl.DataFrame:
        """`_after_<case>` per case, ordered so that low savings <= expected <= high savings per request."""
        if rows.height == 0:
            return rows.with_columns(pl.lit(None, dtype=_MONEY).alias(f"_after_{c}") for c in _CASES)
        priced = rows.with_columns(
            _price_after(rows, ctx, "_start", column).alias(f"_after_{case}") for case, column in removed.items()
        )
        return priced.with_columns(
            pl.max_horizontal("_after_low", "_after_expected").alias("_after_low"),
            pl.min_horizontal("_after_high", "_after_expected").alias("_after_high"),
        )

    def _duplicates(self, cands: pl.DataFrame, where: pl.Expr, ctx: LeverContext) -> pl.DataFrame:
        rows = self._fetched(cands.filter(where & pl.col("_dup_chars").is_not_null()), ("prompt_chars", "request_id"))
        # The copies' share of the prompt's characters, in tokens; taken from the end of the layout.
        rows = rows.with_columns(
            (pl.col("input_tokens") * pl.col("_dup_chars") / pl.col("prompt_chars"))
            .floor()
            .cast(pl.Int64)
            .clip(0, pl.col("input_tokens"))
            .alias("_dup_tokens"),
            pl.lit(0, dtype=pl.Int64).alias("_zero"),
        ).with_columns((pl.col("input_tokens") - pl.col("_dup_tokens")).alias("_start"))
        return self._price_cases(rows, ctx, {"expected": "_dup_tokens", "low": "_zero", "high": "_dup_tokens"})

    # -- findings -----------------------------------------------------------------------------------------------

    def _excerpt(self, text: str | None) -> str:
        return excerpt(text, full=self.full_text)

    def _fetched(self, rows: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
        """`rows` plus these columns of theirs, fetched (not loaded for every request)."""
        assert self._fetch is not None  # set by analyze
        return rows.hstack(self._fetch(rows["row_id"], columns).drop("row_id").get_columns())

    def _head(self, row_id: int | None) -> str | None:
        """The last_user_text head of one request (None for no request)."""
        if row_id is None or self._fetch is None:
            return None
        ids = pl.Series("row_id", [row_id], dtype=pl.Int64)
        head: str | None = self._fetch(ids, ("last_user_text",))["last_user_text"][0]
        return head

    def _history_findings(
        self, resent: pl.DataFrame, flat: dict[str, int], total: Decimal, opts: ContextOptions
    ) -> list[Finding]:
        if resent.height == 0:
            return []
        resent = _removed_classes(resent, "_start", "_removed_expected")
        per_session = (
            resent.group_by("_feature", "session_id", "_model")
            .agg(
                pl.len().alias("turns"),
                pl.col("_removed_expected").sum().alias("tokens"),
                _saving("expected").sum().alias("savings"),
                pl.col("row_id").first().alias("_opening_id"),  # its head is fetched for the example shown
            )
            .sort(["_feature", "savings", "tokens", "session_id"], descending=[False, True, True, False])
        )
        stats = resent.group_by("_feature").agg(
            pl.col("_g").n_unique().alias("sessions"),
            pl.len().alias("requests"),
            (pl.col("_removed_expected") > 0).sum().alias("trimmed"),
            pl.col("input_tokens").sum().alias("input"),
            pl.col("_removed_expected").sum().alias("removed"),
            pl.col("_rm_read").sum().alias("rm_read"),
            pl.col("_rm_write").sum().alias("rm_write"),
            pl.col("_rm_uncached").sum().alias("rm_uncached"),
            pl.col("cost_usd").sum().alias("cost"),
            *(_saving(c).sum().alias(f"savings_{c}") for c in _CASES),
            pl.col("model").drop_nulls().unique().sort().alias("models"),
        )
        findings = []
        for r in stats.sort("_feature").iter_rows(named=True):
            feature = r["_feature"]
            sessions = per_session.filter(pl.col("_feature") == feature)
            turns = sessions["turns"]
            removed, rm_read = int(r["removed"]), int(r["rm_read"])
            savings = dec(r["savings_expected"])
            worst = sessions.head(opts.worst_sessions)
            top = worst.row(0, named=True)
            cache_share = round(rm_read / removed, 4) if removed else 0.0
            evidence: dict[str, Any] = {
                "sessions": int(r["sessions"]),
                "requests": int(r["requests"]),
                "trimmed_requests": int(r["trimmed"]),
                "turns_median": float(turns.median() or 0),  # type: ignore[arg-type]
                "turns_max": int(turns.max() or 0),  # type: ignore[arg-type]
                "input_tokens": int(r["input"]),
                "history_tokens_removed": removed,
                "history_share_of_input": round(removed / int(r["input"]), 4) if r["input"] else 0.0,
                "removed_token_classes": {
                    "uncached": int(r["rm_uncached"]),
                    "cache_read": rm_read,
                    "cache_write": int(r["rm_write"]),
                },
                "cache_read_share_of_removed": cache_share,
                "window_turns": opts.window_turns,
                "savings_low_usd": usd(dec(r["savings_low"])),
                "savings_high_usd": usd(dec(r["savings_high"])),
                "cost_usd": usd(dec(r["cost"])),
                "models": list(r["models"]),
                "long_sessions_already_trimmed": flat.get(feature, 0),
                "worst_sessions": [
                    {
                        "session": w["session_id"],
                        "turns": int(w["turns"]),
                        "tokens_removed": int(w["tokens"]),
                        "savings_usd": usd(dec(w["savings"])),
                    }
                    for w in worst.iter_rows(named=True)
                ],
                "example": {
                    "session": top["session_id"],
                    "opening_message": self._excerpt(self._head(top["_opening_id"])),
                    "resent_in_later_requests": int(top["turns"]) - 1,
                },
            }
            if rm_read:
                evidence["note"] = (
                    f"{cache_share:.0%} of the removed history was read from the prompt cache (~0.1x input price): "
                    "trimming saves less there and moves the cached prefix every turn; keep the breakpoint stable"
                )
            findings.append(
                Finding(
                    code="LA701",
                    lever=LEVER_ID,
                    title=f"Conversation history resent in full in {feature}: {int(r['sessions']):,} sessions, "
                    f"{removed:,} tokens beyond a {opts.window_turns}-turn window",
                    severity=severity(savings, total),
                    savings_usd=usd(savings) or 0.0,
                    affected_requests=int(r["trimmed"]),
                    recommendation=_FIXES["LA701"],
                    scope=_scope(feature, list(r["models"])),
                    evidence=evidence,
                )
            )
        return findings

    def _duplicate_findings(self, dups: pl.DataFrame, total: Decimal) -> list[Finding]:
        if dups.height == 0:
            return []
        stats = dups.group_by("_feature").agg(
            pl.len().alias("requests"),
            pl.col("_dup_tokens").sum().alias("tokens"),
            pl.col("_dup_chars").sum().alias("chars"),
            *(_saving(c).sum().alias(f"savings_{c}") for c in _CASES),
            pl.col("model").drop_nulls().unique().sort().alias("models"),
            pl.col("_dup_text").sort_by("row_id").first().alias("text"),
            pl.col("request_id").drop_nulls().sort().head(3).alias("examples"),
        )
        findings = []
        for r in stats.sort("_feature").iter_rows(named=True):
            savings = dec(r["savings_expected"])
            findings.append(
                Finding(
                    code="LA703",
                    lever=LEVER_ID,
                    title=f"Text duplicated inside the prompt in {r['_feature']}: {int(r['requests']):,} requests",
                    severity=severity(savings, total),
                    savings_usd=usd(savings) or 0.0,
                    affected_requests=int(r["requests"]),
                    recommendation=_FIXES["LA703"],
                    scope=_scope(r["_feature"], list(r["models"])),
                    evidence={
                        "requests": int(r["requests"]),
                        "duplicated_chars": int(r["chars"]),
                        "duplicated_tokens_estimated": int(r["tokens"]),
                        "savings_low_usd": usd(dec(r["savings_low"])),
                        "savings_high_usd": usd(dec(r["savings_high"])),
                        "models": list(r["models"]),
                        "repeated_text": self._excerpt(r["text"]),
                        "example_request_ids": list(r["examples"]),
                        "note": "tokens estimated as the copies' share of the prompt's characters",
                    },
                )
            )
        return findings

    def _oversized_findings(self, big: pl.DataFrame, total: Decimal, opts: ContextOptions) -> list[Finding]:
        if big.height == 0:
            return []
        stats = big.group_by("_feature").agg(
            pl.len().alias("requests"),
            pl.col("_n").first(),
            pl.col("_median").first(),
            pl.col("_p99").first(),
            pl.col("_cap").first(),
            pl.col("input_tokens").mean().alias("input_mean"),
            pl.col("output_tokens").median().alias("output_median"),
            pl.col("_removed_high").sum().alias("above_cap"),
            pl.col("cost_usd").sum().alias("cost"),
            _saving("high").sum().alias("savings_high"),
            pl.col("model").drop_nulls().unique().sort().alias("models"),
            pl.col("request_id").sort_by("input_tokens", descending=True).drop_nulls().head(3).alias("examples"),
            pl.col("row_id").sort_by("input_tokens", descending=True).first().alias("_text_id"),
        )
        findings = []
        for r in stats.sort("_feature").iter_rows(named=True):
            cap_savings = dec(r["savings_high"])
            findings.append(
                Finding(
                    code="LA702",
                    lever=LEVER_ID,
                    title=f"Oversized context in {r['_feature']}: {int(r['requests']):,} requests above "
                    f"{opts.oversized_ratio:g}x the median input with short answers",
                    # Report-only: the expected saving is 0, so the severity follows the optimistic cap's share.
                    severity="low" if cap_savings > 0 and cap_savings / total >= Decimal("0.01") else "info",
                    savings_usd=0.0,
                    affected_requests=int(r["requests"]),
                    recommendation=_FIXES["LA702"],
                    scope=_scope(r["_feature"], list(r["models"])),
                    evidence={
                        "feature_requests": int(r["_n"]),
                        "input_median": float(r["_median"]),
                        "input_p99": int(r["_p99"]),
                        f"input_p{opts.oversized_cap_quantile * 100:g}": int(r["_cap"]),
                        "oversized_requests": int(r["requests"]),
                        "oversized_input_mean": round(float(r["input_mean"]), 1),
                        "oversized_output_median": float(r["output_median"]),
                        "tokens_above_cap": int(r["above_cap"]),
                        "cost_usd": usd(dec(r["cost"])),
                        "savings_if_capped_usd": usd(cap_savings),
                        "models": list(r["models"]),
                        "example_request_ids": list(r["examples"]),
                        "largest_request_excerpt": self._excerpt(self._head(r["_text_id"])),
                        "note": "whether the model needed this context is unknowable from logs; expected savings 0, "
                        "the optimistic case caps input at the feature's quantile",
                    },
                )
            )
        return findings

    # -- gaps ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _gaps(frame: pl.DataFrame) -> list[Gap]:
        """Candidate requests (_CANDIDATE) that look multi-turn but have no session: counted, not copied."""
        multi = _CANDIDATE & pl.col("session_id").is_null() & (pl.col("messages_count") >= 3)
        count, cost = frame.select(multi.sum(), pl.col("cost_usd").filter(multi).sum()).row(0)
        if not count:
            return []
        return [
            Gap(
                lever=LEVER_ID,
                missing_fields=["session_id"],
                requests=int(count),
                cost_at_stake_usd=usd(dec(cost)) or 0.0,
                note="multi-turn requests (3+ messages) without a session id: resent history cannot be measured "
                "across turns; log a conversation or thread id (attribution.session_id in llm-audit.yaml)",
            )
        ]


LEVER = ContextLever()
