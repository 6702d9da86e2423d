"""Task-family classifier: one constructed request per rule of the decision list, with the signals it cites."""

from __future__ import annotations

import json
import random
from typing import Any

import polars as pl
import pytest

from auditor.classify import (
    _CODE_OUTPUT,
    RULES,
    TEXT_SIGNALS,
    _full_text_signals,
    _text_exprs,
    classify,
    code_output,
    feature_profile,
    text_signals,
)
from auditor.schema import rows_to_frame


def one(**row: Any) -> tuple[str, str]:
    out = classify(rows_to_frame([row])).row(0, named=True)
    return out["task_family"], out["family_signals"]


@pytest.mark.parametrize(
    ("row", "family", "signals"),
    [
        # wording + a label-sized answer beats a ticket that mentions python
        (
            {"system_text": "Classify the ticket into one of the following: billing, bug.",
             "last_user_text": "My python script fails", "output_tokens": 2},
            "classification", "kw_classify,enum_output",
        ),
        ({"last_user_text": "Look up the order", "tools_count": 2, "output_tokens": 40}, "reasoning", "tools"),
        ({"last_user_text": "Hi", "finish_reason": "tool_calls", "output_tokens": 30}, "reasoning", "tool_calls"),
        ({"system_text": "Refactor the module below.", "output_tokens": 500}, "code", "kw_code"),
        ({"last_user_text": "Hello", "output_text": "```js\nx()\n```", "output_tokens": 50}, "code", "code_output"),
        ({"system_text": "Think step by step and solve the puzzle.", "output_tokens": 700}, "reasoning", "kw_reason"),
        (
            {"system_text": "Assign a sentiment to the review.", "output_tokens": 60, "response_format": "json_object"},
            "classification", "kw_classify,short_output,json_output",
        ),
        ({"system_text": "Extract the invoice fields.", "output_tokens": 300}, "extraction", "kw_extract"),
        ({"system_text": "Summarize this call transcript.", "output_tokens": 300}, "summarization", "kw_summarize"),
        ({"last_user_text": "Order?", "response_format": "json_schema", "output_tokens": 200}, "extraction",
         "json_output"),
        ({"last_user_text": "Ok?", "output_tokens": 1, "temperature": 0.0}, "classification",
         "enum_output,low_temperature"),
        ({"last_user_text": "What is the capital of France?", "output_tokens": 12}, "short_answer", "short_output"),
        ({"last_user_text": "Write a poem", "output_tokens": 900}, "generation", "long_output"),
        # a short answer over a long document is not "short answer" work
        ({"last_user_text": "Which clause?", "input_tokens": 3000, "output_tokens": 40}, "generation", "compressing"),
        ({"last_user_text": "Tell me more", "output_tokens": 300}, "generation", "no_simple_signal"),
        ({"output_tokens": None}, "unknown", "no_evidence"),
        # reasoning tokens do not count as visible output: 2000 out of which 1995 reasoning is a label
        ({"system_text": "Label the intent.", "output_tokens": 2000, "reasoning_tokens": 1995}, "classification",
         "kw_classify,enum_output"),
        # no system / user parts: the rendered prompt is read instead
        ({"prompt_text": "[user]\nPlease summarise this\n", "output_tokens": 150}, "summarization", "kw_summarize"),
    ],
)  # fmt: skip
def test_rules(row: dict[str, Any], family: str, signals: str) -> None:
    assert one(**row) == (family, signals)


def test_data_in_the_user_turn_past_the_instruction_slice_is_ignored() -> None:
    # the word "refactor" sits after the first 300 characters of the user turn: it is data, not the task
    user = "Reply briefly to this customer. " + "x" * 300 + " they asked us to refactor billing"
    assert one(last_user_text=user, output_tokens=40) == ("short_answer", "short_output")


def test_every_rule_is_reachable() -> None:
    assert len(RULES) == 12  # a new rule needs a case in test_rules


def test_lazy_and_eager_agree() -> None:
    rows = [{"system_text": "Extract the fields.", "output_tokens": 30}, {"output_tokens": 2000}]
    eager = classify(rows_to_frame(rows))
    lazy = classify(rows_to_frame(rows).lazy()).collect()
    assert eager.equals(lazy)
    assert eager["task_family"].to_list() == ["extraction", "generation"]


def test_feature_profile_stable_and_mixed() -> None:
    label = {"system_text": "Classify the ticket.", "output_tokens": 2}
    essay = {"last_user_text": "Write an essay", "output_tokens": 1500}
    rows = [{"feature": "tickets", **label}] * 9 + [{"feature": "tickets", **essay}]
    rows += [{"feature": "chat", **label}] * 3 + [{"feature": "chat", **essay}] * 3
    profile = feature_profile(classify(rows_to_frame(rows)), stable_share=0.8)
    by_feature = {r["feature"]: r for r in profile.iter_rows(named=True)}
    tickets, chat = by_feature["tickets"], by_feature["chat"]
    assert (tickets["requests"], tickets["dominant_family"], tickets["dominant_share"]) == (10, "classification", 0.9)
    assert tickets["stable"] is True and tickets["simple_share"] == 0.9
    assert json.loads(tickets["families"]) == {"classification": 9, "generation": 1}
    # a 3/3 tie: dominant family by name, share 0.5 -> mixed
    assert (chat["dominant_family"], chat["dominant_share"], chat["stable"]) == ("classification", 0.5, False)
    assert profile["feature"].to_list() == ["chat", "tickets"]


def test_classify_scales_as_expressions() -> None:
    # 200k rows in one pass (a per-row Python loop would take many seconds); also checks null-safety
    label = {"system_text": "Classify the ticket.", "output_tokens": 2}
    base = rows_to_frame([label, {"output_tokens": None}, {"input_tokens": 5, "output_tokens": 300}])
    big = base.select(pl.all().gather(pl.int_range(210_000) % 3))  # one chunk, like a real frame
    families = classify(big.lazy()).group_by("task_family").len().collect().sort("task_family")
    assert families.rows() == [("classification", 70_000), ("generation", 70_000), ("unknown", 70_000)]


# -- the reduced frame: text signals computed once at ingest (auditor.classify.text_signals)

_FRAGMENTS = (
    "", " ", "\n", "\t", "\r\n", "\u2003", "é", "x", "Σ", "label", "LABEL", "classif", "ication", "summary",
    "extract", "fields", "step by step", "python", "```", "``", "`", "def f(", "class A:", "import os",
    "from a.b import c", "function g(", "const k = ", "#include ", "SELECT a FROM b", "  def  h(", "yes or no",
)  # fmt: skip


def _texts(rng: random.Random, n: int) -> list[str | None]:
    """Random texts built from the patterns' own words, cut points and whitespace (None = not logged)."""
    return [None if rng.random() < 0.15 else "".join(rng.choices(_FRAGMENTS, k=rng.randint(0, 12))) for _ in range(n)]


def test_fast_code_output_pattern_equals_the_documented_one() -> None:
    texts = pl.Series("t", [*_texts(random.Random(3), 5000), "def f(", " \n\tclass A:", "x\n import os\nz", "```"])
    slow = texts.str.contains(_CODE_OUTPUT)
    fast = texts.to_frame().select(code_output(pl.col("t"))).to_series()
    assert slow.fill_null(False).sum() > 300  # the fragments do reach the code lines
    assert fast.equals(slow.alias("t"), null_equal=True)


def test_text_signals_equal_the_signals_on_full_texts() -> None:
    # system slices end inside words and patterns, user slices too; prompt-only rows use the rendered prompt
    rng = random.Random(11)
    n = 3000
    head = "Respond in English. " * 99 + "Please "  # 1,987 characters: the slice ends 13 characters later
    cut, kept = head + "classification", head + "classify it"  # "classificatio" is no keyword, "classify" is
    systems = _texts(rng, n // 2) + [cut, kept] * (n // 4)
    frame = rows_to_frame(
        [
            {
                "system_text": systems[i],
                "last_user_text": None if i % 7 == 0 else ("y" * rng.choice([0, 290, 296])) + (_texts(rng, 1)[0] or ""),
                "prompt_text": _texts(rng, 1)[0],
                "output_text": _texts(rng, 1)[0],
                "output_tokens": None if i % 13 == 0 else 50,
            }
            for i in range(n)
        ]
    )
    full = classify(frame)
    signals = text_signals(frame, prefix="_s_")
    assert signals.columns == [f"_s_{name}" for name in TEXT_SIGNALS] and signals.height == n
    reduced = frame.drop("prompt_text", "system_text", "last_user_text", "output_text").hstack(signals)
    labels = ["task_family", "family_signals"]
    assert classify(reduced, text_prefix="_s_").select(labels).equals(full.select(labels))
    assert full["task_family"].n_unique() >= 5
    # and the signals themselves agree with the full-text expressions, one by one
    expected = (
        frame.with_columns(_text_exprs())
        .select(**_full_text_signals())
        .select(pl.all().fill_null(False).name.prefix("_s_"))
    )
    assert signals.equals(expected)
    assert all(signals[c].sum() > 0 for c in signals.columns)  # every signal fires somewhere
    tail = frame.with_columns(signals).filter(
        pl.col("last_user_text").is_null() & pl.col("system_text").is_in([cut, kept])
    )
    assert tail.group_by("system_text").agg(pl.col("_s_kw_classify").any()).sort("system_text").rows() == [
        (cut, False),
        (kept, True),
    ]
