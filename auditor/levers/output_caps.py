"""output_caps lever (LA3xx): output tokens the feature does not need.

Requests are grouped by feature (or, when no feature is logged, by system prompt) and model. Per group the
lever measures the output-token distribution (p50/p90/p95/p99, quantiles taken as the next observed value),
the share of requests sent without `max_tokens`, the truncation rate and the reasoning-token share, and
prices three changes on a copy of the rows (`PriceBook.cost`), applied in this order within a request:

1. lower reasoning effort (LA304), where reasoning dominates short visible answers: reasoning tokens shrink
   by `reasoning_cut` (a heuristic share, 0.25 / 0.5 / 0.75 for the pessimistic / expected / optimistic case);
2. structured output (LA301), where answers are JSON wrapped in prose or markdown fences: the wrapper's share
   of the text's characters is taken off the visible output tokens;
3. a cap at the group's own percentile (LA301, or LA302 for requests sent without any cap) where outputs run
   far past the typical length: p90 expected, p95 pessimistic, p75 optimistic, and never below the longest
   truncated output (those requests already needed more). Reasoning inside a capped output shrinks in
   proportion: the cap counts reasoning tokens too.

Truncation (LA303) is a quality problem in the other direction and saves nothing. Shorter answers are a quality
assumption, so the confidence is `heuristic`. Only successful, priced requests are changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
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
from auditor.levers.options import reject_unknown
from auditor.redact import excerpt
from auditor.reduce import ensure_reduced
from auditor.report import Finding, Gap, usd
from auditor.schema import TOKEN_COLUMNS

LEVER_ID = "output_caps"
_OPT = f"levers.{LEVER_ID}"
_CASES = ("expected", "low", "high")  # low = least savings (pessimistic), high = most savings
_JSON_FORMATS = ("json_object", "json_schema")
_MONEY = pl.Decimal(38, 12)
_WRAPPER = f"_{LEVER_ID}_json_wrapper"  # the feature: see json_wrapper()
# What a repriced request keeps (_targets): PriceBook.cost's inputs and the cap's. Not output_text, a head per
# request (~0.25 KB): group_stats looks up the longest answer of each group only.
_KEPT: tuple[str, ...] = ("row_id", "timestamp", "model_id", *TOKEN_COLUMNS, "batch", "service_tier", "status")
_KEPT += ("cost_usd", "max_tokens", _WRAPPER)


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class OutputCapOptions:
    min_requests: int = 20  # successful requests a group needs before its distribution is trusted
    cap_percentile: float = 0.90  # the proposed cap: this quantile of the group's output tokens
    cap_percentile_low: float = 0.95  # pessimistic case (a looser cap)
    cap_percentile_high: float = 0.75  # optimistic case (a tighter cap)
    tail_ratio: float = 3.0  # LA301 when p99 >= tail_ratio x p50
    no_cap_share: float = 0.5  # LA302 when at least this share of requests has no max_tokens ...
    no_cap_min_requests: int = 100  # ... in a group with at least this many requests (high volume)
    truncation_rate: float = 0.02  # LA303 when at least this share of requests stops at the cap ...
    truncation_min_requests: int = 3  # ... and at least this many do
    reasoning_share: float = 0.6  # LA304 when reasoning is at least this share of output tokens ...
    simple_output_tokens: int = 200  # ... and the median visible answer is at most this long
    reasoning_cut: float = 0.5  # share of reasoning tokens a lower effort saves (expected)
    reasoning_cut_low: float = 0.25
    reasoning_cut_high: float = 0.75
    json_share: float = 0.8  # structured output when at least this share of answers is JSON-like ...
    json_wrapper_share: float = 0.05  # ... and the wrapping text is at least this share of visible output

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> OutputCapOptions:
        known = {f.name: f for f in fields(cls)}
        reject_unknown(raw, known, _OPT)
        values: dict[str, Any] = {}
        defaults = cls()
        for name in known:
            value = raw.get(name, getattr(defaults, name))
            is_int = isinstance(getattr(defaults, name), int)
            if isinstance(value, bool) or not isinstance(value, int if is_int else int | float) or value < 0:
                kind = "a whole number >= 0" if is_int else "a number >= 0"
                raise ConfigError(f"{_OPT}.{name} must be {kind}")
            if not is_int and name != "tail_ratio" and value > 1:
                raise ConfigError(f"{_OPT}.{name} must be between 0 and 1")
            values[name] = value if is_int else float(value)
        opts = cls(**values)
        if not opts.cap_percentile_high <= opts.cap_percentile <= opts.cap_percentile_low:
            raise ConfigError(f"{_OPT}: need cap_percentile_high <= cap_percentile <= cap_percentile_low")
        if not opts.reasoning_cut_low <= opts.reasoning_cut <= opts.reasoning_cut_high:
            raise ConfigError(f"{_OPT}: need reasoning_cut_low <= reasoning_cut <= reasoning_cut_high")
        return opts

    def percentile(self, case: str) -> float:
        return {"expected": self.cap_percentile, "low": self.cap_percentile_low, "high": self.cap_percentile_high}[case]

    def cut(self, case: str) -> float:
        return {"expected": self.reasoning_cut, "low": self.reasoning_cut_low, "high": self.reasoning_cut_high}[case]


# ---------------------------------------------------------------------------------------------- measurement


def json_wrapper(frame: pl.DataFrame) -> pl.Series:
    """Per request, from the full output text: the share of its characters around a JSON answer (prose or
    markdown fences), null when the answer is not JSON-like or the request asked for structured output."""
    text = pl.col("output_text").str.strip_chars()
    core = text.str.extract(r"(?s)(\{.*\}|\[.*\])", 1)
    json_like = (
        core.is_not_null()
        & core.str.contains(r'"\s*:')
        & ~pl.col("response_format").fill_null("text").is_in(list(_JSON_FORMATS))
    ).fill_null(False)
    share = pl.when(json_like).then(1.0 - core.str.len_chars() / text.str.len_chars())
    return frame.select(share.alias(_WRAPPER)).to_series()


# Per-request values, as expressions over the lever's frame: evaluated inside the aggregation, or for the rows
# repriced, never kept as columns of a full-height copy.
_OK = (pl.col("status").fill_null("ok") != "error") & pl.col("output_tokens").is_not_null()
_REASONING = pl.col("reasoning_tokens").fill_null(0).clip(0, pl.col("output_tokens"))
_VISIBLE = pl.col("output_tokens") - _REASONING
_TRUNCATED = (
    (pl.col("finish_reason") == "length")
    .fill_null(pl.col("max_tokens").is_not_null() & (pl.col("output_tokens") >= pl.col("max_tokens")))
    .fill_null(False)
)
_JSON = pl.col(_WRAPPER).is_not_null()
_WRAPPER_SHARE = pl.col(_WRAPPER).fill_null(0.0)


@dataclass(frozen=True)
class Groups:
    """Each request's (group, model) as one integer code: the group is the feature, else "system prompt " + the
    system hash's first 12 characters; the model is model_id, else model. Codes are looked up from the distinct
    Categorical ids and system hashes, not from a label string built per request (a view and its bytes per row,
    then a row encoding to group by); keys with the same labels share a code, as grouping by the labels would."""

    code: pl.Series  # per request; null for requests not analysed (failed, no output count, no group or model)
    groups: list[str]  # group labels, sorted; code = group index * len(models) + model index
    models: list[str]

    def labels(self, codes: pl.Series) -> pl.DataFrame:
        """`_group` and `_model` of these codes."""
        n = len(self.models)
        return pl.DataFrame(
            {
                "_group": pl.Series(self.groups, dtype=pl.String).gather((codes // n).cast(pl.Int64)),
                "_model": pl.Series(self.models, dtype=pl.String).gather((codes % n).cast(pl.Int64)),
            }
        )


def _distinct(lazy: pl.LazyFrame, column: str, where: pl.Expr | None = None) -> pl.Series:
    rows = lazy if where is None else lazy.filter(where)
    return rows.select(pl.col(column).unique().drop_nulls()).collect().to_series()


def _lookup(column: str, keys: pl.Series, labels: list[str], index: dict[str, int]) -> pl.Expr:
    """The label index of `column`'s value per row (Categorical columns by their ids)."""
    categorical = keys.dtype == pl.Categorical
    values = pl.col(column).to_physical() if categorical else pl.col(column)
    old = keys.to_physical() if categorical else keys
    return values.replace_strict(old, [index[label] for label in labels], default=None, return_dtype=pl.UInt64)


def group_codes(frame: pl.DataFrame) -> Groups:
    """The Groups of the frame's requests, from the distinct values of its key columns."""
    lazy = frame.lazy().filter(_OK)
    has_feature, has_model_id = pl.col("feature").is_not_null(), pl.col("model_id").is_not_null()
    features = _distinct(lazy, "feature")
    systems = _distinct(lazy, "system_hash", ~has_feature)
    model_ids = _distinct(lazy, "model_id")
    models = _distinct(lazy, "model", ~has_model_id)
    feature_labels = features.cast(pl.String).to_list()
    system_labels = ("system prompt " + systems.str.slice(0, 12)).to_list()
    model_id_labels, model_labels = model_ids.cast(pl.String).to_list(), models.cast(pl.String).to_list()
    group_names = sorted({*feature_labels, *system_labels})
    model_names = sorted({*model_id_labels, *model_labels})
    g_index = {label: i for i, label in enumerate(group_names)}
    m_index = {label: i for i, label in enumerate(model_names)}
    by_system = _lookup("system_hash", systems, system_labels, g_index) if systems.len() else None
    group = pl.when(has_feature).then(_lookup("feature", features, feature_labels, g_index)).otherwise(by_system)
    by_model = _lookup("model", models, model_labels, m_index) if models.len() else None
    model = pl.when(has_model_id).then(_lookup("model_id", model_ids, model_id_labels, m_index)).otherwise(by_model)
    dtype = pl.UInt32 if len(group_names) * len(model_names) < 2**32 else pl.UInt64
    code = pl.when(_OK).then(group * len(model_names) + model).cast(dtype).alias("_code")
    return Groups(frame.select(code).to_series(), group_names, model_names)


def _quantile(q: float) -> pl.Expr:
    return pl.col("output_tokens").quantile(q, interpolation="higher")


def group_stats(
    frame: pl.DataFrame, groups: Groups, opts: OutputCapOptions, texts: Callable[[pl.Series], pl.DataFrame]
) -> pl.DataFrame:
    """One row per (group, model): distribution, cap candidates and which findings apply. `texts` gives the
    output_text head of some row_ids (fetch_rows): only the longest answer of each group is looked up."""
    out = pl.col("output_tokens")
    longest_truncated = out.filter(_TRUNCATED).max().fill_null(0)
    # Grouped by code over the whole frame (requests not analysed fall in the null group, dropped after): a filter
    # first would copy every column the aggregation reads.
    stats = (
        frame.lazy()
        .with_columns(groups.code)
        .group_by("_code")
        .agg(
            pl.len().alias("requests"),
            *(_quantile(q).alias(f"p{round(q * 100)}") for q in (0.5, 0.9, 0.95, 0.99)),
            out.max().alias("max"),
            *(pl.max_horizontal(_quantile(opts.percentile(c)), longest_truncated).alias(f"cap_{c}") for c in _CASES),
            pl.col("max_tokens").is_null().mean().alias("uncapped_share"),
            _TRUNCATED.sum().alias("truncated"),
            pl.col("cost_usd").filter(_TRUNCATED).sum().alias("truncated_cost"),
            pl.col("max_tokens").drop_nulls().mode().sort().head(3).alias("max_tokens_common"),
            _REASONING.sum().alias("reasoning_tokens"),
            out.sum().alias("output_tokens"),
            _VISIBLE.quantile(0.5, interpolation="higher").alias("visible_p50"),
            _JSON.mean().alias("json_share"),
            (_VISIBLE * _WRAPPER_SHARE).sum().alias("wrapper_tokens"),
            _VISIBLE.sum().alias("visible_tokens"),
            pl.col("cost_usd").sum().alias("cost_usd"),
            pl.col("row_id").sort_by(out, descending=True).first().alias("longest_text"),
        )
        .collect()
        .drop_nulls("_code")  # eager: pushed into the lazy query, the filter would run before the grouping
    )
    stats = pl.concat([stats, groups.labels(stats["_code"])], how="horizontal")
    longest = texts(stats["longest_text"].drop_nulls().unique())
    text = pl.col("longest_text").replace_strict(
        longest["row_id"], longest["output_text"], default=None, return_dtype=pl.String
    )
    stats = stats.with_columns(text)
    n = pl.col("requests")
    eligible = n >= opts.min_requests
    reasoning_share = pl.when(pl.col("output_tokens") > 0).then(pl.col("reasoning_tokens") / pl.col("output_tokens"))
    wrapper_share = pl.when(pl.col("visible_tokens") > 0).then(pl.col("wrapper_tokens") / pl.col("visible_tokens"))
    return stats.with_columns(
        reasoning_share.fill_null(0.0).alias("reasoning_share"),
        wrapper_share.fill_null(0.0).alias("wrapper_share"),
        (pl.col("truncated") / n).alias("truncation_rate"),
        (eligible & (pl.col("p50") > 0) & (pl.col("p99") >= opts.tail_ratio * pl.col("p50"))).alias("long_tail"),
        (eligible & (n >= opts.no_cap_min_requests) & (pl.col("uncapped_share") >= opts.no_cap_share)).alias("no_cap"),
        (
            (pl.col("truncated") >= max(opts.truncation_min_requests, 1))
            & (pl.col("truncated") / n >= opts.truncation_rate)
        ).alias("truncating"),
        (
            eligible
            & (reasoning_share.fill_null(0.0) >= opts.reasoning_share)
            & (pl.col("visible_p50") <= opts.simple_output_tokens)
        ).alias("reasoning_heavy"),
        (
            eligible
            & (pl.col("json_share") >= opts.json_share)
            & (wrapper_share.fill_null(0.0) >= opts.json_wrapper_share)
        ).alias("json_wrapped"),
    ).sort("_group", "_model")


# ---------------------------------------------------------------------------------------------- counterfactual


def _targets(frame: pl.DataFrame, groups: Groups, stats: pl.DataFrame, opts: OutputCapOptions) -> pl.DataFrame:
    """The priced requests of groups with a finding that shortens outputs, with what repricing them needs. Only
    rows the optimistic case shortens: it shortens every output at least as much as the others, so the rows it
    leaves alone are unchanged in every case and need no repricing."""
    flags = ["long_tail", "json_wrapped", "reasoning_heavy"]
    acting = stats.filter(pl.any_horizontal(flags)).select("_code", *flags, *(f"cap_{c}" for c in _CASES))
    candidates = (
        frame.lazy()
        .with_columns(groups.code)
        .filter(pl.col("_code").is_in(acting["_code"].implode()) & pl.col("cost_usd").is_not_null())
        .select(
            *(c for c in _KEPT if c in frame.columns),
            "_code",
            _REASONING.alias("_reasoning"),
            _VISIBLE.alias("_visible"),
            _JSON.alias("_json"),
            _WRAPPER_SHARE.alias("_wrapper"),
        )
        .join(acting.lazy(), on="_code", how="left", maintain_order="left")
        .collect()
    )
    return candidates.filter(_stages(candidates, opts, "high")["_o3"] < candidates["output_tokens"])


def _stages(rows: pl.DataFrame, opts: OutputCapOptions, case: str) -> pl.DataFrame:
    """Output and reasoning tokens after each stage (r: reasoning, j: structured output, c: cap)."""
    out, reasoning = pl.col("output_tokens"), pl.col("_reasoning")
    r1 = pl.when(pl.col("reasoning_heavy")).then((reasoning * (1 - opts.cut(case))).floor().cast(pl.Int64))
    rows = rows.with_columns(r1.otherwise(reasoning).alias("_r1"))
    rows = rows.with_columns((out - reasoning + pl.col("_r1")).alias("_o1"))
    trim = (pl.col("_visible") * pl.col("_wrapper")).floor().cast(pl.Int64)
    rows = rows.with_columns(
        pl.when(pl.col("json_wrapped") & pl.col("_json"))
        .then(pl.col("_o1") - trim)
        .otherwise(pl.col("_o1"))
        .alias("_o2")
    )
    cap = pl.col(f"cap_{case}")
    o3 = pl.when(pl.col("long_tail")).then(pl.min_horizontal(pl.col("_o2"), cap)).otherwise(pl.col("_o2"))
    rows = rows.with_columns(o3.alias("_o3"))
    r3 = pl.when(pl.col("_o2") > 0).then((pl.col("_r1") * pl.col("_o3") / pl.col("_o2")).floor().cast(pl.Int64))
    return rows.with_columns(r3.otherwise(0).alias("_r3"))


def _price(rows: pl.DataFrame, ctx: LeverContext, output: str, reasoning: str) -> pl.Series:
    changed = rows.with_columns(pl.col(output).alias("output_tokens"), pl.col(reasoning).alias("reasoning_tokens"))
    return ctx.prices.cost(changed, price_date=ctx.price_date)


def _priced_stages(rows: pl.DataFrame, ctx: LeverContext, opts: OutputCapOptions) -> pl.DataFrame:
    """row_id plus the cost after each stage per case (clamped to the logged cost: a lever never adds cost)."""
    result = rows.select("row_id", "_code", "max_tokens", "cost_usd")
    for case in _CASES:
        staged = _stages(rows, opts, case)
        for stage, (o, r) in {"1": ("_o1", "_r1"), "2": ("_o2", "_r1"), "3": ("_o3", "_r3")}.items():
            if case != "expected" and stage != "3":
                continue  # findings are split by stage only in the expected case
            cost = _price(staged, ctx, o, r).cast(_MONEY)
            result = result.with_columns(
                pl.when(cost < pl.col("cost_usd")).then(cost).otherwise(pl.col("cost_usd")).alias(f"_{case}{stage}")
            )
        result = result.with_columns(staged["_o3"].alias(f"_out_{case}"))
    return result


# ---------------------------------------------------------------------------------------------- findings


def _distribution(g: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": int(g["requests"]),
        "output_tokens_p50": int(g["p50"]),
        "output_tokens_p90": int(g["p90"]),
        "output_tokens_p95": int(g["p95"]),
        "output_tokens_p99": int(g["p99"]),
        "output_tokens_max": int(g["max"]),
        "uncapped_share": round(float(g["uncapped_share"]), 4),
        "truncation_rate": round(float(g["truncation_rate"]), 4),
        "reasoning_share": round(float(g["reasoning_share"]), 4),
    }


def _group_findings(g: dict[str, Any], s: dict[str, Any], total: Decimal) -> list[Finding]:
    """Findings for one group; `s` holds its expected savings per stage (reasoning, json, cap_capped, cap_uncapped)."""
    scope = {"feature": g["_group"], "model": g["_model"]}
    dist = _distribution(g)
    where = f"{g['_group']} on {g['_model']}"
    findings: list[Finding] = []
    cap_note = {"proposed_cap": int(g["cap_expected"]), "cap_range": [int(g["cap_high"]), int(g["cap_low"])]}
    if g["long_tail"] or g["json_wrapped"]:
        savings = s["json"] + s["cap_capped"] + (0 if g["no_cap"] else s["cap_uncapped"])
        if g["long_tail"]:
            title = (
                f"Outputs of {where} run far past their typical length "
                f"(p50 {int(g['p50']):,}, p99 {int(g['p99']):,} tokens)"
            )
        else:
            title = f"JSON answers of {where} carry {g['wrapper_share']:.0%} prose or markdown around the JSON"
        findings.append(
            Finding(
                code="LA301",
                lever=LEVER_ID,
                title=title,
                severity=severity(savings, total),
                savings_usd=usd(savings) or 0.0,
                affected_requests=int(s["n_301_capped"] if g["no_cap"] else s["n_301_all"]),
                recommendation=" ".join(
                    (
                        [
                            f"Set max_tokens to about {int(g['cap_expected']):,} for this feature and ask for concise "
                            "answers in the prompt."
                        ]
                        if g["long_tail"]
                        else []
                    )
                    + (
                        [
                            "Use structured output (json_schema) so the model returns only the JSON object, without "
                            "prose or markdown fences."
                        ]
                        if g["json_wrapped"]
                        else []
                    )
                ),
                scope=scope,
                evidence={
                    **dist,
                    **(cap_note if g["long_tail"] else {}),
                    "requests_above_cap": int(s["n_cap"]),
                    "json_answer_share": round(float(g["json_share"]), 4),
                    "json_wrapper_share": round(float(g["wrapper_share"]), 4),
                    "savings_from_cap_usd": usd(s["cap_capped"] + (0 if g["no_cap"] else s["cap_uncapped"])),
                    "savings_from_structured_output_usd": usd(s["json"]),
                    **({"longest_output_excerpt": excerpt(g["longest_text"], 100)} if g["longest_text"] else {}),
                },
            )
        )
    if g["no_cap"]:
        savings = s["cap_uncapped"]
        findings.append(
            Finding(
                code="LA302",
                lever=LEVER_ID,
                title=f"{dist['uncapped_share']:.0%} of {int(g['requests']):,} requests to {where} have no max_tokens",
                severity=severity(savings, total),
                savings_usd=usd(savings) or 0.0,
                affected_requests=round(g["uncapped_share"] * g["requests"]),
                recommendation=(
                    f"Send max_tokens on every request of this feature (about {int(g['cap_expected']):,}, its p90, "
                    "or at least a guardrail above its longest legitimate answer) so a runaway generation cannot "
                    "bill the model's full output limit."
                ),
                scope=scope,
                evidence={**dist, **cap_note, "long_tail": bool(g["long_tail"])},
            )
        )
    if g["truncating"]:
        findings.append(
            Finding(
                code="LA303",
                lever=LEVER_ID,
                title=f"max_tokens truncates {dist['truncation_rate']:.1%} of answers of {where}",
                severity="medium" if g["truncation_rate"] >= 0.10 else "low",
                savings_usd=0.0,
                affected_requests=int(g["truncated"]),
                recommendation=(
                    "Raise max_tokens for this feature above what its answers need, or ask for shorter answers; "
                    "truncated answers are often unusable and get retried."
                ),
                scope=scope,
                evidence={
                    **dist,
                    "truncated_requests": int(g["truncated"]),
                    "common_max_tokens": [int(v) for v in g["max_tokens_common"]],
                    "truncated_cost_usd": usd(s["truncated_cost"]),
                },
            )
        )
    if g["reasoning_heavy"]:
        findings.append(
            Finding(
                code="LA304",
                lever=LEVER_ID,
                title=(
                    f"Reasoning is {g['reasoning_share']:.0%} of output tokens for {where}, "
                    f"whose answers are short (p50 {int(g['visible_p50']):,} visible tokens)"
                ),
                severity=severity(s["reasoning"], total),
                savings_usd=usd(s["reasoning"]) or 0.0,
                affected_requests=int(s["n_reasoning"]),
                recommendation=(
                    "Lower the reasoning effort (or thinking budget) for this feature, or route it to a "
                    "non-reasoning model; check answer quality on a sample first."
                ),
                scope=scope,
                evidence={
                    **dist,
                    "visible_output_p50": int(g["visible_p50"]),
                    "reasoning_tokens": int(g["reasoning_tokens"]),
                },
            )
        )
    return findings


def _stage_savings(priced: pl.DataFrame) -> pl.DataFrame:
    """Per group: expected savings of each stage, the capped/uncapped split and counts."""
    cost = pl.col("cost_usd")
    uncapped = pl.col("max_tokens").is_null()
    cap_saving = pl.col("_expected2") - pl.col("_expected3")
    json_saving = pl.col("_expected1") - pl.col("_expected2")
    return priced.group_by("_code").agg(
        (cost - pl.col("_expected1")).sum().alias("reasoning"),
        json_saving.sum().alias("json"),
        cap_saving.filter(~uncapped).sum().alias("cap_capped"),
        cap_saving.filter(uncapped).sum().alias("cap_uncapped"),
        ((json_saving > 0) | ((cap_saving > 0) & ~uncapped)).sum().alias("n_301_capped"),
        ((json_saving > 0) | (cap_saving > 0)).sum().alias("n_301_all"),
        (cap_saving > 0).sum().alias("n_cap"),
        ((cost - pl.col("_expected1")) > 0).sum().alias("n_reasoning"),
    )


class OutputCapsLever:
    id = LEVER_ID
    title = "Output caps, structured output and reasoning effort"
    reads: tuple[str, ...] = ("system_hash", "max_tokens", "finish_reason")  # output_text heads: fetch_rows

    def check_options(self, options: dict[str, Any]) -> None:
        OutputCapOptions.parse(dict(options))

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return json_wrapper(chunk).to_frame()

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        opts = OutputCapOptions.parse(ctx.options)
        frame = ensure_reduced(frame, self, ctx.options)  # output_text is a head: only the longest excerpt
        result = LeverResult(
            lever_id=LEVER_ID,
            title=self.title,
            confidence="heuristic",
            counterfactual=empty_counterfactual(),
            assumptions=[
                f"A feature's answers fit in its own p{round(opts.cap_percentile * 100)} output length "
                f"(range p{round(opts.cap_percentile_low * 100)}–p{round(opts.cap_percentile_high * 100)}) when "
                "asked for concise output; the cap never goes below the longest truncated answer.",
                "A capped output's reasoning tokens shrink in proportion to the output.",
                f"Lower reasoning effort removes {opts.reasoning_cut:.0%} of reasoning tokens "
                f"(range {opts.reasoning_cut_low:.0%}–{opts.reasoning_cut_high:.0%}) where answers are short.",
                "Structured output removes the prose and markdown around JSON answers (share of characters).",
            ],
            method="Per feature and model, output tokens are reduced on a copy of the requests (lower reasoning, "
            "then structured output, then the cap) and repriced with the same price tables.",
        )
        groups = group_codes(frame)
        result.gaps = self._gaps(frame)
        if groups.code.null_count() == groups.code.len():
            return result
        stats = group_stats(frame, groups, opts, lambda ids: fetch_rows(frame, ctx, ids, ("output_text",)))
        priced = _priced_stages(_targets(frame, groups, stats, opts), ctx, opts)
        del groups  # its code column is full height: free it before the findings
        touched = priced.filter(pl.any_horizontal(pl.col(f"_{c}3") < pl.col("cost_usd") for c in _CASES))
        if touched.height:
            result.counterfactual = counterfactual_frame(
                touched["row_id"], touched["_expected3"], touched["_low3"], touched["_high3"]
            )
        per_group = {r["_code"]: r for r in _stage_savings(priced).iter_rows(named=True)}
        total = total_cost(frame)
        empty = {
            "reasoning": 0,
            "json": 0,
            "cap_capped": 0,
            "cap_uncapped": 0,
            "n_cap": 0,
            "n_301_capped": 0,
            "n_301_all": 0,
            "n_reasoning": 0,
        }
        flags = ["long_tail", "json_wrapped", "reasoning_heavy", "no_cap", "truncating"]
        for g in stats.filter(pl.any_horizontal(flags)).iter_rows(named=True):
            s = {
                k: dec(v) if not k.startswith("n_") else int(v or 0)
                for k, v in (per_group.get(g["_code"]) or empty).items()
                if k != "_code"
            }
            s["truncated_cost"] = dec(g["truncated_cost"])
            result.findings.extend(_group_findings(g, s, total))
        return result

    @staticmethod
    def _gaps(frame: pl.DataFrame) -> list[Gap]:
        unkeyed = pl.col("feature").is_null() & pl.col("system_hash").is_null() & pl.col("output_tokens").is_not_null()
        # the count and cost only: filtering the frame would copy every column of those rows
        requests, cost = frame.select(unkeyed.sum(), pl.col("cost_usd").filter(unkeyed).sum()).row(0)
        if requests == 0:
            return []
        return [
            Gap(
                lever=LEVER_ID,
                missing_fields=["feature", "system_hash"],
                requests=requests,
                cost_at_stake_usd=usd(dec(cost)) or 0.0,
                note="requests with neither a feature nor a system prompt cannot be grouped into one task, "
                "so no cap can be proposed for them",
            )
        ]


LEVER = OutputCapsLever()
