"""Task-family classifier: what kind of work each request asks for, from signals already in the log.

Deterministic and explainable. Each request gets one family from an ordered decision list (first rule
that matches wins) and the names of the signals that made that rule match, e.g.
`classification <- kw_classify,enum_output`. Everything is a polars expression (regex on a bounded slice
of the text columns), so a million rows classify in one pass.

Families: classification, extraction, short_answer, summarization, generation, code, reasoning
(multi-step reasoning / agentic), unknown (no text and no output length: nothing to judge).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TypeVar

import polars as pl

CLASSIFICATION = "classification"
EXTRACTION = "extraction"
SHORT_ANSWER = "short_answer"
SUMMARIZATION = "summarization"
GENERATION = "generation"
CODE = "code"
REASONING = "reasoning"  # multi-step reasoning / agentic (tools)
UNKNOWN = "unknown"

FAMILIES: tuple[str, ...] = (
    CLASSIFICATION,
    EXTRACTION,
    SHORT_ANSWER,
    SUMMARIZATION,
    GENERATION,
    CODE,
    REASONING,
    UNKNOWN,
)
# The "simple" work: what a small model usually does as well as a premium one.
DEFAULT_SIMPLE_FAMILIES: tuple[str, ...] = (CLASSIFICATION, EXTRACTION, SHORT_ANSWER)

# Visible output lengths (output minus reasoning tokens) that characterise the answer.
ENUM_MAX_TOKENS = 10  # a label, a yes/no, a tiny JSON like {"category": "billing"}
SHORT_MAX_TOKENS = 100
LONG_MIN_TOKENS = 800
LONG_INPUT_TOKENS = 2000  # a short answer over a long document is reading work, not a quick answer
COMPRESSION_RATIO = 4  # input at least 4x the output: the model condenses or picks out
# Instructions live at the start of the system prompt and of the user turn; the rest is data (a ticket
# that mentions "python" is not a coding task), and bounding the slice keeps 1M rows fast.
SYSTEM_SLICE = 2000
USER_SLICE = 300
OUTPUT_SLICE = 2000

_INSTRUCTIONS, _OUTPUT = "_la_instructions", "_la_output"
# Lower-case patterns over lower-cased text; (?-u:\b) is an ASCII word boundary, much faster than Unicode's.
_KW_CLASSIFY = (
    r"(?-u:\b)(classif(y|ies|ied|ication)|categori[sz](e|ation)|categor(y|ies)|label(s|ing)?|sentiment|intent|"
    r"triage|one of the following|respond with (only|one|just|a single)|answer (only )?(with )?(yes|no)|"
    r"yes or no|true or false|which (category|label|class))(?-u:\b)"
)
_KW_EXTRACT = (
    r"(?-u:\b)(extract(ion)?|parse|pull out|named entit(y|ies)|entities|key[- ]value|fill (in|out) the|"
    r"reformat|convert (this|the|it|to)|normali[sz]e|as json|to json|json object|fields?)(?-u:\b)"
)
_KW_SUMMARIZE = r"(?-u:\b)(summari[sz](e|ation)|summary|tl;?dr|condense|key points|main points|recap)(?-u:\b)"
_KW_REASON = (
    r"(?-u:\b)(step[- ]by[- ]step|think (carefully|through|it through)|reason (about|through)|chain of thought|"
    r"multi[- ]step|analy[sz]e|prove|derive|solve|root cause|trade-?offs|plan (the|a|your))(?-u:\b)"
)
_KW_CODE = (
    r"(```|(?-u:\b)(source code|code (review|snippet|block)|write (a |the )?(function|script|program|class|query|test)|"
    r"refactor|debug|stack ?trace|unit tests?|implement (a|the)|python|javascript|typescript|golang|sql)(?-u:\b))"
)
_CODE_OUTPUT = (
    r"(?m)(```|^\s*(def \w+\(|class \w+[(:{]|from [\w.]+ import |import [\w.]+$|function \w+\(|const \w+ = |"
    r"#include |SELECT .+ FROM ))"
)


def _visible_output() -> pl.Expr:
    return pl.col("output_tokens") - pl.col("reasoning_tokens").fill_null(0)


def _text_exprs() -> list[pl.Expr]:
    """The text the keyword signals read, computed once (lower-cased, so the regexes need no (?i))."""
    system = pl.col("system_text").str.slice(0, SYSTEM_SLICE)
    user = pl.col("last_user_text").str.slice(0, USER_SLICE)
    has_parts = pl.col("system_text").is_not_null() | pl.col("last_user_text").is_not_null()
    instructions = (
        pl.when(has_parts)
        .then(pl.concat_str([system.fill_null(""), user.fill_null("")], separator="\n"))
        .otherwise(pl.col("prompt_text").str.slice(0, SYSTEM_SLICE))
    )
    return [
        instructions.str.to_lowercase().alias(_INSTRUCTIONS),
        pl.col("output_text").str.slice(0, OUTPUT_SLICE).alias(_OUTPUT),
    ]


def signal_exprs() -> dict[str, pl.Expr]:
    """Boolean signal per request (null inputs make a signal false, never true); reads _text_exprs()."""
    instructions = pl.col(_INSTRUCTIONS)
    output = pl.col(_OUTPUT)
    visible = _visible_output()
    signals = {
        "kw_classify": instructions.str.contains(_KW_CLASSIFY),
        "kw_extract": instructions.str.contains(_KW_EXTRACT),
        "kw_summarize": instructions.str.contains(_KW_SUMMARIZE),
        "kw_reason": instructions.str.contains(_KW_REASON),
        "kw_code": instructions.str.contains(_KW_CODE),
        "code_output": output.str.contains(_CODE_OUTPUT),
        "json_output": pl.col("response_format").is_in(["json_object", "json_schema"]),
        "enum_output": visible <= ENUM_MAX_TOKENS,
        "short_output": visible <= SHORT_MAX_TOKENS,
        "long_output": visible >= LONG_MIN_TOKENS,
        "compressing": pl.col("input_tokens") >= COMPRESSION_RATIO * visible,
        "long_input": pl.col("input_tokens") >= LONG_INPUT_TOKENS,
        "tools": pl.col("tools_count") > 0,
        "tool_calls": pl.col("finish_reason") == "tool_calls",
        "truncated": pl.col("finish_reason") == "length",
        "low_temperature": pl.col("temperature") <= 0.2,
        "high_temperature": pl.col("temperature") >= 0.8,
        "no_evidence": (
            pl.col("prompt_text").is_null()
            & pl.col("system_text").is_null()
            & pl.col("last_user_text").is_null()
            & pl.col("output_tokens").is_null()
        ),
    }
    return {name: expr.fill_null(False).alias(name) for name, expr in signals.items()}


# (family, all-of, any-of, none-of): a rule matches when every all-of signal is true, at least one any-of
# signal is true (when any-of is given) and no none-of signal is true. Order is the decision order.
_Rule = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
RULES: tuple[_Rule, ...] = (
    (UNKNOWN, ("no_evidence",), (), ()),
    (CLASSIFICATION, ("kw_classify", "enum_output"), (), ()),  # wording plus a label-sized answer
    (REASONING, (), ("tools", "tool_calls"), ()),  # agentic: the model drives tools
    (CODE, (), ("kw_code", "code_output"), ()),
    (REASONING, ("kw_reason",), (), ()),
    (CLASSIFICATION, ("kw_classify",), ("short_output", "json_output"), ()),
    (EXTRACTION, ("kw_extract",), (), ("long_output",)),
    (SUMMARIZATION, ("kw_summarize",), (), ()),
    (EXTRACTION, ("json_output",), (), ("long_output",)),  # structured answer, no wording to go on
    (CLASSIFICATION, ("enum_output", "low_temperature"), (), ()),  # label-sized, deterministic answers
    (SHORT_ANSWER, ("short_output",), (), ("truncated", "long_input")),
    (GENERATION, (), ("long_output", "high_temperature", "truncated", "compressing"), ()),
)
# What the fallback rule cites when no rule matched.
FALLBACK_SIGNAL = "no_simple_signal"


def _rule_condition(rule: _Rule) -> pl.Expr:
    _, all_of, any_of, none_of = rule
    cond = pl.lit(True)
    for name in all_of:
        cond = cond & pl.col(name)
    if any_of:
        cond = cond & pl.any_horizontal([pl.col(name) for name in any_of])
    for name in none_of:
        cond = cond & ~pl.col(name)
    return cond


def _rule_explanation(rule: _Rule) -> pl.Expr:
    """Names of the positive signals of the rule that are true on this row (the ones that set the label)."""
    _, all_of, any_of, _ = rule
    parts = [pl.when(pl.col(name)).then(pl.lit(name)) for name in (*all_of, *any_of)]
    return pl.concat_str(parts, separator=",", ignore_nulls=True)


FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def classify(frame: FrameT) -> FrameT:
    """The frame plus `task_family` and `family_signals` (comma-separated signal names)."""
    signals: dict[str, pl.Expr] = signal_exprs()
    scratch: list[str] = [*signals, _INSTRUCTIONS, _OUTPUT]
    staged = frame.with_columns(_text_exprs()).with_columns(list(signals.values()))
    # coalesce of per-rule whens = the first rule that matches wins
    family = pl.coalesce([pl.when(_rule_condition(r)).then(pl.lit(r[0])) for r in RULES] + [pl.lit(GENERATION)])
    explain = pl.coalesce(
        [pl.when(_rule_condition(r)).then(_rule_explanation(r)) for r in RULES] + [pl.lit(FALLBACK_SIGNAL)]
    )
    return staged.with_columns(family.alias("task_family"), explain.alias("family_signals")).drop(scratch)


def feature_profile(
    classified: pl.DataFrame,
    *,
    simple_families: Iterable[str] = DEFAULT_SIMPLE_FAMILIES,
    stable_share: float = 0.8,
    by: Sequence[str] = ("feature",),
) -> pl.DataFrame:
    """Family mix per feature: requests, dominant family and its share, simple share, stable flag, counts.

    A feature whose dominant family covers at least `stable_share` of its requests is *stable* (strong
    evidence of one kind of work); otherwise it is *mixed* (routing territory).
    """
    keys = list(by)
    simple = list(simple_families)
    counts = classified.group_by([*keys, "task_family"]).agg(pl.len().alias("n"))
    totals = counts.group_by(keys).agg(
        pl.col("n").sum().alias("requests"),
        pl.col("n").filter(pl.col("task_family").is_in(simple)).sum().alias("simple_requests"),
        # ties broken by family name so the result does not depend on group order
        pl.struct("n", "task_family")
        .sort_by([pl.col("n"), pl.col("task_family")], descending=[True, False])
        .first()
        .alias("top"),
        pl.struct("task_family", "n").sort_by("task_family").alias("mix"),
    )
    profile = (
        totals.with_columns(
            pl.col("top").struct.field("task_family").alias("dominant_family"),
            (pl.col("top").struct.field("n") / pl.col("requests")).alias("dominant_share"),
            (pl.col("simple_requests") / pl.col("requests")).alias("simple_share"),
        )
        .with_columns((pl.col("dominant_share") >= stable_share).alias("stable"))
        .drop("top")
        .sort(keys, nulls_last=True)
    )
    # one JSON object per feature (few rows): {"classification": 40, "code": 2}
    families = [json.dumps({m["task_family"]: m["n"] for m in mix}, sort_keys=True) for mix in profile["mix"]]
    return profile.drop("mix").with_columns(pl.Series("families", families, dtype=pl.String))
