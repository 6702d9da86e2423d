"""Compact labels: classify_compact() (what the tiering lever keeps per request) against classify() itself, and
feature_profile over Enum labels."""

from __future__ import annotations

import random

import polars as pl

from auditor.classify import FAMILIES, RULES, classify, classify_compact, feature_profile, text_signals
from auditor.schema import rows_to_frame

_WORDS = ("", "classify", "label", "extract", "fields", "summary", "step by step", "python", "```", "def f(", "hi")


def _random_rows(n: int, seed: int) -> pl.DataFrame:
    """Requests mixing every signal the rules read: texts, output sizes, formats, tools, temperature, finish."""
    rng = random.Random(seed)

    def text() -> str | None:
        return None if rng.random() < 0.2 else " ".join(rng.choices(_WORDS, k=rng.randint(1, 4)))

    return rows_to_frame(
        [
            {
                "system_text": text(),
                "last_user_text": text(),
                "output_text": text(),
                "input_tokens": rng.choice([None, 5, 400, 3000]),
                "output_tokens": rng.choice([None, 1, 8, 60, 300, 900]),
                "reasoning_tokens": rng.choice([None, 0, 5]),
                "response_format": rng.choice([None, "text", "json_object"]),
                "tools_count": rng.choice([None, 0, 2]),
                "temperature": rng.choice([None, 0.0, 0.5, 1.0]),
                "finish_reason": rng.choice([None, "stop", "length", "tool_calls"]),
            }
            for _ in range(n)
        ]
    )


def test_compact_labels_equal_classify_on_full_and_reduced_frames() -> None:
    frame = _random_rows(4000, seed=5)
    expected = classify(frame).select("task_family", "family_signals")
    assert expected["task_family"].n_unique() == len(FAMILIES)  # every family occurs: the rules are all exercised
    assert expected["family_signals"].n_unique() > len(RULES)

    compact = classify_compact(frame)
    assert compact.schema == {"task_family": pl.Enum(FAMILIES), "family_signals": pl.Categorical()}
    assert compact.select(pl.all().cast(pl.String)).equals(expected)

    reduced = frame.drop("system_text", "last_user_text", "output_text").hstack(text_signals(frame, prefix="_s_"))
    assert classify_compact(reduced, text_prefix="_s_").select(pl.all().cast(pl.String)).equals(expected)


def test_compact_labels_of_one_request() -> None:
    frame = rows_to_frame([{"system_text": "Classify the ticket.", "output_tokens": 2}, {"output_tokens": None}])
    assert classify_compact(frame).select(pl.all().cast(pl.String)).rows() == [
        ("classification", "kw_classify,enum_output"),
        ("unknown", "no_evidence"),
    ]


def test_enum_labels_break_ties_by_name_not_by_enum_order() -> None:
    # 2 short_answer + 2 code: a tie. FAMILIES puts short_answer before code; the profile breaks ties by name.
    labels = ["short_answer", "code", "short_answer", "code"]
    as_enum = pl.DataFrame({"feature": ["f"] * 4, "task_family": pl.Series(labels, dtype=pl.Enum(FAMILIES))})
    profile = feature_profile(as_enum).row(0, named=True)
    assert profile["dominant_family"] == "code"
    assert profile["dominant_share"] == 0.5
    assert profile["simple_requests"] == 2  # short_answer is simple by default
    assert profile["families"] == '{"code": 2, "short_answer": 2}'
    as_text = as_enum.with_columns(pl.col("task_family").cast(pl.String))
    assert feature_profile(as_text).equals(feature_profile(as_enum))
