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

from collections.abc import Callable, Sequence
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
# The keys as u64 hashes and flags, so that the analysis loads ~40 bytes a request for them, not ~140 (spill mode:
# every request's columns are loaded for the lever). Only the few entries and groups a finding shows fetch the
# real values (fetch_rows), for their order and the excerpt.
ENTRY_HASH = f"_{LEVER_ID}_entry_hash"  # prompt_hash + OUTPUT_PARAMS (the cache key but the model); null: no prompt
PROMPT_HASH = f"_{LEVER_ID}_prompt_hash"  # prompt_hash: LA602's "a different prompt fingerprint"
NEAR_HASH = f"_{LEVER_ID}_near_hash"  # QUESTION_KEY + system_hash + messages_count; null where QUESTION_KEY is
DETERMINISTIC = f"_{LEVER_ID}_deterministic"  # temperature 0 (the pessimistic case's safe hits)
TOOL_CALL = f"_{LEVER_ID}_tool_call"  # finish_reason tool_calls: not cacheable
KEY_FEATURES = (ENTRY_HASH, PROMPT_HASH, NEAR_HASH, DETERMINISTIC, TOOL_CALL)

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
    """FEATURES and KEY_FEATURES of each request, from the full texts and the cache key's columns.

    The question key is set only where LA602 looks (single-turn requests: in a conversation the same last
    message follows a different history); each distinct question of the chunk is normalised once, since the
    regex is the costly part and FAQ traffic repeats questions. The keys' columns (two hex fingerprints and four
    parameters, ~100 bytes a request) become u64 hashes and flags here, so the analysis loads 8 bytes a key.
    """
    text = pl.col("last_user_text")
    rows = chunk.select(
        text,
        _hashed(text).alias(QUESTION_HASH),
        (pl.col("messages_count").fill_null(1) <= 2).alias("_single_turn"),
        _hashed(pl.col("output_text")).alias(OUTPUT_HASH),
        pl.col("system_hash", "messages_count"),
    )
    keys = (
        rows.filter(pl.col("_single_turn") & text.is_not_null())
        .unique(QUESTION_HASH, keep="any")
        .select(QUESTION_HASH, normalized_question(text).alias(QUESTION_KEY))
        .with_columns(_hashed(pl.col(QUESTION_KEY)))  # a step apart: the eager engine would run the regex twice
    )
    question = pl.col(QUESTION_KEY)
    texts = (
        rows.drop("last_user_text")
        .join(keys, on=QUESTION_HASH, how="left", maintain_order="left")
        .select(
            pl.when("_single_turn").then(question).alias(QUESTION_KEY),
            QUESTION_HASH,
            OUTPUT_HASH,
            "system_hash",
            "messages_count",
        )
        .select(
            question,
            QUESTION_HASH,
            OUTPUT_HASH,
            pl.when(question.is_not_null())
            .then(pl.struct(question, "system_hash", "messages_count").hash())
            .alias(NEAR_HASH),
        )
    )
    prompt = pl.col("prompt_hash")
    # +0.0: -0.0 and 0.0 are one temperature (they compare equal), not one hash
    params = [prompt, pl.col("temperature") + 0.0, *(pl.col(c) for c in OUTPUT_PARAMS if c != "temperature")]
    flags = chunk.select(
        pl.when(prompt.is_not_null()).then(pl.struct(params).hash()).alias(ENTRY_HASH),
        _hashed(prompt).alias(PROMPT_HASH),
        (pl.col("temperature") == 0).fill_null(False).alias(DETERMINISTIC),
        (pl.col("finish_reason") == "tool_calls").fill_null(False).alias(TOOL_CALL),
    )
    return texts.hstack(flags.get_columns())


# ---------------------------------------------------------------------------------------------- detection


def _secs(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 1e6


def _model() -> pl.Expr:
    return pl.coalesce("model_id", "model").fill_null("(unknown model)").alias("_model")


def _feature() -> pl.Expr:
    return pl.col("feature").fill_null(UNATTRIBUTED).alias("_feature")


def _cacheable() -> pl.Expr:
    """Requests that can be stored in and served from a cache."""
    ok = (pl.col("status").fill_null("ok") != "error") & ~pl.col(TOOL_CALL)
    return ok & pl.col(ENTRY_HASH).is_not_null()


def _repeated(frame: pl.DataFrame, keys: list[pl.Expr], where: pl.Expr) -> pl.DataFrame:
    """`_i` (the frame position) of the rows `where` holds for whose key has more than one such row, the rows of
    one key together in time order, with `_same` (same key as the previous row).

    A key seen once can be neither a hit nor a near-duplicate, nor a group that has one: most keys in real
    traffic, so what follows works on the repeats alone. The order comes from a 64-bit hash of the key (faster
    than sorting the values); the values are still compared (nulls equal), so a collision only splits a key.
    """
    order = (
        frame.lazy()
        .select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i"),
            pl.struct(keys).hash().alias("_k"),
            "timestamp",
            "row_id",
            where.alias("_where"),
        )
        .filter("_where")
        .sort("_k", "timestamp", "row_id")
        .collect()
        .get_column("_i")
    )
    values = frame.select(key.gather(order) for key in keys)
    same = pl.int_range(pl.len()) > 0
    for name in values.columns:
        same = same & pl.col(name).eq_missing(pl.col(name).shift(1))
    flags = values.select(same.alias("_same"))
    del values
    # the row before a row with the same key is a repeat too
    kept = flags.select(pl.col("_same") | pl.col("_same").shift(-1, fill_value=False)).to_series()
    return pl.DataFrame({"_i": order.filter(kept), "_same": flags.get_column("_same").filter(kept)})


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


def _gathered(frame: pl.DataFrame, rows: pl.DataFrame, *columns: str | pl.Expr) -> pl.DataFrame:
    """`rows` with `columns` of the frame rows at its positions `_i`."""
    picked = frame.select(pl.col(c) if isinstance(c, str) else c for c in columns).select(pl.all().gather(rows["_i"]))
    return rows.hstack(picked.get_columns())


def detect(frame: pl.DataFrame, opts: ResponseCacheOptions) -> pl.DataFrame:
    """The repeated cacheable requests (reduced frame): `_i` (frame position), `_entry` (an id per cache key),
    `_hit` (LA601) and `_safe_hit` (the pessimistic subset), grouped by key in time order; `_after(case)` is the
    cost after the lever. A cacheable request not listed is its key's only one (never a hit)."""
    latency_us = (pl.col("latency_ms").fill_null(0.0).clip(0.0, None) * 1000).cast(pl.Int64)
    rows = _repeated(frame, [_model(), pl.col(ENTRY_HASH)], _cacheable())
    rows = _gathered(frame, rows, "timestamp", latency_us.alias("_latency"), OUTPUT_HASH, DETERMINISTIC)
    rows = rows.with_columns(
        (~pl.col("_same")).cum_sum().alias("_entry"),
        (pl.col("timestamp") + pl.duration(microseconds="_latency")).alias("_end"),
    )
    # A cache answers only once an earlier identical request has finished (an answer is stored); copies sent
    # while the first was still running are duplicates for the retries lever.
    first_done = _previous(_cum_min_per(pl.col("_end").dt.epoch("us"), "_entry"))
    recent = _secs(pl.col("timestamp") - _previous("timestamp")) <= opts.ttl_hours * 3600
    hit = (recent & (first_done <= pl.col("timestamp").dt.epoch("us"))).fill_null(False)
    same_answer = (pl.col(OUTPUT_HASH) == _previous(OUTPUT_HASH)).fill_null(False)
    return rows.select(
        "_i", "_entry", hit.alias("_hit"), (hit & (pl.col(DETERMINISTIC) | same_answer)).alias("_safe_hit")
    )


def _after(case: str) -> pl.Expr:
    """A request's cost after the lever (null where it is not a hit), as an expression: three Decimal columns
    for every cacheable row were ~50 B a request, and only the hits and the findings' sums read them."""
    zero = pl.lit(Decimal(0), dtype=MONEY)
    if case == "low":
        return pl.when(pl.col("_safe_hit")).then(zero).when(pl.col("_hit")).then(pl.col("cost_usd"))
    return pl.when(pl.col("_hit")).then(zero)


def near_duplicates(frame: pl.DataFrame, rows: pl.DataFrame, opts: ResponseCacheOptions) -> pl.DataFrame:
    """The cacheable requests LA602 looks at (a normalised question) whose NEAR_KEY repeats: `_i`, `_question` (an
    id per NEAR_KEY) and `_near`: same model, system prompt, conversation length and normalised question as the
    previous such request, within the TTL, but a different prompt fingerprint, and not an exact hit (`rows`:
    detect's)."""
    questions = _repeated(frame, [_model(), pl.col(NEAR_HASH)], _cacheable() & pl.col(NEAR_HASH).is_not_null())
    hits = rows.get_column("_i").filter(rows.get_column("_hit")).implode()
    questions = _gathered(frame, questions, "timestamp", PROMPT_HASH)
    near = (
        ~pl.col("_i").is_in(hits)
        & (_secs(pl.col("timestamp") - _previous("timestamp")) <= opts.ttl_hours * 3600)
        & (pl.col(PROMPT_HASH) != _previous(PROMPT_HASH))
    ).fill_null(False)
    return questions.select("_i", (~pl.col("_same")).cum_sum().alias("_question"), near.alias("_near"))


# ---------------------------------------------------------------------------------------------- findings


def _question(text: str | None, prompt_hash: str, limit: int) -> str:
    return excerpt(text, limit) if text else f"(question not logged; prompt {prompt_hash[:12]})"


Fetch = Callable[[pl.Series, Sequence[str]], pl.DataFrame]  # row_ids, columns -> row_id + columns (fetch_rows)


def _with_fetched(rows: pl.DataFrame, fetch: Fetch, on: str, columns: Sequence[str]) -> pl.DataFrame:
    """`rows` with `columns` of the request whose row_id is in column `on`: fetched for those requests only, not
    loaded for every request (the question heads, the cache key's values of the entries shown)."""
    found = fetch(rows[on].drop_nulls().unique(maintain_order=True), columns).rename({"row_id": on})
    return rows.join(found, on=on, how="left", maintain_order="left")


def _top_repeats(
    frame: pl.DataFrame, hits: pl.DataFrame, rows: pl.DataFrame, fetch: Fetch, opts: ResponseCacheOptions
) -> dict[str, list[dict[str, Any]]]:
    """Per feature, the repeated prompts that save the most, with a masked excerpt of the question (`hits`: the
    priced hits with their `_entry`; `rows`: detect's)."""
    entries = rows.filter(pl.col("_entry").is_in(hits.get_column("_entry").unique().implode()))
    counted = (
        _gathered(frame, entries, _feature(), "cost_usd", "row_id", QUESTION_HASH)
        .lazy()
        .filter(pl.col("cost_usd").is_not_null())
        .group_by("_feature", "_entry")
        .agg(
            pl.col("row_id").first().alias("_first"),
            pl.len().alias("requests"),
            pl.col("_hit").sum().alias("hits"),
            pl.col("cost_usd").filter(pl.col("_hit")).sum().alias("savings"),
            # the earliest request that logged its question (rows are in time order within a key)
            pl.col("row_id").filter(pl.col(QUESTION_HASH).is_not_null()).first().alias("_asked"),
            pl.col("_i").first(),
        )
        .filter(pl.col("hits") > 0)
        .collect()
    )
    # The key's values from each entry's first row (all its rows have the same key): the model is in the frame,
    # the rest is fetched for these rows only.
    counted = _with_fetched(_gathered(frame, counted, _model()), fetch, "_first", CACHE_KEY[1:])
    ranked = (
        # ties (the same prompt at another temperature or model) in the order of the key's values
        counted.sort(
            ["_feature", "savings", "hits", "prompt_hash", *CACHE_KEY], descending=[False, True, True] + [False] * 7
        )
        .group_by("_feature", maintain_order=True)
        .head(opts.top_repeats)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _with_fetched(ranked, fetch, "_asked", ("last_user_text",)).iter_rows(named=True):
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


def _exact_findings(
    frame: pl.DataFrame, rows: pl.DataFrame, fetch: Fetch, total: Decimal, opts: ResponseCacheOptions
) -> list[Finding]:
    hit = pl.col("_hit")
    # Per feature over every priced cacheable row (no copy of them), then over the priced hits alone.
    every = (
        frame.lazy()
        .select(_feature(), "cost_usd", (_cacheable() & pl.col("cost_usd").is_not_null()).alias("_kept"))
        .filter("_kept")
        .group_by("_feature")
        .agg(pl.len().alias("cacheable"), pl.col("cost_usd").sum().alias("cost"))
    )
    served = _gathered(frame, rows.filter(hit), _feature(), _model(), "cost_usd", "row_id").filter(
        pl.col("cost_usd").is_not_null()
    )
    served = _with_fetched(served, fetch, "row_id", ("user",))  # the hits' users only
    on_hits = (
        served.lazy()
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
    top = _top_repeats(frame, served, rows, fetch, opts) if stats.height else {}
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


def _near_findings(
    frame: pl.DataFrame, questions: pl.DataFrame, fetch: Fetch, opts: ResponseCacheOptions
) -> list[Finding]:
    questions = _gathered(frame, questions, "cost_usd").filter(pl.col("cost_usd").is_not_null())
    if not questions.get_column("_near").any():
        return []
    # The variants of each normalised question (any request of the group, not only the near-duplicates).
    asked = questions.get_column("_question").filter(questions.get_column("_near")).unique().implode()
    questions = _gathered(
        frame,
        questions.filter(pl.col("_question").is_in(asked)),
        _feature(),
        _model(),
        "row_id",
        QUESTION_KEY,
        QUESTION_HASH,
        PROMPT_HASH,
    )
    near = questions.filter(pl.col("_near"))
    groups = (
        questions.group_by("_feature", "_question")
        .agg(
            pl.col("row_id").first().alias("_first"),
            pl.col("_model", QUESTION_KEY).first(),
            pl.col("_near").sum().alias("near"),
            pl.col(PROMPT_HASH).n_unique().alias("prompt_variants"),
        )
        .filter(pl.col("near") > 0)
    )
    # the rest of the key (the same on all its rows) for the groups shown: fetched, not loaded for every request
    groups = _with_fetched(groups, fetch, "_first", ("system_hash", "messages_count"))
    # Distinct logged questions per group (by their full-text hash), each with its head for the excerpt.
    variants = _with_fetched(
        questions.join(groups.select("_feature", "_question"), on=["_feature", "_question"], how="semi")
        .unique(["_feature", "_question", QUESTION_HASH], keep="first", maintain_order=True)
        .select("_feature", "_question", QUESTION_HASH, "row_id"),
        fetch,
        "row_id",
        ("last_user_text",),
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
    # ENTRY_HASH is null exactly where prompt_hash is
    unhashed_n, unhashed_cost = _count_cost(
        frame, pl.col(ENTRY_HASH).is_null() & (pl.col("status").fill_null("ok") != "error")
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
            frame, pl.col(ENTRY_HASH).is_not_null() & pl.col(QUESTION_HASH).is_null()
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
    # The keys come as KEY_FEATURES; users, heads and the keys' values of the rows shown: fetch_rows
    reads: tuple[str, ...] = ("latency_ms",)

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
            _gathered(frame, rows.filter(pl.col("_hit")), "row_id", "cost_usd")
            .filter(pl.col("cost_usd").is_not_null())
            .select("row_id", *(_after(case).alias(f"_after_{case}") for case in ("expected", "low", "high")))
        )
        if hits.height:
            result.counterfactual = counterfactual_frame(
                hits["row_id"], hits["_after_expected"], hits["_after_low"], hits["_after_high"]
            )
        total = total_cost(frame)

        def fetch(row_ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
            return fetch_rows(frame, ctx, row_ids, columns)

        result.findings = _exact_findings(frame, rows, fetch, total, opts)
        if opts.near_duplicates:
            # detected on every cacheable request (an unpriced one is still an earlier identical question)
            questions = near_duplicates(frame, rows, opts)
            del rows
            result.findings += _near_findings(frame, questions, fetch, opts)
        return result


LEVER = ResponseCacheLever()
