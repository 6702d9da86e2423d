"""response_cache on a reduced frame (issue 7): questions and answers are compared on their full texts, through the
lever's features, although the frame keeps only their first 300 characters.

Prices as in test_lever_response_cache.py: a FAQ request (gpt-4o-mini, 1,000 in / 100 out) costs $0.00021.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.response_cache import FEATURES, LEVER, normalized_question
from auditor.prices import PriceBook
from auditor.redact import excerpt
from auditor.reduce import HEAD_CHARS, reduce_chunk
from tests.helpers import at, canonical

FAQ = Decimal("0.00021")
HOUR = 3600.0
# Two questions and two answers that differ only after the 300-character head.
LONG = "How do I export every invoice of last year as one PDF file " * 6  # 354 characters
Q1, Q2 = LONG + "alpha", LONG + "beta"
ANSWER_A, ANSWER_B = (
    "Open Billing > Invoices. " * 14 + "Then pick A.",
    "Open Billing > Invoices. " * 14 + "Then pick B.",
)


def ask(t: float, question: str, prompt_hash: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "feature": "help_center_bot",
        "model": "gpt-4o-mini",
        "timestamp": at(t),
        "user": "u1",
        "system_hash": "sys-faq",
        "last_user_text": question,
        "prompt_text": f"[user]\n{question}\n",
        "prompt_hash": prompt_hash,
        "messages_count": 2,
        "temperature": 0.2,
        "max_tokens": 400,
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 800.0,
        "output_text": ANSWER_A,
    }
    row.update(extra)
    return row


def rows() -> list[dict[str, Any]]:
    return [
        ask(0, Q1, "h1"),
        ask(1 * HOUR, Q2, "h2", output_text=ANSWER_B),
        ask(2 * HOUR, Q1.upper() + "!", "h3"),  # Q1 in capitals: a near-duplicate of the 0 h request
        ask(3 * HOUR, Q2, "h2"),  # a hit; its answer differs from the 1 h one after 300 characters: not safe
        ask(4 * HOUR, Q2, "h2"),  # a hit with the same answer as the 3 h one: safe
    ]


def dump(result: LeverResult) -> tuple[Any, ...]:
    return result.findings, result.gaps, result.counterfactual.sort("row_id").to_dicts()


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def test_heads_are_equal_but_the_full_texts_decide(prices: PriceBook) -> None:
    assert Q1[:HEAD_CHARS] == Q2[:HEAD_CHARS] and ANSWER_A[:HEAD_CHARS] == ANSWER_B[:HEAD_CHARS]
    full = canonical(rows())
    reduced = reduce_chunk(full, [(lever, {}) for lever in available_levers()])
    assert "prompt_text" not in reduced.columns and set(FEATURES) <= set(reduced.columns)
    assert reduced["last_user_text"].str.len_chars().max() == HEAD_CHARS
    ctx = LeverContext(prices=prices)
    result = LEVER.analyze(reduced, ctx)
    assert dump(result) == dump(LEVER.analyze(full, ctx))

    exact, near = result.findings
    assert exact.code == "LA601" and exact.affected_requests == 2  # the 3 h and 4 h requests
    assert exact.savings_usd == pytest.approx(float(2 * FAQ))
    assert exact.evidence["safe_hits"] == 1 and exact.evidence["savings_low_usd"] == pytest.approx(float(FAQ))
    (top,) = exact.evidence["top_repeats"]
    assert top["question"] == excerpt(Q2, 100) and top["requests"] == 3 and top["cache_hits"] == 2
    # Q1 and Q2 share their head but not their normalised text: only the capitalised Q1 is a near-duplicate
    assert near.code == "LA602" and near.affected_requests == 1
    (example,) = near.evidence["examples"]
    assert example["variants"] == [excerpt(Q1.upper() + "!", 100), excerpt(Q1, 100)]
    assert example["prompt_variants"] == 2 and near.evidence["normalised_questions"] == 1


def test_features_are_keys_of_the_full_texts() -> None:
    feats = LEVER.features(canonical(rows()), {})
    key, question, output = (feats[name].to_list() for name in FEATURES)
    assert key[0] == key[2] != key[1] == key[3] == key[4]  # rows are in time order
    assert len(set(question)) == 3 and output[1] != output[3] == output[4]
    # multi-turn requests and unlogged questions get no question key; a missing answer no output hash
    other = LEVER.features(canonical([ask(0, Q1, "h", messages_count=3), ask(1, None, "h", output_text=None)]), {})
    assert other[FEATURES[0]].to_list() == [None, None]
    assert other[FEATURES[1]].null_count() == 1 and other[FEATURES[2]].null_count() == 1


@pytest.mark.parametrize(
    "text",
    ["How do I reset my password?", "  --Hello,   World!!  ", "tab\tand\nnewline", "naïve — café’s", "İstanbul ΣΑΣ",
     "snake_case and 3.14", "?!", "", "a  b", " x", "x "],
)  # fmt: skip
def test_normalised_question_matches_the_plain_definition(text: str) -> None:
    # the definition: lower-case, every run of characters that are not letters or digits -> one space, trimmed
    plain = pl.Series([text]).str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars()
    expected = plain.replace("", None).item()
    assert pl.select(normalized_question(pl.lit(text))).item() == expected
    if text.isascii():  # and an independent route where Python and Rust agree on lower-case and letter classes
        assert expected == (" ".join(re.findall(r"[a-z0-9]+", text.lower())) or None)
