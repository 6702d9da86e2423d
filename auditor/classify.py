"""Task-family classifier: what kind of work each request asks for, from signals already in the log.

Deterministic and explainable. Each request gets one family from an ordered decision list (first rule
that matches wins) and the names of the signals that made that rule match, e.g.
`classification <- kw_classify,enum_output`. Everything is a polars expression (regex on a bounded slice
of the text columns), so a million rows classify in one pass. The scan cuts texts at ingest (auditor.reduce):
the tiering lever computes the text signals there (`text_signals`) and classifies the reduced frame from them
(`classify(frame, text_prefix=...)`); `classify(frame)` alone reads the full texts.

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
_CODE_LINE = (
    r"(def \w+\(|class \w+[(:{]|from [\w.]+ import |import [\w.]+$|function \w+\(|const \w+ = |#include |"
    r"SELECT .+ FROM )"
)
_CODE_OUTPUT = r"(?m)(```|^\s*" + _CODE_LINE + ")"  # a fence, or a line of code (after optional blank space)
# The same test, 3x faster: a line starts at the text's start or after "\n"; the regex engine then scans for the
# literal "\n" instead of trying every position. Equal to _CODE_OUTPUT (tests/test_classify.py checks it).
_CODE_AFTER_NEWLINE = r"(?m)(```|\n\s*" + _CODE_LINE + ")"
_CODE_AT_START = r"(?m)\A\s*" + _CODE_LINE


def code_output(text: pl.Expr) -> pl.Expr:
    """Whether `text` matches _CODE_OUTPUT (null when it is null), computed the fast way."""
    return text.str.contains(_CODE_AFTER_NEWLINE) | text.str.contains(_CODE_AT_START)


def _visible_output() -> pl.Expr:
    return pl.col("output_tokens") - pl.col("reasoning_tokens").fill_null(0)


# Signals read from the texts; the rest come from counts and request parameters.
KEYWORD_SIGNALS: dict[str, str] = {
    "kw_classify": _KW_CLASSIFY,
    "kw_extract": _KW_EXTRACT,
    "kw_summarize": _KW_SUMMARIZE,
    "kw_reason": _KW_REASON,
    "kw_code": _KW_CODE,
}
# What a reduced frame (auditor.reduce) must carry instead of the texts: the keyword signals, code_output and
# no_text (no prompt, system or user text logged), computed on the full texts by text_signals().
TEXT_SIGNALS: tuple[str, ...] = (*KEYWORD_SIGNALS, "code_output", "no_text")


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


def _no_text() -> pl.Expr:
    return pl.col("prompt_text").is_null() & pl.col("system_text").is_null() & pl.col("last_user_text").is_null()


def _full_text_signals() -> dict[str, pl.Expr]:
    """TEXT_SIGNALS from the full texts, as expressions over _text_exprs() (works on lazy frames)."""
    instructions = pl.col(_INSTRUCTIONS)
    signals = {name: instructions.str.contains(pattern) for name, pattern in KEYWORD_SIGNALS.items()}
    signals["code_output"] = pl.col(_OUTPUT).str.contains(_CODE_OUTPUT)
    signals["no_text"] = _no_text()
    return signals


def text_signals(frame: pl.DataFrame, prefix: str = "") -> pl.DataFrame:
    """TEXT_SIGNALS of each request from its full texts (same height and order; columns `prefix + name`).

    The same values as classify() computes from the texts, in less time: a keyword pattern never spans a line
    break, so a match in "system\nuser" is a match in the system slice or in the user slice, and the system
    slice is matched once per distinct prompt (a log has few) instead of once per request. The rendered prompt is
    read only for requests without a system or user part.
    """
    system = frame["system_text"].str.slice(0, SYSTEM_SLICE).alias("system")
    distinct = system.drop_nulls().unique().to_frame()
    lowered = pl.col("system").str.to_lowercase()
    per_system = distinct.with_columns(lowered.str.contains(p).alias(n) for n, p in KEYWORD_SIGNALS.items())
    by_system = system.to_frame().join(per_system, on="system", how="left", maintain_order="left")
    no_parts = pl.col("system_text").is_null() & pl.col("last_user_text").is_null()
    read_prompt = bool(frame.select((no_parts & pl.col("prompt_text").is_not_null()).any()).item())
    prompt = pl.when(no_parts).then(pl.col("prompt_text").str.slice(0, SYSTEM_SLICE))
    lowered_texts = frame.select(
        pl.col("last_user_text").str.slice(0, USER_SLICE).str.to_lowercase().alias("_user"),
        *([prompt.str.to_lowercase().alias("_prompt")] if read_prompt else []),
        pl.col("output_text").str.slice(0, OUTPUT_SLICE),
        _no_text().alias("no_text"),
    ).hstack(by_system.drop("system"))
    keywords = []
    for name, pattern in KEYWORD_SIGNALS.items():
        hit = pl.col("_user").str.contains(pattern).fill_null(False) | pl.col(name).fill_null(False)
        if read_prompt:
            hit = hit | pl.col("_prompt").str.contains(pattern).fill_null(False)
        keywords.append(hit.alias(name))
    # one select: polars runs the regexes (most of the time) in parallel
    code = code_output(pl.col("output_text")).fill_null(False).alias("code_output")
    out = lowered_texts.select(*keywords, code, "no_text")
    return out.rename({name: prefix + name for name in out.columns}) if prefix else out


def signal_exprs(text_prefix: str | None = None) -> dict[str, pl.Expr]:
    """Boolean signal per request (null inputs make a signal false, never true).

    Text signals read _text_exprs() on a full frame, or the `text_prefix + name` columns text_signals() made.
    """
    visible = _visible_output()
    text = _full_text_signals() if text_prefix is None else {name: pl.col(text_prefix + name) for name in TEXT_SIGNALS}
    signals = {
        **{name: text[name] for name in KEYWORD_SIGNALS},
        "code_output": text["code_output"],
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
        "no_evidence": text["no_text"] & pl.col("output_tokens").is_null(),
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


def classify(frame: FrameT, text_prefix: str | None = None) -> FrameT:
    """The frame plus `task_family` and `family_signals` (comma-separated signal names).

    Text signals come from the full texts, or, with `text_prefix`, from the columns text_signals() made
    (a reduced frame has no full texts).
    """
    signals: dict[str, pl.Expr] = signal_exprs(text_prefix)
    scratch: list[str] = list(signals)
    if text_prefix is None:
        frame = frame.with_columns(_text_exprs())
        scratch += [_INSTRUCTIONS, _OUTPUT]
    staged = frame.with_columns(list(signals.values()))
    return staged.with_columns(_label_exprs()).drop(scratch)


def _label_exprs() -> list[pl.Expr]:
    """`task_family` and `family_signals` from the signal columns (named as in signal_exprs)."""
    # coalesce of per-rule whens = the first rule that matches wins
    family = pl.coalesce([pl.when(_rule_condition(r)).then(pl.lit(r[0])) for r in RULES] + [pl.lit(GENERATION)])
    explain = pl.coalesce(
        [pl.when(_rule_condition(r)).then(_rule_explanation(r)) for r in RULES] + [pl.lit(FALLBACK_SIGNAL)]
    )
    return [family.alias("task_family"), explain.alias("family_signals")]


def classify_compact(frame: pl.DataFrame, text_prefix: str | None = None) -> pl.DataFrame:
    """classify()'s two labels for each row of `frame` (same height and order), small: `task_family` as an Enum
    of FAMILIES and `family_signals` as a Categorical.

    The labels depend only on the signals, so each row gets its signals packed in a 32-bit code, the rules run
    once per distinct code (a log has a few hundred) and the codes are mapped back: no per-row strings and no
    per-row signal columns (classify() holds both for every row, ~0.2 KB a row at 10M requests).
    """
    signals = signal_exprs(text_prefix)
    names = list(signals)
    packed = pl.sum_horizontal(
        pl.when(expr).then(pl.lit(1 << i, dtype=pl.UInt32)).otherwise(pl.lit(0, dtype=pl.UInt32))
        for i, expr in enumerate(signals.values())
    )
    if text_prefix is None:
        frame = frame.with_columns(_text_exprs())
    codes = frame.lazy().select(packed.alias("_code")).collect().to_series()
    distinct = codes.unique().sort().to_frame()
    unpacked = distinct.with_columns(((pl.col("_code") & (1 << i)) != 0).alias(name) for i, name in enumerate(names))
    labels = unpacked.with_columns(_label_exprs())
    return pl.DataFrame(
        [
            codes.replace_strict(labels["_code"], labels["task_family"], return_dtype=pl.Enum(FAMILIES)).alias(
                "task_family"
            ),
            codes.replace_strict(labels["_code"], labels["family_signals"], return_dtype=pl.Categorical()).alias(
                "family_signals"
            ),
        ]
    )


def feature_profile(
    classified: pl.DataFrame | pl.LazyFrame,
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
    # lazy: an eager group_by over a wide frame takes ~0.2 KB a row more. The labels as strings: an Enum or
    # Categorical label would sort by its physical order below, not by name.
    counts = (
        classified.lazy()
        .group_by([*keys, "task_family"])
        .agg(pl.len().alias("n"))
        .with_columns(pl.col("task_family").cast(pl.String))
        .collect()
    )
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
