"""response_cache lever (LA6xx): requests a response cache in front of the model would have answered.

Cache key = model + the whole prompt fingerprint (`prompt_hash`: tools, system and every message, so a
multi-turn request keys on its full conversation) + the parameters that change the answer (temperature,
max_tokens, response_format, tools_count). Only successful requests whose answer is not a tool call can be
stored or served: a failed call has no answer, and a tool call acts on state the cache cannot see.

LA601 (exact repeats): a request is a hit when an identical request (same key) succeeded at most `ttl_hours`
earlier; the TTL is counted from the most recent identical request, i.e. an entry refreshed each time the
question comes back. A hit costs nothing (cost after = 0) in the expected and optimistic cases; the
pessimistic case keeps only hits that are safe to serve from a cache: deterministic requests (temperature 0)
or repeats that got the same answer as the earlier one (`output_text` equal). Identical prompts far apart,
or from different people, are not retries (the retries lever leaves them) but are cache hits when within
the TTL. Confidence `measured`.

LA602 (near-duplicates): same model, system prompt and conversation length, and the same question once
lower-cased with punctuation and whitespace collapsed, but a different prompt fingerprint, within the TTL.
Report-only (savings 0): a normalised cache key catches the trivial variants; anything looser is a semantic
cache that needs embeddings and a false-hit budget.

Questions and answers are compared on their full texts through u64 hashes taken at ingest (`features`), since
the frame keeps only their first 300 characters (auditor.reduce); excerpts come from those heads.
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
from auditor.levers.options import count, flag, number, reject_unknown
from auditor.redact import excerpt
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, usd
from auditor.schema import MONEY

LEVER_ID = "response_cache"
_OPT = f"levers.{LEVER_ID}"
UNATTRIBUTED = "(unattributed)"

# Request parameters that change the answer: requests differing in any of them are different cache entries.
OUTPUT_PARAMS = ("temperature", "max_tokens", "response_format", "tools_count")
CACHE_KEY = ("_model", "prompt_hash", *OUTPUT_PARAMS)

# Per-request features (auditor.reduce): the analysis compares full texts through these u64 hashes, and reads
# the 300-character heads only for excerpts.
QUESTION_KEY = f"_{LEVER_ID}_question_key"  # the normalised question (single-turn requests), LA602's key
QUESTION_HASH = f"_{LEVER_ID}_question_hash"  # the question as logged: tells LA602's variants apart
OUTPUT_HASH = f"_{LEVER_ID}_output_hash"  # the answer: "same answer as the earlier request" (pessimistic case)
FEATURES = (QUESTION_KEY, QUESTION_HASH, OUTPUT_HASH)

NEAR_KEY = ("_model", "system_hash", "messages_count", QUESTION_KEY)

_FIXES = {
    "LA601": (
        "Put an exact-match response cache in front of the model for this feature, keyed on model + the full "
        "prompt + temperature/max_tokens/response_format/tools, with a TTL that matches how often the answers "
        "change (invalidate on content updates); serve only successful, non-tool-call answers."
    ),
    "LA602": (
        "Normalise the question before it becomes the cache key (lower-case, trim punctuation and whitespace) to "
        "catch these variants with an exact cache. Looser matching is a semantic cache: it needs embeddings, a "
        "similarity threshold and a false-hit budget checked on your own traffic."
    ),
}
_SEMANTIC_NOTE = (
    "not counted as savings: a semantic cache needs embeddings and a false-hit budget. Published hit rates on "
    "FAQ-style traffic are 61.6-68.8% (GPT Semantic Cache), and vCache shows that one static similarity threshold "
    "serves wrong answers on some prompts while missing others"
)


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class ResponseCacheOptions:
    ttl_hours: float = 24.0  # a repeat this long after the last identical request is still served
    near_duplicates: bool = True  # report LA602 (normalised-question variants)
    top_repeats: int = 5  # repeated questions listed per finding
    excerpt_chars: int = 100  # length of the masked question excerpts

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ResponseCacheOptions:
        reject_unknown(raw, cls.__dataclass_fields__, _OPT)
        d = cls()
        ttl = number(raw, "ttl_hours", d.ttl_hours, _OPT, unit="hours")
        if ttl <= 0:
            raise ConfigError(f"{_OPT}.ttl_hours must be above 0")
        return cls(
            ttl_hours=ttl,
            near_duplicates=flag(raw, "near_duplicates", d.near_duplicates, _OPT),
            top_repeats=count(raw, "top_repeats", d.top_repeats, _OPT),
            excerpt_chars=max(20, count(raw, "excerpt_chars", d.excerpt_chars, _OPT)),
        )


# ---------------------------------------------------------------------------------------------- features


def normalized_question(text: pl.Expr) -> pl.Expr:
    """The question lower-cased, each run of non-alphanumerics one space, trimmed; null when nothing is left
    ("How do I…?" = "how do i…").

    The regex matches only the runs that change (punctuation, double spaces), not the single space between two
    words: the same result as replacing every `[^\\p{L}\\p{N}]+` run, several times faster on prose.
    """
    return (
        text.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}]{2,}|[^\p{L}\p{N} ]", " ")
        .str.strip_chars()
        .replace("", None)
    )


def _hashed(expr: pl.Expr) -> pl.Expr:
    """A u64 hash of the value, null for null (polars hashes null to a number)."""
    return pl.when(expr.is_not_null()).then(expr.hash())


def features(chunk: pl.DataFrame) -> pl.DataFrame:
    """QUESTION_KEY, QUESTION_HASH and OUTPUT_HASH of each request, from the full texts.

    The question key is set only where LA602 looks (single-turn requests: in a conversation the same last
    message follows a different history); each distinct question of the chunk is normalised once, since the
    regex is the costly part and FAQ traffic repeats questions.
    """
    text = pl.col("last_user_text")
    rows = chunk.select(
        text,
        _hashed(text).alias(QUESTION_HASH),
        (pl.col("messages_count").fill_null(1) <= 2).alias("_single_turn"),
        _hashed(pl.col("output_text")).alias(OUTPUT_HASH),
    )
    keys = (
        rows.filter(pl.col("_single_turn") & text.is_not_null())
        .unique(QUESTION_HASH, keep="any")
        .select(QUESTION_HASH, normalized_question(text).alias(QUESTION_KEY))
        .with_columns(_hashed(pl.col(QUESTION_KEY)))  # a step apart: the eager engine would run the regex twice
    )
    return (
        rows.drop("last_user_text")
        .join(keys, on=QUESTION_HASH, how="left", maintain_order="left")
        .select(pl.when("_single_turn").then(QUESTION_KEY).alias(QUESTION_KEY), QUESTION_HASH, OUTPUT_HASH)
    )


# ---------------------------------------------------------------------------------------------- detection


def _secs(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def _cacheable() -> tuple[pl.Expr, list[pl.Expr]]:
    """Requests that can be stored in and served from a cache (the condition), and the small columns detection
    needs (as expressions over the lever's frame)."""
    ok = (pl.col("status").fill_null("ok") != "error") & (pl.col("finish_reason").fill_null("") != "tool_calls")
    columns = [
        pl.col("row_id", "timestamp"),
        pl.coalesce("model_id", "model").fill_null("(unknown model)").alias("_model"),
        pl.col("feature").fill_null(UNATTRIBUTED).alias("_feature"),
        pl.col("prompt_hash", "system_hash", "messages_count", *OUTPUT_PARAMS, *FEATURES),
        pl.col("user", "latency_ms", "cost_usd"),
    ]
    return ok & pl.col("prompt_hash").is_not_null(), columns


def _by_key(
    rows: pl.DataFrame,
    keys: tuple[str, ...],
    group: str,
    where: pl.Expr | None = None,
    columns: list[pl.Expr] | None = None,
) -> pl.DataFrame:
    """`columns` (default all) of the rows `where` holds for, the rows of one key together, in time order, with
    `group` (an integer id per key) and `_same` (same key as the previous row).

    Sorting on a 64-bit hash of the key is much faster than on the strings (or a window over six columns); the
    real values are still compared (nulls equal), so a hash collision can only split a key, never join two.
    """
    same = pl.int_range(pl.len()) > 0
    for key in keys:
        same = same & pl.col(key).eq_missing(pl.col(key).shift(1))
    # The order from the key columns alone, then one gather of the columns kept: no filtered copy of `rows`,
    # and frame.sort() held about twice as much at its peak (row_id makes the order total).
    kept = rows.lazy().with_row_index("_i").filter(pl.lit(True) if where is None else where)
    order = (
        (kept if columns is None else kept.select("_i", *columns))
        .select("_i", pl.struct(keys).hash().alias("_k"), "timestamp", "row_id")
        .sort("_k", "timestamp", "row_id")
        .collect()
        .get_column("_i")
    )
    return (
        rows.select(column.gather(order) for column in columns or [pl.all()])
        .with_columns(same.alias("_same"))
        .with_columns((~pl.col("_same")).cum_sum().alias(group))
    )


def _previous(column: str | pl.Expr) -> pl.Expr:
    expr = pl.col(column) if isinstance(column, str) else column
    return pl.when("_same").then(expr.shift(1))


def _cum_min_per(values: pl.Expr, group: str) -> pl.Expr:
    """Running minimum of integer `values` within each run of equal `group` ids (ascending, contiguous rows).

    One cum_min over the column, each group shifted below the previous one by more than the values' span, is
    ~30x faster than `cum_min().over(group)` with about one group per request; Int128, as group * span
    overflows Int64 at volume (a million keys over a month of microseconds).
    """
    span = (values.max() - values.min() + 1).cast(pl.Int128)
    offset = pl.col(group).cast(pl.Int128) * span
    return ((values.cast(pl.Int128) - offset).cum_min() + offset).cast(pl.Int64)


def detect(frame: pl.DataFrame, opts: ResponseCacheOptions) -> pl.DataFrame:
    """Cacheable requests (reduced frame) with `_entry` (an id per cache key), `_hit` (LA601) and `_safe_hit` (the
    pessimistic subset); `_after(case)` is the cost after the lever."""
    latency_us = (pl.col("latency_ms").fill_null(0.0).clip(0.0, None) * 1000).cast(pl.Int64)
    cacheable, columns = _cacheable()
    rows = _by_key(frame, CACHE_KEY, "_entry", where=cacheable, columns=columns)
    rows = rows.with_columns((pl.col("timestamp") + pl.duration(microseconds=latency_us)).alias("_end"))
    # A cache answers only once an earlier identical request has finished (an answer is stored); copies sent
    # while the first was still running are duplicates for the retries lever.
    first_done = _previous(_cum_min_per(pl.col("_end").dt.epoch("us"), "_entry"))
    recent = _secs(pl.col("timestamp") - _previous("timestamp")) <= opts.ttl_hours * 3600
    hit = (recent & (first_done <= pl.col("timestamp").dt.epoch("us"))).fill_null(False)
    deterministic = (pl.col("temperature") == 0).fill_null(False)
    same_answer = (pl.col(OUTPUT_HASH) == _previous(OUTPUT_HASH)).fill_null(False)
    rows = rows.with_columns(hit.alias("_hit"), (hit & (deterministic | same_answer)).alias("_safe_hit"))
    return rows.drop("_same", "_end")


def _after(case: str) -> pl.Expr:
    """A request's cost after the lever (null where it is not a hit), as an expression: three Decimal columns
    for every cacheable row were ~50 B a request, and only the hits and the findings' sums read them."""
    zero = pl.lit(Decimal(0), dtype=MONEY)
    if case == "low":
        return pl.when(pl.col("_safe_hit")).then(zero).when(pl.col("_hit")).then(pl.col("cost_usd"))
    return pl.when(pl.col("_hit")).then(zero)


# What near_duplicates and the LA602 findings read of detect's rows (its gather copies every column it carries)
_NEAR_COLUMNS = [pl.col("row_id", "timestamp", "_hit", "prompt_hash", "_feature", "cost_usd", QUESTION_HASH, *NEAR_KEY)]
# What the LA601 findings read of them (their filter copies every column it carries)
_EXACT_COLUMNS = (*CACHE_KEY, "row_id", "_feature", "_entry", "_hit", "_safe_hit", "cost_usd", "user", QUESTION_HASH)


def near_duplicates(rows: pl.DataFrame, opts: ResponseCacheOptions) -> pl.DataFrame:
    """The rows of `detect` that LA602 looks at (a normalised question), with `_question` (an id per NEAR_KEY)
    and `_near`: same model, system prompt, conversation length and normalised question as the previous such
    request, within the TTL, but a different prompt fingerprint, and not an exact hit."""
    questions = _by_key(rows, NEAR_KEY, "_question", where=pl.col(QUESTION_KEY).is_not_null(), columns=_NEAR_COLUMNS)
    near = (
        ~pl.col("_hit")
        & (_secs(pl.col("timestamp") - _previous("timestamp")) <= opts.ttl_hours * 3600)
        & (pl.col("prompt_hash") != _previous("prompt_hash"))
    ).fill_null(False)
    return questions.with_columns(near.alias("_near")).drop("_same")


# ---------------------------------------------------------------------------------------------- findings


def _question(text: str | None, prompt_hash: str, limit: int) -> str:
    return excerpt(text, limit) if text else f"(question not logged; prompt {prompt_hash[:12]})"


Heads = Callable[[pl.Series], pl.DataFrame]  # row_ids -> row_id, last_user_text (fetch_rows)


def _with_heads(rows: pl.DataFrame, heads: Heads, on: str) -> pl.DataFrame:
    """`rows` with the logged question head (`last_user_text`) of the request whose row_id is in column `on`:
    fetched for those requests only, not loaded for every request."""
    found = heads(rows[on].drop_nulls().unique(maintain_order=True)).rename({"row_id": on})
    return rows.join(found, on=on, how="left", maintain_order="left")


def _top_repeats(rows: pl.DataFrame, heads: Heads, opts: ResponseCacheOptions) -> dict[str, list[dict[str, Any]]]:
    """Per feature, the repeated prompts that save the most, with a masked excerpt of the question."""
    hit_entries = rows.get_column("_entry").filter(rows.get_column("_hit")).unique().implode()
    # Counted on the few columns the counts read (a filter copies every column it carries); the key's values
    # are then taken from each entry's first row (all its rows have the same key).
    counted = (
        rows.lazy()
        .select("_feature", "_entry", "_hit", "cost_usd", "row_id", QUESTION_HASH)
        .with_row_index("_position")
        .filter(pl.col("_entry").is_in(hit_entries))
        .group_by("_feature", "_entry")
        .agg(
            pl.col("_position").first(),
            pl.len().alias("requests"),
            pl.col("_hit").sum().alias("hits"),
            pl.col("cost_usd").filter(pl.col("_hit")).sum().alias("savings"),
            # the earliest request that logged its question (rows are in time order within a key)
            pl.col("row_id").filter(pl.col(QUESTION_HASH).is_not_null()).first().alias("_asked"),
        )
        .filter(pl.col("hits") > 0)
        .collect()
    )
    keys = rows.select(CACHE_KEY).gather(counted.get_column("_position"))
    ranked = (
        counted.hstack(keys.get_columns())
        # ties (the same prompt at another temperature or model) in the order of the key's values
        .sort(["_feature", "savings", "hits", "prompt_hash", *CACHE_KEY], descending=[False, True, True] + [False] * 7)
        .group_by("_feature", maintain_order=True)
        .head(opts.top_repeats)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _with_heads(ranked, heads, "_asked").iter_rows(named=True):
        out.setdefault(r["_feature"], []).append(
            {
                "question": _question(r["last_user_text"], r["prompt_hash"], opts.excerpt_chars),
                "model": r["_model"],
                "requests": int(r["requests"]),
                "cache_hits": int(r["hits"]),
                "savings_usd": usd(dec(r["savings"])),
            }
        )
    return out


def _exact_findings(rows: pl.DataFrame, heads: Heads, total: Decimal, opts: ResponseCacheOptions) -> list[Finding]:
    top = _top_repeats(rows, heads, opts)
    hit = pl.col("_hit")
    # Per feature over all rows, then over the hits alone (a narrow copy): filtered aggregations over every row
    # held several row-sized temporaries at once.
    every = rows.lazy().group_by("_feature").agg(pl.len().alias("cacheable"), pl.col("cost_usd").sum().alias("cost"))
    on_hits = (
        rows.lazy()
        .select("_feature", "_hit", "_safe_hit", "cost_usd", "_entry", "user", "_model")
        .filter(hit)
        .group_by("_feature")
        .agg(
            hit.sum().alias("hits"),
            pl.col("_safe_hit").sum().alias("safe_hits"),
            (pl.col("cost_usd") - _after("expected")).sum().alias("savings"),
            (pl.col("cost_usd") - _after("low")).sum().alias("savings_low"),
            pl.col("_entry").n_unique().alias("prompts"),
            pl.col("user").drop_nulls().n_unique().alias("users"),
            pl.col("_model").unique().sort().alias("models"),
        )
    )
    stats = every.join(on_hits, on="_feature").filter(pl.col("hits") > 0).sort("_feature").collect()
    findings = []
    for r in stats.iter_rows(named=True):
        savings, hits = dec(r["savings"]), int(r["hits"])
        rate = hits / int(r["cacheable"])
        pct = f"{rate:.0%}" if rate >= 0.1 else f"{rate:.1%}"
        findings.append(
            Finding(
                code="LA601",
                lever=LEVER_ID,
                title=f"{hits:,} of {int(r['cacheable']):,} requests in {r['_feature']} ({pct}) are exact repeats "
                "a response cache would answer",
                severity=severity(savings, total),
                savings_usd=usd(savings) or 0.0,
                affected_requests=hits,
                recommendation=_FIXES["LA601"],
                scope={"feature": r["_feature"]},
                evidence={
                    "cacheable_requests": int(r["cacheable"]),
                    "cache_hits": hits,
                    "hit_rate": round(rate, 4),
                    "safe_hits": int(r["safe_hits"]),
                    "distinct_prompts_repeated": int(r["prompts"]),
                    "users_served_from_cache": int(r["users"]),
                    "cost_usd": usd(dec(r["cost"])),
                    "savings_low_usd": usd(dec(r["savings_low"])),
                    "savings_high_usd": usd(savings),
                    "ttl_hours": opts.ttl_hours,
                    "models": list(r["models"]),
                    "top_repeats": top.get(r["_feature"], []),
                    "note": "safe hits are deterministic (temperature 0) or got the same answer as the earlier "
                    "request; the pessimistic case counts only those",
                },
            )
        )
    return findings


def _near_findings(questions: pl.DataFrame, heads: Heads, opts: ResponseCacheOptions) -> list[Finding]:
    near = questions.filter(pl.col("_near"))
    if near.height == 0:
        return []
    # The variants of each normalised question (any request of the group, not only the near-duplicates).
    groups = (
        questions.filter(pl.col("_question").is_in(near["_question"].unique().implode()))
        .group_by("_feature", "_question")
        .agg(
            *(pl.col(key).first() for key in NEAR_KEY),
            pl.col("_near").sum().alias("near"),
            pl.col("prompt_hash").n_unique().alias("prompt_variants"),
        )
        .filter(pl.col("near") > 0)
    )
    # Distinct logged questions per group (by their full-text hash), each with its head for the excerpt.
    variants = _with_heads(
        questions.join(groups.select("_feature", "_question"), on=["_feature", "_question"], how="semi")
        .unique(["_feature", "_question", QUESTION_HASH], keep="first", maintain_order=True)
        .select("_feature", "_question", QUESTION_HASH, "row_id"),
        heads,
        "row_id",
    ).with_columns(normalized_question(pl.col("last_user_text")).alias("_norm_head"))
    # Order of the examples: most near-duplicates first, then the normalised question. Only its heads are left:
    # the normalised head of a variant is a prefix of the whole normalised question, so the longest one of all
    # the variants of that question (in any group) stands for it.
    groups = (
        groups.join(
            variants.group_by("_feature", "_question").agg(
                pl.col("last_user_text").sort_by("last_user_text", QUESTION_HASH).head(3).alias("variants"),
                pl.col("_norm_head").max(),
            ),
            on=["_feature", "_question"],
        )
        .with_columns(pl.col("_norm_head").max().over(QUESTION_KEY))
        .sort(
            ["_feature", "near", "_norm_head", QUESTION_KEY, "_model", "system_hash", "messages_count"],
            descending=[False, True] + [False] * 5,
        )
        .group_by("_feature", maintain_order=True)
        .head(opts.top_repeats)
    )
    examples: dict[str, list[dict[str, Any]]] = {}
    for r in groups.iter_rows(named=True):
        examples.setdefault(r["_feature"], []).append(
            {
                "variants": [excerpt(v, opts.excerpt_chars) for v in r["variants"]],
                "prompt_variants": int(r["prompt_variants"]),
                "near_duplicate_requests": int(r["near"]),
            }
        )
    stats = (
        near.group_by("_feature")
        .agg(
            pl.len().alias("near"),
            pl.col("cost_usd").sum().alias("cost"),
            pl.col("_question").n_unique().alias("questions"),
        )
        .sort("_feature")
    )
    findings = []
    for r in stats.iter_rows(named=True):
        n = int(r["near"])
        findings.append(
            Finding(
                code="LA602",
                lever=LEVER_ID,
                title=f"Near-duplicate questions in {r['_feature']}: {n:,} requests differ from an earlier one "
                "only in case, punctuation or spacing",
                severity="info",
                savings_usd=0.0,
                affected_requests=n,
                recommendation=_FIXES["LA602"],
                scope={"feature": r["_feature"]},
                evidence={
                    "near_duplicate_requests": n,
                    "normalised_questions": int(r["questions"]),
                    "cost_usd": usd(dec(r["cost"])),
                    "ttl_hours": opts.ttl_hours,
                    "examples": examples.get(r["_feature"], []),
                    "note": _SEMANTIC_NOTE,
                },
            )
        )
    return findings


def _count_cost(frame: pl.DataFrame, where: pl.Expr) -> tuple[int, Decimal]:
    """How many rows `where` holds for and their exact cost (total_cost), without a filtered copy of the rows."""
    n, cost = frame.select(where.sum(), pl.col("cost_usd").filter(where).sum()).row(0)
    return int(n or 0), dec(cost)


def _gaps(frame: pl.DataFrame, opts: ResponseCacheOptions) -> list[Gap]:
    gaps = []
    unhashed_n, unhashed_cost = _count_cost(
        frame, pl.col("prompt_hash").is_null() & (pl.col("status").fill_null("ok") != "error")
    )
    if unhashed_n:
        gaps.append(
            Gap(
                lever=LEVER_ID,
                missing_fields=["prompt_hash"],
                requests=unhashed_n,
                cost_at_stake_usd=usd(unhashed_cost) or 0.0,
                note="no prompt text or fingerprint: exact repeats among these requests cannot be seen",
            )
        )
    if opts.near_duplicates:
        # QUESTION_HASH is null exactly where the question (full text, so its head too) is
        no_question_n, no_question_cost = _count_cost(
            frame, pl.col("prompt_hash").is_not_null() & pl.col(QUESTION_HASH).is_null()
        )
        if no_question_n:
            gaps.append(
                Gap(
                    lever=LEVER_ID,
                    missing_fields=["last_user_text"],
                    requests=no_question_n,
                    cost_at_stake_usd=usd(no_question_cost) or 0.0,
                    note="prompt fingerprint but no question text: exact repeats are counted, near-duplicates "
                    "(LA602) are not checked",
                )
            )
    return gaps


class ResponseCacheLever:
    id = LEVER_ID
    title = "Response cache for repeated requests"
    reads: tuple[str, ...] = (
        *("latency_ms", "user", "messages_count", "prompt_hash", "system_hash"),  # heads: fetch_rows
        *("max_tokens", "temperature", "response_format", "tools_count", "finish_reason"),
    )

    def check_options(self, options: dict[str, Any]) -> None:
        ResponseCacheOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return features(chunk)

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = ResponseCacheOptions.parse(ctx.options)
        frame = ensure_reduced(frame, self, ctx.options)
        result = LeverResult(
            lever_id=LEVER_ID,
            title=self.title,
            confidence="measured",
            counterfactual=empty_counterfactual(),
            assumptions=[
                "Cache key = model + full prompt fingerprint (tools, system, every message) + temperature, "
                "max_tokens, response_format and tools_count; only successful answers that are not tool calls "
                "are stored or served.",
                f"A request is a hit when an identical request succeeded at most {opts.ttl_hours:g} h earlier "
                "(TTL counted from the most recent identical request); a hit costs $0, the cache's own running "
                "cost is not counted.",
                "Pessimistic case: only hits at temperature 0 or whose logged answer equals the earlier one "
                "(serving a stored sample in place of a fresh one is otherwise a product decision).",
                "Near-duplicates (LA602) are reported, never counted as savings.",
            ],
            method="Requests are grouped by cache key in time order; each one within the TTL of the previous "
            "identical successful request is answered by the cache (cost after = 0).",
        )
        result.gaps = _gaps(frame, opts)
        if frame.height == 0:
            return result
        rows = detect(frame, opts)
        hits = (
            rows.select("row_id", "_hit", "_safe_hit", "cost_usd")
            .filter(pl.col("_hit") & pl.col("cost_usd").is_not_null())
            .select("row_id", *(_after(case).alias(f"_after_{case}") for case in ("expected", "low", "high")))
        )
        if hits.height:
            result.counterfactual = counterfactual_frame(
                hits["row_id"], hits["_after_expected"], hits["_after_low"], hits["_after_high"]
            )
        total = total_cost(frame)
        # no name for the priced rows: freed before near_duplicates makes its copy

        def heads(row_ids: pl.Series) -> pl.DataFrame:
            return fetch_rows(frame, ctx, row_ids, ("last_user_text",))

        priced = rows.select(_EXACT_COLUMNS).filter(pl.col("cost_usd").is_not_null())
        result.findings = _exact_findings(priced, heads, total, opts)
        del priced
        if opts.near_duplicates:
            # detected on every cacheable request (an unpriced one is still an earlier identical question)
            questions = near_duplicates(rows, opts).filter(pl.col("cost_usd").is_not_null())
            result.findings += _near_findings(questions, heads, opts)
        return result


LEVER = ResponseCacheLever()
