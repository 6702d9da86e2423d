"""prompt_caching lever (LA1xx): how much a correct provider prompt-cache setup would save, and what to change.

Per cache scope (provider, model, billing scope when logged), requests are replayed in time order against the
provider's cache rules from the price tables (minimum cacheable length, granularity, TTL options, write and read
multipliers): auditor.levers.prefix finds the prefix each request shares with others (hash chains over the
rendered prompt), auditor.levers.cache_sim turns that into cached tokens per TTL. Decisions are made per unit
(scope + feature, where a team sets breakpoints and TTL):

- logged cost (the cache usage the log already has), the best configuration the provider offers (breakpoint
  after the stable prefix, the cheaper TTL option, volatile spans moved out of the prefix when that pays), and
  the upper bound of an unbounded cache;
- never a setup that costs more than today: when writes cost more than they save, the answer is no caching.

Money per request: a candidate's cost is `cost_uncached + read * d_read + write * d_write`, where the per-token
deltas come from PriceBook.cost on four copies of the rows (so tiers, batch and off-peak prices all apply).
Within a unit the savings are spread over the requests that get cheaper, so the counterfactual never raises a
request's cost while the unit total stays exact (the write premium of the first request is netted against the
reads it enables).

Rows without prompt text still get the token-only analysis (realized hit rate, write/read spend, TTL-gap
misses, writes never read) and an LA801 data gap.

At volume: the chain-key lists (the largest columns) are never copied for all rows: the replay runs a batch of
independent request groups (same scope and first block) at a time and gathers their keys then
(_REPLAY_BATCH_BLOCKS bounds the exploded rows; a larger group replays by slices of block depth); the replay holds
per request only its row and scope code, gathering times and lengths a batch at a time; the masked replay covers
only the groups a volatile span changes. Pricing, the token rules and the candidate costs run a batch of rows at
a time. The lever reads no string per row: sessions come as a hash feature, the billing scope as a feature (only
when configured); heads, spans and system_text are fetched for the few requests a finding shows, and the loaded
columns are dropped as soon as the steps that read them are done. Per row the lever keeps numbers only (unit and
session as UInt32 codes into small tables, token counts as Int32): strings and rules live once per unit; the
columns only the pricing reads join after the replay; each step selects the columns it reads before a filter,
sort or join copies them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

import polars as pl

from auditor.config import ConfigError
from auditor.levers.base import LeverContext, LeverResult, counterfactual_frame, empty_counterfactual, fetch_rows
from auditor.levers.cache_sim import cached_tokens, hit_column, replay, session_gaps, writes_never_read
from auditor.levers.options import flag, number, reject_unknown
from auditor.levers.prefix import (
    DEFAULT_BLOCK_BYTES,
    HEAD_CHARS,
    SPAN_SEP,
    chain_key_lists,
    chain_keys,
    exploded_keys,
    first_key,
    key_count,
    last_key,
    masked_features,
    shared_strings,
    split_key_lists,
)
from auditor.prices import CacheRules, PricingError
from auditor.redact import excerpt
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, Severity, usd

LEVER_ID = "prompt_caching"
_OPT = f"levers.{LEVER_ID}"
UNATTRIBUTED = "(none)"
_INF = math.inf
VARIANTS = ("raw", "masked")  # prompts as logged / with volatile spans and JSON key order normalized

# Per-request features (see PromptCachingLever.features): all the simulation and the findings read of a prompt.
# A prompt's chain keys (one per block) are KEYS_HEAD's then KEYS' (prefix.split_key_lists): the leading keys many
# prompts of an ingest chunk share, packed and stored once per chunk, then the rest.
KEYS_HEAD = f"_{LEVER_ID}_keys_head"  # Binary (prefix.pack_keys), null when no leading key is shared
KEYS = f"_{LEVER_ID}_keys"  # List[UInt64]: the chain keys after the head's (null: no prompt text)
BYTES = f"_{LEVER_ID}_bytes"  # UInt32: prompt length in bytes (null: no prompt text)
HEAD = f"_{LEVER_ID}_head"  # first HEAD_CHARS of the prompt, null when "[system]\n" + system_text rebuilds them
# chain keys of the masked prompt, whole (null unless masking changes it: a split head would cost a 16-byte view on
# every row for the few rows that have masked keys)
MASKED_KEYS = f"_{LEVER_ID}_masked_keys"
MASKED_BYTES = f"_{LEVER_ID}_masked_bytes"
WINDOW = f"_{LEVER_ID}_window"  # List[Boolean]: buster test per possible shared prefix (prefix.masked_features)
SPAN = f"_{LEVER_ID}_span"  # evidence of the first volatile span (prefix.SPAN_SEP fields)
# session_id as a 64-bit hash (null: none or empty): the lever only tells sessions apart, and the string is the
# widest column it would load for every row
SESSION = f"_{LEVER_ID}_session"
BILLING = f"_{LEVER_ID}_billing"  # the billing_scope_tag's value (only when that option is set): tags stay on disk
HAS_TEXT = pl.col(BYTES).is_not_null()
SCOPE = pl.concat_str("provider", "model_id", "billing_scope", separator="\x1f")  # caches never span scopes
_TOKEN_PREFIXES = tuple(f"{v}_{kind}" for v in ("raw", "masked") for kind in ("shared", "hit"))  # Simulation.tokens
_CHAIN_COLUMNS = (KEYS_HEAD, KEYS, MASKED_KEYS, WINDOW)  # the largest features: gathered a batch at a time
_REPLAY_BATCH_BLOCKS = 1_000_000  # about the (request, block) rows replayed at once (~80 MB with temporaries)
_PRICE_BATCH_ROWS = 25_000  # rows priced at once
_TOKEN_BATCH_ROWS = 25_000  # requests turned into cached tokens at once (_variant_tokens)
# What analyze reads of the frame besides its own features: keys, pricing inputs (PriceBook.cost) and cache usage.
# system_text (the LA101 example head is rebuilt from it) is fetched for the rows a finding shows (fetch_rows).
_USED = (
    *("row_id", "timestamp", "provider", "model_id", "feature", "cost_usd"),
    *("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens"),
    *("batch", "service_tier", "status"),
)


# ---------------------------------------------------------------------------------------------- options


_EXACT = pl.Decimal(38, 12)  # _exact_sum


@dataclass(frozen=True)
class CachingOptions:
    """`levers: prompt_caching:` in llm-audit.yaml; defaults documented in docs/rules/LA101.md."""

    block_bytes: int = DEFAULT_BLOCK_BYTES  # prefix resolution of the hash chain
    billing_scope_tag: str | None = None  # tag naming the provider workspace/org/project (caches are per scope)
    min_finding_usd: float = 0.0  # findings saving less are dropped
    min_finding_share: float = 0.01  # ... or less than this share of the unit's cost
    pad_floor_share: float = 0.5  # LA103 looks at reused prefixes of at least this share of the minimum
    detect_busters: bool = True  # LA102: replay again with volatile spans masked

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> CachingOptions:
        reject_unknown(raw, cls.__dataclass_fields__, _OPT)
        d = cls()
        block = raw.get("block_bytes", d.block_bytes)
        if not isinstance(block, int) or isinstance(block, bool) or block < 1:
            raise ConfigError(f"{_OPT}.block_bytes must be a positive integer")
        tag = raw.get("billing_scope_tag", d.billing_scope_tag)
        if tag is not None and not isinstance(tag, str):
            raise ConfigError(f"{_OPT}.billing_scope_tag must be a tag name")
        return cls(
            block_bytes=block,
            billing_scope_tag=tag,
            min_finding_usd=number(raw, "min_finding_usd", d.min_finding_usd, _OPT),
            min_finding_share=number(raw, "min_finding_share", d.min_finding_share, _OPT, upper=1.0),
            pad_floor_share=number(raw, "pad_floor_share", d.pad_floor_share, _OPT, upper=1.0),
            detect_busters=flag(raw, "detect_busters", d.detect_busters, _OPT),
        )


# ---------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class UnitRules:
    model_id: str
    rules: CacheRules

    def ttl(self, option: int) -> int | None:
        return self.rules.ttl_seconds[option] if option < len(self.rules.ttl_seconds) else None

    def write_multiplier(self, option: int) -> float:
        one_hour = self.rules.write_1h_multiplier
        return float(self.rules.write_5m_multiplier if option == 0 or one_hour is None else one_hour)

    def uses_1h_column(self, option: int) -> bool:
        return option > 0 and self.rules.write_1h_multiplier is not None


def _rules_frame(frame: pl.LazyFrame, ctx: LeverContext) -> tuple[pl.DataFrame, dict[str, UnitRules]]:
    """Per model_id: the cache rules in force (at --price-date, else on the model's last logged day)."""
    last_days = frame.group_by("model_id").agg(pl.col("timestamp").max().dt.date().alias("day")).collect()
    rules: dict[str, UnitRules] = {}
    rows = []
    for model_id, day in last_days.sort("model_id").iter_rows():
        on: date = ctx.price_date or day or date.today()
        try:
            caching = ctx.prices.model(model_id, on).caching
        except PricingError:
            caching = None
        if caching is None or caching.mode == "none" or caching.read_multiplier >= 1:
            continue
        rules[model_id] = UnitRules(model_id, caching)
        ttl = caching.ttl_seconds
        rows.append(
            {
                "model_id": model_id,
                "min_tokens": caching.min_tokens,
                "granularity": caching.granularity_tokens,
                "ttl0": ttl[0],
                "ttl1": ttl[1] if len(ttl) > 1 else None,
                "explicit": caching.mode == "explicit",
                "one_hour_priced": caching.write_1h_multiplier is not None,
            }
        )
    schema = {
        "model_id": pl.String,
        "min_tokens": pl.Int64,
        "granularity": pl.Int64,
        "ttl0": pl.Int64,
        "ttl1": pl.Int64,
        "explicit": pl.Boolean,
        "one_hour_priced": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema), rules


# ---------------------------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """The priced rows of cacheable models: `work` (numbers only), the per-unit `table` it points into, the rules.

    work holds what the replay reads (unit: UInt32, the unit's row in the table, units in key order; session:
    UInt32, 0 = none; t in µs; _chain_row; the text lengths; input_tokens) until `complete` adds row_id, the cache
    usage, cur, cost_none and the per-token deltas: the replay's peak does not carry them. `pending` (base
    columns, shared with the caller's frame) and `kept` (the rows of work among them) are what that needs.
    table (one row per unit): unit (key string), provider, model_id, feature, billing_scope, scope (code of the cache
    scope) and the unit's rule columns (_rules_frame). Strings and rules per row would be most of work's size, and
    the rows kept are never copied whole: each step selects what it reads before the filter."""

    work: pl.DataFrame
    table: pl.DataFrame
    rules: dict[str, UnitRules]
    pending: pl.DataFrame
    kept: pl.Series

    def complete(self, ctx: LeverContext) -> pl.DataFrame:
        cache_columns = ("cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
        usage = self.pending.select(
            "row_id", *(pl.col(c).fill_null(0) for c in cache_columns), pl.col("cost_usd").cast(pl.Float64).alias("cur")
        ).filter(self.kept)
        rates = _with_rates(self.pending, self.kept, ctx)
        work = pl.concat([self.work, usage, rates], how="horizontal")
        self.work, self.pending = self.work.clear(), self.pending.clear()
        return work


_PENDING = ("row_id", "cost_usd", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
_PRICING = ("model_id", "timestamp", "input_tokens", "output_tokens", "batch", "service_tier", "status")


def _prepare(frame: pl.DataFrame, ctx: LeverContext, opts: CachingOptions) -> Prepared:
    priced = (
        pl.col("cost_usd").is_not_null() & pl.col("model_id").is_not_null() & (pl.col("input_tokens").fill_null(0) > 0)
    )
    rules_frame, rules = _rules_frame(frame.lazy().filter(priced), ctx)
    kept = frame.select(priced & pl.col("model_id").is_in(list(rules))).to_series()
    session = pl.col(SESSION)
    work = frame.select(
        pl.when(session.is_null()).then(0).otherwise(session.rank("dense")).cast(pl.UInt32).alias("session"),
        pl.col("timestamp").dt.epoch("us").alias("t"),
        *[c for c in frame.columns if c in (BYTES, MASKED_BYTES, "_chain_row")],
        "input_tokens",
    ).filter(kept)
    codes, table = _unit_codes(frame, kept, rules_frame, opts)
    pending = frame.select(*_PENDING, *[c for c in _PRICING if c in frame.columns and c not in _PENDING])
    return Prepared(pl.concat([work, codes.to_frame("unit")], how="horizontal"), table, rules, pending, kept)


def _unit_codes(
    frame: pl.DataFrame, kept: pl.Series, rules_frame: pl.DataFrame, opts: CachingOptions
) -> tuple[pl.Series, pl.DataFrame]:
    """Per kept row its unit code, and the unit table: one row per unit in key order (row index = code), with the
    unit's identity, its scope code and rule columns. Grouped by the four identity columns first (no key string per
    row); units are keyed by the joined string (as before: distinct identities with the same key are one unit)."""
    billing = pl.col(BILLING) if opts.billing_scope_tag else pl.lit(None, dtype=pl.String)
    ids = frame.select(
        pl.col("provider").fill_null(UNATTRIBUTED),
        "model_id",
        pl.col("feature").fill_null(UNATTRIBUTED),
        billing.fill_null("").alias("billing_scope"),
    ).filter(kept)
    names = ["provider", "model_id", "feature", "billing_scope"]
    groups = ids.with_row_index("i").group_by(names).agg("i")
    del ids
    groups = groups.with_columns(pl.concat_str(SCOPE, "feature", separator="\x1f").alias("unit")).with_columns(
        (pl.col("unit").rank("dense") - 1).cast(pl.UInt32).alias("u")
    )
    positions = groups.select("i", "u").explode("i")
    codes = pl.Series("unit", [0] * positions.height, dtype=pl.UInt32).scatter(positions["i"], positions["u"])
    del positions
    table = (
        groups.with_columns(pl.col("i").list.min())
        .sort("i")
        .unique("u", keep="first", maintain_order=True)  # a unit's identity: its first row's
        .sort("u")
        .select(
            "unit",
            *(pl.col(name).cast(pl.String) for name in names),  # the frame's may be Categorical (pipeline)
            SCOPE.rank("dense").cast(pl.UInt32).alias("scope"),
        )
    )
    rule_columns = table.select("model_id").join(rules_frame, on="model_id", how="left", maintain_order="left")
    return codes, pl.concat([table, rule_columns.drop("model_id")], how="horizontal")


def _per_unit(work: pl.DataFrame, table: pl.DataFrame, *names: str) -> list[pl.Series]:
    """Per row of `work`: the unit's value of these table columns."""
    return [table[name].gather(work["unit"]) for name in names]


def _with_rates(frame: pl.DataFrame, kept: pl.Series, ctx: LeverContext) -> pl.DataFrame:
    """Per kept row of `frame`: cost_none (all input uncached) and the per-token cost change of reading / writing
    5m / writing 1h."""
    zero = pl.lit(0, dtype=pl.Int64)
    full = pl.col("input_tokens")
    variants = {
        "none": (zero, zero, zero),
        "read": (full, zero, zero),
        "w5": (zero, full, zero),
        "w1": (zero, zero, full),
    }
    # in batches of kept rows: pricing joins every price column (all tiers) onto each row, ~0.6 KB a row for a moment;
    # the four costs become the rates within the batch (never four full-height cost columns next to the rates)
    at = kept.arg_true()
    pricing = frame.select([c for c in _PRICING if c in frame.columns])  # only these are gathered per batch
    parts = []
    for start in range(0, at.len(), _PRICE_BATCH_ROWS):
        rows = pricing[at.slice(start, _PRICE_BATCH_ROWS)]
        costs = ctx.prices.cache_costs(rows, variants, ctx.price_date).cast(pl.Float64)
        none, tokens = costs["none"], rows["input_tokens"].cast(pl.Float64)
        parts.append(
            pl.DataFrame(
                [
                    none.alias("cost_none"),
                    ((costs["read"] - none) / tokens).alias("d_read"),
                    ((costs["w5"] - none) / tokens).alias("d_w5"),
                    ((costs["w1"] - none) / tokens).alias("d_w1"),
                ]
            )
        )
    if not parts:
        return pl.DataFrame(schema=dict.fromkeys(("cost_none", "d_read", "d_w5", "d_w1"), pl.Float64))
    return pl.concat(parts)


# ---------------------------------------------------------------------------------------------- simulation


@dataclass
class Simulation:
    """Per text request (by `req`, its row in the work frame): cached tokens per variant and TTL option (Int32 when
    every input fits; _wide_tokens gives Int64 back)."""

    tokens: pl.DataFrame
    # Evidence, looked up for the few requests a finding shows: `rows` (work's _chain_row and input_tokens, by req)
    # point into `source` (row_id, bytes; by chain row), projections of frames analyze holds anyway. `texts` gives
    # head (null when "[system]\n" + system_text rebuilds it), span and system_text of one row_id: fetched for that
    # row (fetch_rows), as no step before the findings reads them.
    source: pl.DataFrame | None = None
    rows: pl.DataFrame | None = None
    texts: Callable[[int], dict[str, Any]] | None = None

    @property
    def evidence(self) -> pl.DataFrame | None:
        return self.source

    def evidence_row(self, req: int) -> dict[str, Any]:
        """The evidence of one request: head, span, bytes, input_tokens."""
        assert self.source is not None and self.rows is not None and self.texts is not None
        chain_row, input_tokens = self.rows.row(req)
        row = self.source.row(chain_row, named=True)
        row.update(self.texts(row["row_id"]), input_tokens=input_tokens)
        if row["head"] is None and row["system_text"] is not None:
            row["head"] = "[system]\n" + row["system_text"]
        return row


def _simulate(
    work: pl.DataFrame, table: pl.DataFrame, chains: pl.DataFrame, sim: Simulation, opts: CachingOptions
) -> Simulation:
    """`chains`: the key and window features (_CHAIN_COLUMNS) of the analyzed frame, by `_chain_row` of work; they
    are the largest columns, so the replay gathers them a batch at a time instead of copying them for all rows.
    `sim`: the evidence (Simulation.source, system_text); tokens are set here.

    Per request only its row in work (`req`) and scope code are held for the whole replay (`requests`, in start-time
    order); times, chain rows and lengths are gathered from work by req a batch at a time."""
    text_req = work.select(pl.arg_where(HAS_TEXT)).to_series().cast(pl.UInt32).alias("req")
    if text_req.len() == 0:
        sim.tokens = pl.DataFrame(schema={"req": pl.UInt32})
        return sim
    units = work["unit"].gather(text_req)
    present = units.unique()
    rule_ttls = pl.concat([table["ttl0"].gather(present), table["ttl1"].gather(present)])
    ttls = sorted(int(v) for v in rule_ttls.drop_nulls().unique().to_list())
    sim.rows = work.select("_chain_row", "input_tokens")
    # The replay needs requests in start-time order (text rows are in req order: ties in time stay in req order).
    requests = (
        pl.DataFrame({"req": text_req, "scope": table["scope"].gather(units).rank("dense"), "t": work["t"][text_req]})
        .sort("t", "req", maintain_order=True)
        .drop("t")
    )
    del units, present
    lookup = work.select("t", "_chain_row", BYTES, *([MASKED_BYTES] if MASKED_BYTES in work.columns else []))
    if KEYS_HEAD not in chains.columns:  # reduced before the keys were split: whole lists in KEYS
        chains = chains.with_columns(pl.lit(None, dtype=pl.Binary).alias(KEYS_HEAD))
    narrow = _fits_int32(work)
    # one row per text request, in req order (null where it shares nothing)
    raw = text_req.to_frame().join(
        _replay(requests, chains, opts.block_bytes, [*ttls, None], lookup=lookup),
        on="req",
        how="left",
        maintain_order="left",
    )
    tokens = _variant_tokens(raw, work, table, ttls, "raw", narrow)
    has_masked = any(c in chains.columns or c in work.columns for c in (MASKED_KEYS, MASKED_BYTES, WINDOW))
    masked = _masked_requests(requests, raw, work, chains, opts) if opts.detect_busters and has_masked else None
    del raw, requests
    if masked is not None:
        replayed = masked.select("req", "changed").join(
            _replay(masked, chains, opts.block_bytes, [*ttls, None], lookup=lookup),
            on="req",
            how="left",
            maintain_order="left",
        )
        tokens = tokens.join(
            _variant_tokens(replayed, work, table, ttls, "masked", narrow), on="req", how="left", maintain_order="left"
        )
        # requests outside the groups a volatile span touches: masked = as logged
        tokens = tokens.with_columns(
            pl.col(c).fill_null(pl.col(c.replace("masked_", "raw_"))) for c in tokens.columns if c.startswith("masked_")
        )
    sim.tokens = tokens
    return sim


def _fits_int32(work: pl.DataFrame) -> bool:
    """Whether every text request's input fits Int32 (cached tokens never exceed it)."""
    top = work.select(pl.col("input_tokens").filter(HAS_TEXT).max()).item()
    return top is None or int(top) <= 2**31 - 1


def _wide_tokens(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(pl.col(c).cast(pl.Int64) for c in rows.columns if c.startswith(_TOKEN_PREFIXES))


def _key_stats(chain_rows: pl.Series, changed: pl.Series | None, chains: pl.DataFrame) -> pl.DataFrame:
    """Per request (chain_rows' order): its first chain key and its number of keys, as the replay will see them
    (the masked keys where `changed`), without gathering the key lists."""
    stats = chains.select(
        first_key(pl.col(KEYS_HEAD), pl.col(KEYS)).alias("first"), key_count(pl.col(KEYS_HEAD), pl.col(KEYS)).alias("n")
    )[chain_rows]
    if changed is None:
        return stats
    # the changed requests' stats, by position: a scatter, not a join
    at = changed.arg_true()
    if at.len() == 0:
        return stats
    masked = chains.select(pl.col(MASKED_KEYS).list.first().alias("m_first"), pl.col(MASKED_KEYS).list.len())[
        chain_rows.gather(at)
    ]
    first = stats["first"].scatter(at, masked["m_first"])
    count = stats["n"].scatter(at, masked[MASKED_KEYS].cast(pl.Int64))
    return pl.DataFrame({"first": first, "n": count})


def _replay(
    requests: pl.DataFrame,
    chains: pl.DataFrame,
    block_bytes: int,
    ttls: Sequence[int | None],
    budget: int | None = None,
    lookup: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """cache_sim.replay over the requests (req, scope, t, _chain_row, bytes, and `changed` for the masked variant:
    its keys are MASKED_KEYS where changed), a batch of independent request groups at a time: the exploded blocks
    (one row per request and block, ~80 bytes each with the replay's temporaries) of a large log would not fit at
    once. A request only ever shares a cache entry with requests of its scope that have the same first block (chain
    keys are prefix-closed: sharing block k means sharing block 0), so each group (scope, first key) replays alone;
    groups are packed into batches of about `budget` blocks (default _REPLAY_BATCH_BLOCKS; a group larger than
    that is one batch). The key lists are gathered from `chains` a batch at a time. Rows of a batch keep the
    requests' order (start time), which is all the replay needs.

    With `lookup` (work's t, _chain_row and byte lengths, by req) requests need only req, scope (and changed):
    the rest is gathered a batch at a time. Lengths come back as UInt32 (they are prompt byte counts)."""
    budget = budget or _REPLAY_BATCH_BLOCKS
    changed = requests["changed"] if "changed" in requests.columns else None
    chain_rows = requests["_chain_row"] if lookup is None else lookup["_chain_row"].gather(requests["req"])
    stats = _key_stats(chain_rows, changed, chains)
    del chain_rows
    sizes = pl.DataFrame(
        {"g": pl.DataFrame({"s": requests["scope"], "f": stats["first"]}).hash_rows(43), "n": stats["n"]}
    )
    # batch = where the group's first block falls in the groups' running total, in a fixed group order
    per_group = sizes.group_by("g").agg(pl.col("n").sum()).sort("g")
    per_group = per_group.select("g", ((pl.col("n").cum_sum() - pl.col("n")) // budget).cast(pl.UInt32).alias("b"))
    batch = sizes.join(per_group, on="g", how="left", maintain_order="left")["b"]
    counts_per_request = stats["n"]
    del stats, sizes, per_group
    # positions of each batch's requests, ascending (so in the requests' order), one after the other
    order = pl.DataFrame({"b": batch, "i": pl.int_range(len(batch), dtype=pl.UInt32, eager=True)}).sort("b", "i")
    counts = order.group_by("b").len().sort("b")["len"].to_list()
    positions = order["i"]
    del order, batch
    parts, start = [], 0
    for count in counts:
        at = positions.slice(start, count)
        part, n = (requests[at], counts_per_request[at]) if len(counts) > 1 else (requests, counts_per_request)
        replayed = _replay_batch(_looked_up(part, lookup), n, chains, block_bytes, ttls, budget)
        parts.append(replayed.with_columns(pl.exclude("req").cast(pl.UInt32)))
        start += count
    return pl.concat(parts)


def _looked_up(part: pl.DataFrame, lookup: pl.DataFrame | None) -> pl.DataFrame:
    """The batch's requests with t, _chain_row and bytes (the masked length where `changed`) from `lookup`."""
    if lookup is None:
        return part
    rows = lookup[part["req"]]
    size = pl.col(BYTES).cast(pl.Int64)
    if "changed" in part.columns:
        size = pl.when(part["changed"]).then(pl.col(MASKED_BYTES).cast(pl.Int64)).otherwise(size)
    return part.hstack(rows.select("t", "_chain_row", size.alias("bytes")).get_columns())


def _replay_batch(
    requests: pl.DataFrame,
    counts: pl.Series,
    chains: pl.DataFrame,
    block_bytes: int,
    ttls: Sequence[int | None],
    budget: int,
) -> pl.DataFrame:
    """cache_sim.replay over one batch; a batch of more than twice `budget` blocks (one large group: every request
    with the same system prompt) replays by slices of block depth. Exact: all the rows of a key are at the same
    depth (a chain key names a prefix of a given length), so each slice holds every touch of its keys, and the
    per-request results are maxima over rows (shared and hit lengths), taken again over the slices."""
    depths = _depth_slices(counts, budget)
    if len(depths) <= 1:
        return replay(_blocks(requests, chains, block_bytes), ttls)
    parts = [replay(_blocks(requests, chains, block_bytes, a, b), ttls) for a, b in depths]
    return pl.concat(parts).group_by("req").agg(pl.all().max())


def _depth_slices(counts: pl.Series, budget: int) -> list[tuple[int, int | None]]:
    """[start, stop) block depths holding about `budget` (request, block) rows each, for requests with `counts`
    keys; one slice (0, None) up to twice the budget (batches packed from groups overshoot it a little: a second
    pass over their keys would cost more time than the few rows save)."""
    if counts.len() == 0 or int(counts.sum() or 0) <= 2 * budget:
        return [(0, None)]
    # rows at depth d: the requests with more than d keys
    per_count = counts.value_counts().sort(counts.name)
    alive, deepest = counts.len(), int(cast(int, counts.max() or 0))
    ends = dict(zip(per_count[counts.name].to_list(), per_count["count"].to_list(), strict=True))
    slices: list[tuple[int, int | None]] = []
    start, rows = 0, 0
    for depth in range(deepest):
        alive -= ends.get(depth, 0)
        rows += alive
        if rows >= budget:
            slices.append((start, depth + 1))
            start, rows = depth + 1, 0
    if start < deepest:
        slices.append((start, None))
    return slices


def _blocks(
    requests: pl.DataFrame, chains: pl.DataFrame, block_bytes: int, start: int = 0, stop: int | None = None
) -> pl.DataFrame:
    """One row per (request, block) in the requests' order, then block order: req, scope, t, end_byte, key
    (what prefix.chain_keys gives for the request's text); only blocks start <= block < stop when given."""
    keys = chains.select(KEYS_HEAD, KEYS, *([MASKED_KEYS] if "changed" in requests.columns else []))[
        requests["_chain_row"]
    ]
    if "changed" in requests.columns:  # masked keys are whole lists
        changed = requests["changed"]
        keys = keys.select(
            pl.when(changed).then(None).otherwise(pl.col(KEYS_HEAD)).alias(KEYS_HEAD),
            pl.when(changed).then(pl.col(MASKED_KEYS)).otherwise(pl.col(KEYS)).alias(KEYS),
        )
    blocks = exploded_keys(keys[KEYS_HEAD], keys[KEYS], start, stop)
    del keys
    rows = requests.select("req", "scope", "t", pl.col("bytes").alias("size"))[blocks["row"]]
    end = pl.min_horizontal((pl.col("block").cast(pl.Int64) + 1) * block_bytes, pl.col("size"))
    return pl.concat([rows, blocks.select("block", "key")], how="horizontal").select(
        "req", "scope", "t", end.alias("end_byte"), "key"
    )


def _masked_requests(
    requests: pl.DataFrame, raw: pl.DataFrame, work: pl.DataFrame, chains: pl.DataFrame, opts: CachingOptions
) -> pl.DataFrame | None:
    """The requests to replay again with volatile spans masked, in the requests' order: req, scope and `changed`
    (replay the masked keys). `raw`: the logged replay's shared_bytes per text request, in req order.

    A volatile span that breaks a prefix sits where the prefix stops being shared, so only prompts with a
    volatile match in the window around their divergence point are masked (WINDOW holds that test for every
    possible divergence point; the divergence point of a text is the longest prefix any request with that text
    shares). Only the groups (scope, first key) a masked prompt leaves or joins are replayed again: every other
    group replays alone exactly as logged (see _replay)."""
    text_req = raw["req"]
    chain_rows = work["_chain_row"].gather(text_req)
    # the last chain key identifies the whole text
    per_chain = chains.select(
        last_key(pl.col(KEYS_HEAD), pl.col(KEYS)).fill_null(0).alias("th"), pl.col(MASKED_KEYS).is_not_null().alias("m")
    )[chain_rows]
    candidates = per_chain["m"].arg_true()
    if candidates.len() == 0:
        return None
    # the divergence point of the candidates' texts only: the rows with one of their texts, grouped
    texts = per_chain["th"].gather(candidates)
    near = pl.DataFrame({"th": per_chain["th"], "d": raw["shared_bytes"].fill_null(0).cast(pl.Int64)}).filter(
        pl.col("th").is_in(texts.unique().implode())
    )
    del per_chain
    divergence = texts.to_frame().join(
        near.group_by("th").agg(pl.col("d").max()), on="th", how="left", maintain_order="left"
    )["d"]
    at = (divergence + opts.block_bytes - 1) // opts.block_bytes  # shared = min(k * block, size)
    windows = chains.select(WINDOW)[chain_rows.gather(candidates)].with_columns(at.alias("at"))
    hit = windows.select(pl.col(WINDOW).list.get(pl.col("at"), null_on_oob=True).fill_null(False)).to_series()
    flagged = text_req.gather(candidates).filter(hit)
    del chain_rows, windows
    if flagged.len() == 0:
        return None
    changed = requests["req"].is_in(flagged.implode()).alias("changed")
    # each request's group as the masked replay sees it, and the groups the flagged requests left
    first = _key_stats(work["_chain_row"].gather(requests["req"]), changed, chains)["first"]
    group = pl.DataFrame({"s": requests["scope"], "f": first}).hash_rows(47)
    flagged_rows = requests.filter(changed)
    left = pl.DataFrame(
        {
            "s": flagged_rows["scope"],
            "f": _key_stats(work["_chain_row"].gather(flagged_rows["req"]), None, chains)["first"],
        }
    ).hash_rows(47)
    touched = pl.concat([group.filter(changed), left]).unique()
    return requests.with_columns(changed).filter(group.is_in(touched.implode()))


def _variant_tokens(
    replayed: pl.DataFrame,
    work: pl.DataFrame,
    table: pl.DataFrame,
    ttls: Sequence[int],
    variant: str,
    narrow: bool,
) -> pl.DataFrame:
    """Cached tokens under the provider's rules: shared prefix, hits at TTL option 0/1 and unbounded. `replayed`:
    req (a row of work), `changed` for the masked variant, the replay's lengths (null: shares nothing). Per request
    alone, so in row batches (the rules and temporaries are ~0.15 KB a row), each gathering its unit, input and
    length from work; Int32 when `narrow` (every input fits: cached tokens never exceed the request's input)."""
    parts = []
    for start in range(0, max(replayed.height, 1), _TOKEN_BATCH_ROWS):
        part = _variant_tokens_batch(_with_inputs(replayed.slice(start, _TOKEN_BATCH_ROWS), work), table, ttls, variant)
        parts.append(part.with_columns(pl.exclude("req").cast(pl.Int32)) if narrow and replayed.height else part)
    return pl.concat(parts)


def _with_inputs(replayed: pl.DataFrame, work: pl.DataFrame) -> pl.DataFrame:
    """`replayed` with the request's unit, input_tokens and len_bytes (its masked length where `changed`)."""
    rows = work.select("unit", "input_tokens", BYTES, *([MASKED_BYTES] if "changed" in replayed.columns else []))[
        replayed["req"]
    ]
    size = pl.col(BYTES).cast(pl.Int64)
    if "changed" in replayed.columns:
        size = pl.when(replayed["changed"]).then(pl.col(MASKED_BYTES).cast(pl.Int64)).otherwise(size)
    return replayed.drop("changed", strict=False).hstack(
        rows.select("unit", "input_tokens", size.alias("len_bytes")).get_columns()
    )


def _variant_tokens_batch(frame: pl.DataFrame, table: pl.DataFrame, ttls: Sequence[int], variant: str) -> pl.DataFrame:
    frame = frame.with_columns(_per_unit(frame, table, "min_tokens", "granularity", "ttl0", "ttl1")).with_columns(
        (pl.col("input_tokens") / pl.col("len_bytes").clip(lower_bound=1)).alias("ratio")
    )

    def hit_bytes(ttl: pl.Expr) -> pl.Expr:
        expr: pl.Expr = pl.lit(None, dtype=pl.Int64)
        for i, value in enumerate(ttls):
            expr = pl.when(ttl == value).then(pl.col(hit_column(i))).otherwise(expr)
        return expr.fill_null(0)

    def rule_tokens(prefix: pl.Expr, *, apply_minimum: bool = True) -> pl.Expr:
        minimum = pl.col("min_tokens") if apply_minimum else pl.lit(0)
        granularity = pl.col("granularity") if apply_minimum else pl.lit(1)
        return cached_tokens(prefix.fill_null(0), pl.col("ratio"), pl.col("input_tokens"), minimum, granularity)

    unbounded = pl.col(hit_column(len(ttls)))
    v = variant
    out = frame.select(
        "req",
        rule_tokens(pl.col("shared_bytes")).alias(f"{v}_shared"),
        rule_tokens(pl.col("shared_bytes"), apply_minimum=False).alias(f"{v}_shared_any"),
        rule_tokens(hit_bytes(pl.col("ttl0"))).alias(f"{v}_hit0"),
        pl.when(pl.col("ttl1").is_null())
        .then(None)
        .otherwise(rule_tokens(hit_bytes(pl.col("ttl1"))))
        .alias(f"{v}_hit1"),
        rule_tokens(unbounded).alias(f"{v}_hitinf"),
        rule_tokens(hit_bytes(pl.col("ttl0")), apply_minimum=False).alias(f"{v}_hit0_any"),
    )
    del frame
    return out


# ---------------------------------------------------------------------------------------------- candidates


def _text_rows(work: pl.DataFrame) -> pl.DataFrame:
    """What _candidates reads of work's text rows (a projection, no copy, when every row has text)."""
    needed = ["row_id", "unit", "cur", "cost_none", "d_read", "d_w5", "d_w1", "input_tokens", "cache_read_tokens"]
    text = work.select(*needed, BYTES)
    return (text.filter(HAS_TEXT) if text[BYTES].null_count() else text).drop(BYTES)


def _candidates(text: pl.DataFrame, table: pl.DataFrame, sim: Simulation, variants: Sequence[str]) -> pl.DataFrame:
    """Per text request (`text`: _text_rows): cost (float USD) of each configuration, its unit and what the findings
    read. The costs are made a batch of rows at a time: the unit's rules per row live for a batch only."""
    # sim.tokens has one row per text request in req order: side by side with work's text rows (no join copy)
    if text.height != sim.tokens.height:
        raise AssertionError("simulated requests do not match the text rows")
    joined = pl.concat([text, sim.tokens], how="horizontal")
    columns = _cost_columns(variants)
    parts = []
    for start in range(0, max(joined.height, 1), _PRICE_BATCH_ROWS):
        part = joined.slice(start, _PRICE_BATCH_ROWS)
        rules = _per_unit(part, table, "one_hour_priced", "explicit", "min_tokens", "read_mult")
        parts.append(part.with_columns(rules).select(columns))
    # the rates are in the costs now: only what _decide, _text_counterfactual and _findings read stays
    return joined.drop("d_read", "d_w5", "d_w1").hstack(pl.concat(parts).get_columns())


def _cost_columns(variants: Sequence[str]) -> list[pl.Expr]:
    """The candidates' cost columns, from the rates, the unit's rules and the cached tokens of a row."""
    d_w1_or_5 = pl.when(pl.col("one_hour_priced")).then(pl.col("d_w1")).otherwise(pl.col("d_w5"))
    columns = []
    for v in variants:
        shared = pl.col(f"{v}_shared")
        for option, d_write in (("0", pl.col("d_w5")), ("1", d_w1_or_5)):
            hit = pl.col(f"{v}_hit{option}")
            write = (shared - hit).clip(lower_bound=0)
            columns.append((pl.col("cost_none") + hit * pl.col("d_read") + write * d_write).alias(f"{v}_cost{option}"))
        hit = pl.col(f"{v}_hitinf")
        write = (shared - hit).clip(lower_bound=0)
        # unbounded: the cheaper write option pays for every write (TTL no longer matters)
        d_cheap = pl.min_horizontal(pl.col("d_w5"), d_w1_or_5)
        columns.append((pl.col("cost_none") + hit * pl.col("d_read") + write * d_cheap).alias(f"{v}_costinf"))
    # pessimistic: the default TTL and, for explicit caches, an automatic breakpoint at the end of every prompt
    # (every uncached token of a prompt above the minimum is written)
    above_min = pl.col("explicit") & (pl.col("input_tokens") >= pl.col("min_tokens"))
    writable = pl.when(above_min).then(pl.col("input_tokens")).otherwise(pl.col("raw_shared"))
    low_write = (writable - pl.col("raw_hit0")).clip(lower_bound=0)
    columns.append(
        (pl.col("cost_none") + pl.col("raw_hit0") * pl.col("d_read") + low_write * pl.col("d_w5")).alias("low_cost")
    )
    # LA103: pad a reused prefix below the minimum up to it
    pad = (pl.col("min_tokens") - pl.col("raw_shared_any")).clip(lower_bound=0)
    below = (pl.col("raw_shared") == 0) & (pl.col("raw_shared_any") > 0) & (pl.col("min_tokens") > 0)
    padded_hit = pl.when(pl.col("raw_hit0_any") > 0).then(pl.col("min_tokens")).otherwise(0)
    p_in = -pl.col("d_read") / (1 - pl.col("read_mult"))  # the input price per token, from the read discount
    padded = (
        pl.col("cost_none")
        + pad * p_in
        + padded_hit * pl.col("d_read")
        + (pl.col("min_tokens") - padded_hit) * pl.col("d_w5")
    )
    return [*columns, below.alias("below_min"), padded.alias("padded_cost")]


# ---------------------------------------------------------------------------------------------- lever


class PromptCachingLever:
    id = LEVER_ID
    title = "Prompt caching"
    reads: tuple[str, ...] = _USED  # analyze selects these

    def check_options(self, options: dict[str, Any]) -> None:
        CachingOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        """Chain keys of each prompt (and of its masked form where masking changes it), its byte length, a head
        for the LA101 example and the LA102 span evidence: the replay needs nothing else of the text.

        Keys are kept for every block, not only some: the LA103 padding test reads the shared prefix at any
        length (no minimum, granularity 1) and whether any block at all was hit, and Anthropic caches at token
        granularity above the minimum, so every block end can change a result.
        """
        opts = CachingOptions.parse(dict(options or {}))
        text = chunk["prompt_text"]
        head = text.str.slice(0, HEAD_CHARS)
        rebuilt = (pl.lit("[system]\n") + chunk["system_text"]).str.slice(0, HEAD_CHARS)
        keys = chain_keys(text, opts.block_bytes)
        split = split_key_lists(chain_key_lists(text, opts.block_bytes, keys))
        columns = [
            split["head"].alias(KEYS_HEAD),
            split["tail"].alias(KEYS),
            text.str.len_bytes().cast(pl.UInt32).alias(BYTES),
            shared_strings(pl.select(pl.when(head == rebuilt).then(None).otherwise(head)).to_series()).alias(HEAD),
            _session_hash(chunk["session_id"]).alias(SESSION),
        ]
        if opts.billing_scope_tag:
            columns.append(
                shared_strings(chunk["tags"].str.json_path_match(f"$.{opts.billing_scope_tag}")).alias(BILLING)
            )
        out = pl.DataFrame(columns)
        if opts.detect_busters:
            masked = masked_features(text, opts.block_bytes, keys)
            out = out.with_columns(
                masked["masked_keys"].alias(MASKED_KEYS),
                masked["masked_bytes"].cast(pl.UInt32).alias(MASKED_BYTES),
                masked["window"].alias(WINDOW),
                masked["span"].alias(SPAN),
            )
        return out

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = CachingOptions.parse(dict(ctx.options or {}))
        reduced = ensure_reduced(frame, self, ctx.options or {})
        # Every filter, join and partition below copies the rows it keeps: only the columns it reads go on.
        frame = reduced.select([c for c in reduced.columns if c in _USED or c.startswith(f"_{LEVER_ID}_")])
        chains = frame.select([c for c in _CHAIN_COLUMNS if c in frame.columns])
        frame = frame.drop(chains.columns).with_row_index("_chain_row")
        # the evidence of a few requests is looked up by chain row at the end: the rest never carries it
        source = frame.select("row_id", pl.col(BYTES).alias("bytes"))
        sim = Simulation(pl.DataFrame(), source, None, _evidence_texts(reduced, ctx))
        del reduced  # the loaded columns go as soon as the steps that read them are done
        prepared = _prepare(frame.drop(HEAD, SPAN, strict=False), ctx, opts)
        del frame
        work, table, rules = prepared.work, prepared.table, prepared.rules
        result = LeverResult(
            lever_id=self.id,
            title=self.title,
            confidence="measured",
            counterfactual=empty_counterfactual(),
            assumptions=_ASSUMPTIONS,
            method=_METHOD,
        )
        if work.height == 0:
            return result
        table = table.with_columns(
            pl.col("model_id")
            .replace_strict({m: float(r.rules.read_multiplier) for m, r in rules.items()}, return_dtype=pl.Float64)
            .alias("read_mult")
        )
        sim = _simulate(work, table, chains, sim, opts)
        del chains  # the key lists are the largest input columns: only the replay reads them
        del work
        work = prepared.complete(ctx)
        # What reads every row of work runs first: from the candidates on, only text rows are held (in cands).
        units = _units(work, table, rules)
        measured = _measured(work, units)
        result.gaps, gap_findings = _text_gap(work, table)
        variants = [v for v in VARIANTS if f"{v}_shared" in sim.tokens.columns]
        rows = []
        if variants:
            text = _text_rows(work)
            del work  # its other columns go before the cost columns are made
            cands = _candidates(text, table, sim, variants)
            del text
            sim.tokens = sim.tokens.clear()  # all in cands now
            decisions = _decide(cands, units, variants, opts)
            rows.append(_text_counterfactual(cands, decisions))
            result.confidence = "simulated"
        else:
            cands, decisions = None, {}
        rows.append(measured.counterfactual)
        cf = pl.concat([r for r in rows if r.height]) if any(r.height for r in rows) else empty_counterfactual()
        result.counterfactual = cf
        result.findings = _findings(units, decisions, measured, sim, cands, opts) + gap_findings
        return result


LEVER = PromptCachingLever()


def _evidence_texts(frame: pl.DataFrame, ctx: LeverContext) -> Callable[[int], dict[str, Any]]:
    """head, span and system_text of one row_id, read when a finding shows it (fetch_rows): from the pipeline's rows
    (the spilled parts or the priced frame) when it gives them, else from the lever's own frame (kept for that)."""
    # the features the frame has (own features are all loaded: SPAN only when busters are detected); system_text
    # is not among the lever's columns in a scan (not in `reads`), but the pipeline's rows have it
    wanted = [c for c in (HEAD, SPAN, "system_text") if c in frame.columns or (c == "system_text" and ctx.rows)]
    keep = frame.select("row_id", *(wanted if ctx.rows is None else ()))

    def texts(row_id: int) -> dict[str, Any]:
        fetched = fetch_rows(keep, ctx, pl.Series([row_id], dtype=pl.Int64), wanted).row(0, named=True)
        return {"head": fetched.get(HEAD), "span": fetched.get(SPAN), "system_text": fetched.get("system_text")}

    return texts


def _session_hash(session: pl.Series) -> pl.Series:
    """A session's identity as a u64 (null: none, as an empty id); distinct ids collide with odds ~2^-64 a pair."""
    return pl.select(pl.when(session.fill_null("") != "").then(session.hash(0x5E55)).alias(SESSION)).to_series()


_METHOD = (
    "Hash chains over each rendered prompt (tools -> system -> messages, 256-byte blocks) give the prefix every "
    "request shares with others in its cache scope; a time-ordered replay applies the provider's minimum, "
    "granularity and TTL options from the price tables; candidate configurations are priced per request and the "
    "cheapest per model and feature is kept, never above today's cost."
)
_ASSUMPTIONS = [
    "Shared prefix bytes are converted to tokens by each request's own tokens-per-byte ratio (no re-tokenization).",
    "A breakpoint sits at the end of the prefix the request shares with others (system/tools, or the latest "
    "message in a conversation); the lookback finds any earlier written block.",
    "Requests starting at the same instant all miss (a cache entry is readable only after its writer started).",
    "Expected: best TTL option per model and feature; low savings: default TTL with a breakpoint at the end of "
    "every prompt; high savings: an unbounded cache.",
    "Gemini explicit-cache storage fees and provider-side eviction before the TTL are not modelled.",
]


# ---------------------------------------------------------------------------------------------- units


@dataclass
class Unit:
    key: str
    code: int  # the unit's row in the unit table: what work, cands and the per-unit aggregates carry
    provider: str
    model_id: str
    feature: str
    billing_scope: str
    rules: UnitRules
    stats: dict[str, Any] = field(default_factory=dict)

    def scope(self) -> dict[str, str]:
        scope = {"provider": self.provider, "model": self.model_id, "feature": self.feature}
        if self.billing_scope:
            scope["billing_scope"] = self.billing_scope
        return scope


def _exact_sum(values: pl.Expr) -> pl.Expr:
    """Sum of a float USD column that does not depend on how polars splits the rows: each value is rounded to
    1e-12 (a pico-dollar) and summed as an exact decimal. A float sum's last bits depend on the order partial sums
    are combined in, which follows chunk layout and hash partitions (parallel vs serial ingest, one file vs eight):
    fed into the counterfactual, that flipped nano-dollar digits of the report between equal inputs."""
    return values.cast(_EXACT).sum().cast(pl.Float64)


def _units(work: pl.DataFrame, table: pl.DataFrame, rules: dict[str, UnitRules]) -> dict[str, Unit]:
    """Per unit (by key, in key order): identity and the realized cache usage as logged (all rows, with or without
    text)."""
    stats = work.group_by("unit").agg(
        pl.len().alias("requests"),
        HAS_TEXT.sum().alias("text_requests"),
        _exact_sum(pl.col("cur")).alias("cost"),
        pl.col("input_tokens").sum(),
        pl.col("cache_read_tokens").sum(),
        pl.col("cache_write_5m_tokens").sum(),
        pl.col("cache_write_1h_tokens").sum(),
        _exact_sum(
            pl.col("cache_write_5m_tokens") * pl.col("d_w5") + pl.col("cache_write_1h_tokens") * pl.col("d_w1")
        ).alias("write_premium"),
        _exact_sum(-pl.col("cache_read_tokens") * pl.col("d_read")).alias("read_savings"),
    )
    names = table.select("unit", "provider", "model_id", "feature", "billing_scope")
    units = {}
    for row in stats.sort("unit").iter_rows(named=True):
        code = row.pop("unit")
        row = {**names.row(code, named=True), **row}
        units[row["unit"]] = Unit(
            key=row["unit"],
            code=code,
            provider=row["provider"],
            model_id=row["model_id"],
            feature=row["feature"],
            billing_scope=row["billing_scope"],
            rules=rules[row["model_id"]],
            stats=row,
        )
    return units


def _current_option(unit: Unit) -> int | None:
    """Which TTL option the unit uses today (None: no cache activity in the log)."""
    s = unit.stats
    if s["cache_write_1h_tokens"] > s["cache_write_5m_tokens"] and unit.rules.uses_1h_column(1):
        return 1
    if s["cache_write_5m_tokens"] or s["cache_read_tokens"]:
        return 0
    return None


# ---------------------------------------------------------------------------------------------- decisions


@dataclass
class Decision:
    unit: str
    code: int  # Unit.code
    variant: str  # raw | masked (volatile spans moved out of the prefix)
    choice: str  # current | none | cost0 | cost1
    costs: dict[str, float]  # totals over the unit's text requests: cur, none, raw_cost0, ..., low_cost
    expected: float
    low: float
    high: float
    text_requests: int
    busted_requests: int = 0


def _decide(
    cands: pl.DataFrame, units: dict[str, Unit], variants: Sequence[str], opts: CachingOptions
) -> dict[str, Decision]:
    cost_cols = [f"{v}_cost{o}" for v in variants for o in ("0", "1", "inf")]
    aggs = [_exact_sum(pl.col(c)).alias(c) for c in ("cur", "cost_none", "low_cost", *cost_cols)]
    aggs.append(pl.len().alias("n"))
    if "masked" in variants:
        aggs.append((pl.col("masked_shared") > pl.col("raw_shared")).sum().alias("busted"))
    totals = cands.group_by("unit").agg(aggs)
    by_code = {unit.code: unit for unit in units.values()}
    decisions = {}
    for row in totals.sort("unit").iter_rows(named=True):
        unit = by_code[row.pop("unit")]
        has_1h = unit.rules.ttl(1) is not None
        costs = {k: float(v) for k, v in row.items() if isinstance(v, int | float) and k not in ("n", "busted")}

        def best(variant: str, costs: dict[str, float] = costs, has_1h: bool = has_1h) -> tuple[str, float]:
            options = [(f"cost{o}", costs[f"{variant}_cost{o}"]) for o in (("0", "1") if has_1h else ("0",))]
            return min(options, key=lambda item: item[1])

        variant = "raw"
        label, best_cost = best("raw")
        busted = int(row.get("busted") or 0)
        if "masked" in variants and busted >= 2:
            m_label, m_cost = best("masked")
            gain = best_cost - m_cost
            if gain > max(opts.min_finding_usd, opts.min_finding_share * costs["cur"]):
                variant, label, best_cost = "masked", m_label, m_cost
        choice, expected = min(
            [("current", costs["cur"]), ("none", costs["cost_none"]), (label, best_cost)], key=lambda item: item[1]
        )
        low = min(costs["cur"], costs["cost_none"], costs["low_cost"])
        high = min(expected, costs[f"{variant}_costinf"])
        decisions[unit.key] = Decision(
            unit=unit.key,
            code=unit.code,
            variant=variant,
            choice=choice,
            costs=costs,
            expected=expected,
            low=max(low, expected),
            high=high,
            text_requests=int(row["n"]),
            busted_requests=busted,
        )
    return decisions


def _text_counterfactual(cands: pl.DataFrame, decisions: dict[str, Decision]) -> pl.DataFrame:
    """Per request cost after, for the three cases; unit savings spread over the requests that get cheaper.

    Each unit's choice and savings enter the expressions by unit code (no join of per-unit columns onto every row)."""
    if not decisions:
        return empty_counterfactual()
    cases = ("expected", "low", "high")
    choices = {(d.code, case): _choice_column(d, case) for d in decisions.values() for case in cases}
    cost_cols = sorted({c for c in choices.values() if c != "cur"})
    frame = cands.select("row_id", "unit", "cur", *cost_cols).filter(
        pl.col("unit").is_in([d.code for d in decisions.values()])
    )

    def picked(case: str) -> pl.Expr:
        expr: pl.Expr = pl.col("cur")
        for column in cost_cols:
            codes = [code for (code, c), chosen in choices.items() if c == case and chosen == column]
            if codes:
                expr = pl.when(pl.col("unit").is_in(codes)).then(pl.col(column)).otherwise(expr)
        return expr

    def after(case: str) -> pl.Expr:
        savings = {d.code: d.costs["cur"] - float(getattr(d, case)) for d in decisions.values()}
        gain = (pl.col("cur") - picked(case)).clip(lower_bound=0)
        share = gain / _exact_sum(gain).over("unit")
        saved = pl.col("unit").replace_strict(savings, return_dtype=pl.Float64)
        spread = (saved.clip(lower_bound=0) * share).fill_nan(0).fill_null(0)
        return (pl.col("cur") - spread).clip(lower_bound=0)

    out = (
        frame.select(
            "row_id", "cur", after("expected").alias("exp"), after("low").alias("low"), after("high").alias("high")
        )
        # each case is spread by its own candidate's gains; keep high <= expected <= low on every request
        .with_columns(pl.min_horizontal("high", "exp").alias("high"), pl.max_horizontal("low", "exp").alias("low"))
        .filter(pl.col("high") < pl.col("cur"))
    )
    return counterfactual_frame(out["row_id"], out["exp"], out["low"], out["high"])


def _choice_column(decision: Decision, case: str) -> str:
    costs = decision.costs
    target = {"expected": decision.expected, "low": decision.low, "high": decision.high}[case]
    if case == "expected":
        if decision.choice == "current":
            return "cur"
        return "cost_none" if decision.choice == "none" else f"{decision.variant}_{decision.choice}"
    candidates = ["cur", "cost_none", "low_cost"] if case == "low" else [f"{decision.variant}_costinf"]
    for column in candidates:
        if math.isclose(costs[column], target, rel_tol=1e-12, abs_tol=1e-15):
            return column
    return _choice_column(decision, "expected")


# ---------------------------------------------------------------------------------------------- token-only


@dataclass
class Measured:
    counterfactual: pl.DataFrame
    per_unit: dict[int, dict[str, Any]]  # by Unit.code


def _measured(work: pl.DataFrame, units: dict[str, Unit]) -> Measured:
    """Writes never read (LA105) and TTL-gap misses (LA104) from the logged cache fields alone. Each step selects
    only the columns it reads: its sort, filter or partition copies them for every row."""
    horizons = {u.code: float(max(u.rules.rules.ttl_seconds)) for u in units.values()}
    writes = (pl.col("cache_write_5m_tokens") + pl.col("cache_write_1h_tokens")).alias("cache_write_tokens")
    # one pass over all units: the group is (unit, session), the horizon the unit's longest TTL
    # (unit, session) as one u64 (a 64-bit hash, like the prefix keys): one sort key
    never_read = writes_never_read(
        work.select(
            pl.struct("unit", "session").hash(17).alias("group"),
            "t",
            "cache_read_tokens",
            writes,
            pl.col("unit").replace_strict(horizons, return_dtype=pl.Float64).alias("horizon"),
        ),
        ["group"],
        pl.col("horizon"),
    )
    premium = (
        pl.col("cache_write_5m_tokens") * pl.col("d_w5") + pl.col("cache_write_1h_tokens") * pl.col("d_w1")
    ).clip(lower_bound=0)
    base = work.select(
        "row_id",
        "unit",
        "cur",
        HAS_TEXT.alias("has_text"),
        writes,
        never_read.alias("never_read"),
        pl.when(never_read).then(premium).otherwise(0.0).alias("wasted"),
    )
    del never_read
    per_unit: dict[int, dict[str, Any]] = {}
    for row in (
        base.group_by("unit")
        .agg(
            pl.col("never_read").sum().alias("never_read_requests"),
            pl.col("wasted").sum().alias("wasted_premium"),
            pl.col("cache_write_tokens").filter(pl.col("never_read")).sum().alias("never_read_tokens"),
            pl.col("cache_write_tokens").sum().alias("write_tokens"),
        )
        .iter_rows(named=True)
    ):
        per_unit[row["unit"]] = row
    # Only rows without prompt text take the measured counterfactual; text rows are simulated.
    token_only = base.filter(~pl.col("has_text") & (pl.col("wasted") > 0))
    del base
    cf = counterfactual_frame(token_only["row_id"], token_only["cur"] - token_only["wasted"])
    gap_columns = ["unit", "session", "t", "cache_read_tokens", "cache_write_5m_tokens", "d_read", "d_w5", "d_w1"]
    sessions = (
        work.select(*gap_columns, writes)
        .filter(pl.col("session") != 0)
        .partition_by("unit", as_dict=True, maintain_order=True)
    )
    empty = work.select(*gap_columns, writes).head(0)
    for unit in units.values():
        rows = sessions.pop((unit.code,), empty)
        per_unit.setdefault(unit.code, {}).update(_ttl_gaps(rows, unit))
    return Measured(counterfactual=cf, per_unit=per_unit)


def _ttl_gaps(rows: pl.DataFrame, unit: Unit) -> dict[str, Any]:
    """TTL-gap misses in sessions, and what the longer TTL option would have saved on them (estimate).

    `rows`: the unit's rows that belong to a session."""
    sessions = rows
    short, long = unit.rules.ttl(0), unit.rules.ttl(1)
    if sessions.height < 2 or short is None or long is None or long <= short:
        return {"ttl_gap_misses": 0, "ttl_gap_missed_tokens": 0, "ttl_1h_savings": 0.0}
    gaps = session_gaps(sessions, ["session"], short, long)
    misses = gaps.filter(pl.col("ttl_gap_miss"))
    d_long = pl.col("d_w1") if unit.rules.uses_1h_column(1) else pl.col("d_w5")
    gained = misses.select((pl.col("missed_tokens") * (pl.col("d_w5") - pl.col("d_read"))).sum()).item() or 0.0
    extra = gaps.select((pl.col("cache_write_5m_tokens") * (d_long - pl.col("d_w5"))).sum()).item() or 0.0
    return {
        "ttl_gap_misses": misses.height,
        "ttl_gap_missed_tokens": int(misses["missed_tokens"].sum() or 0),
        "ttl_1h_savings": float(gained - extra),
        "median_gap_s": _median(gaps["gap_s"]),
    }


# ---------------------------------------------------------------------------------------------- findings


def _findings(
    units: dict[str, Unit],
    decisions: dict[str, Decision],
    measured: Measured,
    sim: Simulation,
    cands: pl.DataFrame | None,
    opts: CachingOptions,
) -> list[Finding]:
    findings: list[Finding] = []
    # one pass over the candidates instead of one filter per unit
    by_unit: dict[int, pl.Series] = {}
    if cands is not None:
        needed = ["unit", "req", "input_tokens", "cache_read_tokens", "below_min", "padded_cost"]
        needed += [c for c in cands.columns if c.startswith(("raw_", "masked_"))]
        cands = cands.select(needed)
        # each unit's row positions (ascending): its rows are gathered when its findings are made, one unit at a
        # time (a partition would copy every row at once)
        positions = cands.select("unit", pl.int_range(pl.len(), dtype=pl.UInt32).alias("i")).group_by("unit")
        lists = positions.agg("i")  # one Series of positions per unit: no Python int per row
        by_unit = dict(zip(lists["unit"].to_list(), lists["i"], strict=True))
    for unit in units.values():
        m = measured.per_unit.get(unit.code, {})
        threshold = max(opts.min_finding_usd, opts.min_finding_share * unit.stats["cost"])
        evidence = _unit_evidence(unit, decisions.get(unit.key), m)
        decision = decisions.get(unit.key)
        if decision is not None and cands is not None:
            at = by_unit.get(unit.code)
            rows = _wide_tokens(cands[at] if at is not None else cands.head(0))
            findings += _simulated_findings(unit, decision, m, sim, rows, evidence, threshold, opts)
        else:
            findings += _measured_findings(unit, m, evidence, threshold)
    return findings


def _unit_evidence(unit: Unit, decision: Decision | None, m: dict[str, Any]) -> dict[str, Any]:
    s = unit.stats
    rules = unit.rules.rules
    evidence: dict[str, Any] = {
        "requests": s["requests"],
        "requests_with_prompt_text": s["text_requests"],
        "logged_cost_usd": usd(s["cost"]),
        "realized_hit_rate": round(s["cache_read_tokens"] / s["input_tokens"], 4) if s["input_tokens"] else None,
        "cache_read_tokens": s["cache_read_tokens"],
        "cache_write_tokens": s["cache_write_5m_tokens"] + s["cache_write_1h_tokens"],
        "write_premium_usd": usd(s["write_premium"]),
        "read_savings_usd": usd(s["read_savings"]),
        "rules": {
            "mode": rules.mode,
            "min_tokens": rules.min_tokens,
            "granularity_tokens": rules.granularity_tokens,
            "ttl_seconds": list(rules.ttl_seconds),
            "write_multipliers": [unit.rules.write_multiplier(i) for i in range(len(rules.ttl_seconds))],
            "read_multiplier": float(rules.read_multiplier),
        },
        "ttl_gap_misses": m.get("ttl_gap_misses", 0),
        "writes_never_read_requests": m.get("never_read_requests", 0),
    }
    if decision is not None:
        c = decision.costs
        text_input = decision.text_requests
        evidence.update(
            {
                "simulated_requests": text_input,
                "text_logged_cost_usd": usd(c["cur"]),
                "best_config_cost_usd": usd(decision.expected),
                "unbounded_cost_usd": usd(c[f"{decision.variant}_costinf"]),
                "best_config": _config_name(unit, decision),
                "prefix_tokens_method": "bytes x the request's own tokens-per-byte ratio",
            }
        )
    return evidence


def _config_name(unit: Unit, decision: Decision) -> str:
    if decision.choice == "current":
        return "as logged"
    if decision.choice == "none":
        return "no caching"
    option = int(decision.choice[-1])
    return f"breakpoint after the stable prefix, TTL {_ttl_name(unit.rules.ttl(option))}"


def _ttl_name(seconds: int | None) -> str:
    if seconds is None:
        return "unbounded"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _hit_rates(unit_rows: pl.DataFrame, variant: str, option: str) -> dict[str, float | None]:
    total = float(unit_rows["input_tokens"].sum())
    if not total:
        return {}
    hit_col = f"{variant}_hit{option}" if option in ("0", "1") else f"{variant}_hit0"
    return {
        "potential_hit_rate": round(float(unit_rows[hit_col].fill_null(0).sum()) / total, 4),
        "unbounded_hit_rate": round(float(unit_rows[f"{variant}_hitinf"].sum()) / total, 4),
        "realized_hit_rate_text_rows": round(float(unit_rows["cache_read_tokens"].sum()) / total, 4),
    }


def _median(series: pl.Series) -> float:
    value = series.median()
    return float(value) if isinstance(value, int | float) else 0.0


def _severity(savings: float, cost: float) -> Severity:
    share = savings / cost if cost else 0.0
    return "high" if share >= 0.2 else "medium" if share >= 0.05 else "low"


def _simulated_findings(
    unit: Unit,
    decision: Decision,
    m: dict[str, Any],
    sim: Simulation,
    rows: pl.DataFrame,
    evidence: dict[str, Any],
    threshold: float,
    opts: CachingOptions,
) -> list[Finding]:
    """Findings of a unit whose text requests were simulated; `rows`: its candidate rows."""
    c = decision.costs
    option = decision.choice[-1] if decision.choice.startswith("cost") else "0"
    evidence = {**evidence, **_hit_rates(rows, decision.variant, option)}
    total = c["cur"] - decision.expected
    findings: list[Finding] = []
    cost = unit.stats["cost"]

    def add(code: str, savings: float, title: str, recommendation: str, extra: dict[str, Any]) -> None:
        if savings <= 0 or savings < threshold:
            return
        findings.append(
            Finding(
                code=code,
                lever=LEVER_ID,
                title=title,
                severity=_severity(savings, cost),
                savings_usd=usd(savings) or 0.0,
                affected_requests=decision.text_requests,
                recommendation=recommendation,
                scope=unit.scope(),
                evidence={**evidence, **extra, "savings_usd": usd(savings)},
            )
        )

    if decision.choice == "none":
        add(
            "LA105",
            total,
            f"Cache writes cost more than they save on {unit.model_id} / {unit.feature}",
            "Remove the cache_control breakpoints for this feature (or move them to a prefix that repeats within the "
            "TTL): the write premium is not paid back by reads.",
            {"writes_never_read_tokens": m.get("never_read_tokens", 0), "uncached_cost_usd": usd(c["cost_none"])},
        )
    elif decision.choice != "current":
        raw_label = min(
            ((f"cost{o}", c[f"raw_cost{o}"]) for o in ("0", "1") if o == "0" or unit.rules.ttl(1) is not None),
            key=lambda item: item[1],
        )
        s102 = min(total, max(0.0, raw_label[1] - decision.expected)) if decision.variant == "masked" else 0.0
        rest = total - s102
        current = _current_option(unit)
        s104 = 0.0
        if current is not None and decision.choice != f"cost{current}":
            at_current = c[f"{decision.variant}_cost{current}"]
            s104 = min(rest, max(0.0, at_current - decision.expected))
            rest -= s104
        s105 = min(rest, float(m.get("wasted_premium") or 0.0)) if current is not None else 0.0
        rest -= s105
        if s102 > 0:
            add(*_buster_finding(unit, decision, sim, rows, s102))
        if s104 > 0:
            add(*_ttl_finding(unit, decision, current, s104, m))
        if s105 > 0:
            add(
                "LA105",
                s105,
                f"Cache writes never read on {unit.model_id} / {unit.feature}",
                "Move the breakpoint to the end of the prefix that repeats (system prompt, tools, the previous "
                "turn); writes of unique tails pay the write premium and are never read.",
                {"writes_never_read_tokens": m.get("never_read_tokens", 0)},
            )
        add(*_not_cached_finding(unit, decision, rows, sim, rest))
    below_min = _below_min_finding(unit, rows, evidence, opts.pad_floor_share)
    if below_min is not None:
        findings.append(below_min)
    return findings


def _not_cached_finding(
    unit: Unit, decision: Decision, rows: pl.DataFrame, sim: Simulation, savings: float
) -> tuple[str, float, str, str, dict[str, Any]]:
    variant = decision.variant
    reused = rows.filter(pl.col(f"{variant}_shared") > 0)
    prefix = int(_median(reused[f"{variant}_shared"])) if reused.height else 0
    example = _example_prefix(reused, sim, variant)
    ttl = _config_name(unit, decision)
    if unit.rules.rules.mode == "explicit":
        how = (
            f"Add a cache_control breakpoint at the end of the stable prefix (after tools and system; in "
            f"conversations also on the latest message) with {ttl.split(', ')[-1]}."
        )
    else:
        how = (
            "Caching is automatic here: keep the stable part (tools, system, shared documents) first and "
            "byte-identical, put per-request content last, and send a prompt_cache_key per feature; "
            f"{ttl.split(', ')[-1]}."
        )
    return (
        "LA101",
        savings,
        f"Stable {prefix:,}-token prefix not cached on {unit.model_id} / {unit.feature}",
        how,
        {"stable_prefix_tokens_median": prefix, "requests_sharing_a_prefix": reused.height, "example_prefix": example},
    )


def _example_prefix(reused: pl.DataFrame, sim: Simulation, variant: str) -> str:
    if reused.height == 0 or sim.evidence is None:
        return ""
    req = reused.sort(f"{variant}_shared", descending=True)["req"][0]
    head = sim.evidence_row(req)["head"]
    return excerpt(head)


def _buster_finding(
    unit: Unit, decision: Decision, sim: Simulation, rows: pl.DataFrame, savings: float
) -> tuple[str, float, str, str, dict[str, Any]]:
    gained = rows.with_columns((pl.col("masked_shared") - pl.col("raw_shared")).alias("gain")).sort(
        ["gain", "req"], descending=[True, False]
    )
    extra: dict[str, Any] = {
        "requests_with_buster": decision.busted_requests,
        "prefix_tokens_if_fixed_median": int(_median(gained.filter(pl.col("gain") > 0)["masked_shared"])),
        "prefix_tokens_as_logged_median": int(_median(gained.filter(pl.col("gain") > 0)["raw_shared"])),
    }
    span = _buster_span(sim, int(gained["req"][0]))
    where = "near the start of the prompt"
    if span is not None:
        extra.update(span)
        where = f"in the {span['segment'] or 'prompt'} block, line {span['line_in_segment']} ({span['volatile_kind']})"
    return (
        "LA102",
        savings,
        f"Cache buster {where} on {unit.model_id} / {unit.feature}",
        "Move the volatile value (time, date, ids) out of the prefix: put it in the last user message or after the "
        "cache breakpoint, and serialize tools / JSON with a fixed key order.",
        extra,
    )


def _buster_span(sim: Simulation, req: int) -> dict[str, Any] | None:
    """Evidence of the volatile span of a request whose masked prefix is shared (features: its first span)."""
    if sim.evidence is None:
        return None
    row = sim.evidence_row(req)
    if row["span"] is None:
        return None
    kind, segment, line, line_in_segment, char_offset, byte_offset, line_text = row["span"].split(SPAN_SEP, 6)
    size = int(row["bytes"] or 0)
    ratio = row["input_tokens"] / size if size else 0.0
    return {
        "volatile_kind": kind,
        "segment": segment,
        "line": int(line),
        "line_in_segment": int(line_in_segment),
        "char_offset": int(char_offset),
        "token_offset": int(int(byte_offset) * ratio),
        "example": excerpt(line_text),
    }


def _ttl_finding(
    unit: Unit, decision: Decision, current: int | None, savings: float, m: dict[str, Any]
) -> tuple[str, float, str, str, dict[str, Any]]:
    chosen = int(decision.choice[-1])
    now, better = _ttl_name(unit.rules.ttl(current or 0)), _ttl_name(unit.rules.ttl(chosen))
    longer = (unit.rules.ttl(chosen) or 0) > (unit.rules.ttl(current or 0) or 0)
    title = (
        f"Gaps between reuses exceed the {now} TTL on {unit.model_id} / {unit.feature}: {better} pays"
        if longer
        else f"{now} cache writes on {unit.model_id} / {unit.feature} are reused within {better}"
    )
    return (
        "LA104",
        savings,
        title,
        f"Switch the cache TTL from {now} to {better} for this feature.",
        {"current_ttl": now, "best_ttl": better, "ttl_gap_misses": m.get("ttl_gap_misses", 0)},
    )


def _below_min_finding(unit: Unit, rows: pl.DataFrame, evidence: dict[str, Any], floor: float) -> Finding | None:
    """LA103, reported even when padding would not pay: it explains why a reused prefix never caches."""
    minimum = unit.rules.rules.min_tokens
    below = rows.filter(pl.col("below_min") & (pl.col("raw_shared_any") >= minimum * floor))
    if below.height < 2:
        return None
    best_cols = [f"raw_cost{o}" for o in ("0", "1") if o == "0" or unit.rules.ttl(1) is not None]
    current = below.select(pl.min_horizontal([pl.col(c) for c in best_cols]).sum()).item()
    savings = max(0.0, float(current - below["padded_cost"].sum()))
    prefix = int(_median(below["raw_shared_any"]))
    advice = (
        f"Pad the shared prefix to {minimum:,} tokens (move stable instructions or examples into it) or merge it "
        "with other stable content: padding pays here."
        if savings > 0
        else "Padding to the minimum would cost more than the cache saves: leave it uncached."
    )
    return Finding(
        code="LA103",
        lever=LEVER_ID,
        title=f"Shared {prefix:,}-token prefix is below the {minimum:,}-token cache minimum on {unit.model_id} / "
        f"{unit.feature}",
        severity=_severity(savings, unit.stats["cost"]) if savings > 0 else "info",
        savings_usd=usd(savings) or 0.0,
        affected_requests=below.height,
        recommendation=advice,
        scope=unit.scope(),
        evidence={
            **evidence,
            "requests_below_minimum": below.height,
            "shared_prefix_tokens_median": prefix,
            "min_tokens": minimum,
            "savings_if_padded_usd": usd(savings),
            "counted_in_lever_savings": False,
        },
    )


def _measured_findings(unit: Unit, m: dict[str, Any], evidence: dict[str, Any], threshold: float) -> list[Finding]:
    findings = []
    wasted = float(m.get("wasted_premium") or 0.0)
    cost = unit.stats["cost"]
    if wasted > 0 and wasted >= threshold:
        findings.append(
            Finding(
                code="LA105",
                lever=LEVER_ID,
                title=f"Cache writes never read on {unit.model_id} / {unit.feature}",
                severity=_severity(wasted, cost),
                savings_usd=usd(wasted) or 0.0,
                affected_requests=int(m.get("never_read_requests") or 0),
                recommendation="Remove or move the cache breakpoint: these writes pay the premium and no later "
                "request of the session reads them.",
                scope=unit.scope(),
                evidence={**evidence, "writes_never_read_tokens": m.get("never_read_tokens", 0)},
            )
        )
    gain = float(m.get("ttl_1h_savings") or 0.0)
    if m.get("ttl_gap_misses") and gain > 0 and gain >= threshold:
        findings.append(
            Finding(
                code="LA104",
                lever=LEVER_ID,
                title=f"Session gaps exceed the {_ttl_name(unit.rules.ttl(0))} cache TTL on {unit.model_id} / "
                f"{unit.feature}",
                severity=_severity(gain, cost),
                savings_usd=usd(gain) or 0.0,
                affected_requests=int(m["ttl_gap_misses"]),
                recommendation=f"Use the {_ttl_name(unit.rules.ttl(1))} TTL for this feature.",
                scope=unit.scope(),
                evidence={
                    **evidence,
                    "ttl_gap_missed_tokens": m.get("ttl_gap_missed_tokens", 0),
                    "median_gap_s": m.get("median_gap_s"),
                    "counted_in_lever_savings": False,
                },
            )
        )
    return findings


# ---------------------------------------------------------------------------------------------- data gap


def _text_gap(work: pl.DataFrame, table: pl.DataFrame) -> tuple[list[Gap], list[Finding]]:
    """LA801: requests of cacheable models logged without prompt text; at stake = their input if fully cached."""
    missing = work.filter(~HAS_TEXT)
    if missing.height == 0:
        return [], []
    at_stake = float(missing.select((-pl.col("input_tokens") * pl.col("d_read")).sum()).item() or 0.0)
    note = (
        "Without prompt text the lever reports realized hit rates, write/read spend, TTL-gap misses and writes "
        "never read, but cannot say where prefixes diverge or what restructuring would save."
    )
    gap = Gap(
        lever=LEVER_ID,
        missing_fields=["prompt_text"],
        requests=missing.height,
        cost_at_stake_usd=usd(at_stake) or 0.0,
        note=note,
    )
    finding = Finding(
        code="LA801",
        lever="data",
        title=f"Prompt text not logged for {missing.height:,} requests: caching can be measured, not simulated",
        severity="info",
        savings_usd=0.0,
        affected_requests=missing.height,
        recommendation="Log the rendered prompt (or a prefix fingerprint: a hash chain over tools, system and "
        "messages) with each request.",
        evidence={
            "cost_at_stake_usd": usd(at_stake),
            "input_tokens": int(missing["input_tokens"].sum()),
            "models": sorted(table["model_id"].gather(missing["unit"]).unique().to_list())[:10],
        },
    )
    return [gap], [finding]
