"""Task-family classifier: one constructed request per rule of the decision list, with the signals it cites."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from auditor.classify import RULES, classify, feature_profile
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
