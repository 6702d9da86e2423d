"""context_trimming on reduced frames (issue 7): LA703 is measured by `features` at ingest, from the full prompt.

Every expected number is counted by hand from the constructed prompts below.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext
from auditor.levers.context import DUP_CHARS, DUP_TEXT, LEVER
from auditor.pipeline import ScanOptions, prepare_frame
from auditor.prices import PriceBook
from auditor.reduce import HEAD_CHARS, is_reduced, reduce_chunk
from auditor.schema import rows_to_frame
from tests.helpers import at, canonical

A = "a" * 600  # 600 characters
B = "b" * 520
E = "é" * 260 + " ünïcode line"  # 273 characters, 533 bytes


def features(prompts: list[str | None], **options: Any) -> list[tuple[int | None, str | None]]:
    out = LEVER.features(rows_to_frame([{"prompt_text": p} for p in prompts]), options)
    assert out.columns == [DUP_CHARS, DUP_TEXT]
    return list(zip(out[DUP_CHARS].to_list(), out[DUP_TEXT].to_list(), strict=True))


def test_features_count_the_extra_copies_of_long_lines() -> None:
    three_and_two = f"[system]\n{A}\n{B}\nshort\n{A}\n[user]\n{B}\n{A}"  # A three times (last without \n), B twice
    got = features([three_and_two, "short prompt", None, f"{A}\n{A}\n", three_and_two, f"{A}\n{B}"])
    assert got == [
        (2 * 600 + 520, "a" * HEAD_CHARS),  # two extra copies of A, one of B; A sorts first
        (None, None),  # too short to hold two long lines
        (None, None),  # no prompt logged
        (600, "a" * HEAD_CHARS),
        (2 * 600 + 520, "a" * HEAD_CHARS),  # the same prompt again: same answer (it is scanned once)
        (None, None),  # long lines, none repeated
    ]


def test_lines_are_compared_whole_and_lengths_are_characters() -> None:
    # "\r" belongs to the line ("A\r" != "A"); E has 533 bytes but only 273 characters
    assert features([f"{A}\r\n{A}", f"{E}\n{E}\n{B}"]) == [(None, None), (None, None)]
    assert features([f"{E}\n{E}\n{B}"], duplicate_min_chars=273) == [(273, E[:HEAD_CHARS])]
    assert features([f"{E}\n{E}\n{B}"], duplicate_min_chars=274) == [(None, None)]


def test_features_check_options_like_analyze() -> None:
    with pytest.raises(ConfigError, match=r"levers\.context_trimming\.duplicate_min_chars"):
        features([A], duplicate_min_chars=10)


def rows() -> list[dict[str, Any]]:
    """A resent 12-turn conversation (LA701), prompts repeating a paragraph (LA703), an oversized feature (LA702)."""
    out: list[dict[str, Any]] = []
    for n in range(1, 13):
        out.append(
            {"session_id": "s1", "model": "claude-haiku-4-5", "feature": "chat", "timestamp": at(60.0 * n),
             "input_tokens": 1000 + 150 * (n - 1), "output_tokens": 100, "messages_count": 2 * n - 1,
             "last_user_text": f"question {n} from alice@example.com " + "x" * 400, "request_id": f"s1-{n}"}
        )  # fmt: skip
    mail = "Write to alice@example.com about the refund policy before answering. " * 8  # 552 characters
    for i in range(6):
        prompt = f"[system]\n{mail}\n[user]\n{mail}\nquestion {i}\n" + (f"{A}\n{A}" if i % 2 else "")
        out.append(
            {"model": "gpt-4o-mini", "feature": "faq", "prompt_text": prompt, "input_tokens": 3000,
             "output_tokens": 10, "timestamp": at(1000.0 + i), "request_id": f"faq-{i}"}
        )  # fmt: skip
    for i in range(50):
        out.append(
            {"model": "gpt-4o-mini", "feature": "rag", "input_tokens": 20_000 if i % 10 == 9 else 2_000,
             "output_tokens": 50, "timestamp": at(2000.0 + i), "request_id": f"r{i:02d}",
             "last_user_text": f"context {i} " * 60}
        )  # fmt: skip
    return out


def test_reduced_frame_from_the_pipeline_gives_the_full_frame_result() -> None:
    prices = PriceBook.load()
    ctx = LeverContext(prices=prices, options={})
    full = canonical(rows())
    # what ingest does: every lever's features per chunk (two chunks here), then the sort, row_id and costs
    ingest = full.drop("row_id", "model_id", "price_date", "unpriced", "cost_usd")
    levers = [(lever, {}) for lever in available_levers()]
    chunks = [reduce_chunk(ingest.slice(0, 30), levers), reduce_chunk(ingest.slice(30), levers)]
    reduced = prepare_frame(pl.concat(chunks), ScanOptions(paths=[]), prices)
    assert is_reduced(reduced) and not is_reduced(full)

    on_full, on_reduced = LEVER.analyze(full, ctx), LEVER.analyze(reduced, ctx)
    assert [f.code for f in on_reduced.findings] == ["LA701", "LA703", "LA702"]
    assert on_reduced.counterfactual.sort("row_id").equals(on_full.counterfactual.sort("row_id"))
    assert [dataclasses.asdict(f) for f in on_reduced.findings] == [dataclasses.asdict(f) for f in on_full.findings]

    dup = on_reduced.findings[1].evidence
    # 6 prompts repeat the 552-character paragraph once; prompts 1, 3, 5 also repeat A (600 characters)
    assert dup["requests"] == 6 and dup["duplicated_chars"] == 6 * 552 + 3 * 600
    assert dup["repeated_text"].startswith("Write to [email] about the refund policy")  # masked excerpt
    assert on_reduced.findings[0].evidence["example"]["opening_message"].startswith("question 1 from [email] xxx")
