"""context_trimming lever (LA7xx) on constructed conversations; every expected number is computed by hand below.

Prices (pricing/anthropic.yaml, openai.yaml), USD per million tokens:
  claude-haiku-4-5: input 1.00, cache read 0.10 (0.1x), output 5.00; gpt-4o-mini: input 0.15, output 0.60.

The full-history session: 12 turns; the first request is 1,000 tokens (system prompt + opening message), each
answer is 100 tokens and each new user message 50, and every turn resends everything, so
  input_n = 1000 + 150 * (n - 1):  1000, 1150, 1300, ..., 2650.
With a window of K turns the lever removes input_{n-K} - input_1 = 150 * (n - K - 1) tokens from turn n >= K + 2:
  K = 6 (expected):  turns 8..12 lose 150, 300, 450, 600, 750        = 2,250 tokens -> 2250 * $1/M = $0.00225
  K = 10 (low):      turn 12 loses 150                                =   150 tokens -> $0.00015
  K = 4 (high):      turns 6..12 lose 150 * (1 + 2 + ... + 7) = 4,200 tokens -> $0.0042
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.context import LEVER
from auditor.plan import build_plan
from auditor.prices import PriceBook
from tests.helpers import at, canonical


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def turn(session: str | None, n: int, input_tokens: int, t: float, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "session_id": session,
        "model": "claude-haiku-4-5",
        "provider": "anthropic",
        "feature": "chat",
        "timestamp": at(t),
        "input_tokens": input_tokens,
        "output_tokens": 100,
        "messages_count": 2 * n - 1,  # n user messages and n - 1 answers
        "last_user_text": f"question {n} from alice@example.com",
        "request_id": f"{session}-{n}",
    }
    row.update(extra)
    return row


def full_history(session: str = "s1", turns: int = 12, t0: float = 0.0, step: float = 60.0) -> list[dict[str, Any]]:
    return [turn(session, n, 1000 + 150 * (n - 1), t0 + step * n) for n in range(1, turns + 1)]


def run(rows: list[dict[str, Any]], prices: PriceBook, **options: Any) -> tuple[pl.DataFrame, LeverResult]:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=prices, options=options))


def by_code(result: LeverResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def cf(result: LeverResult) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """request_id is not in the counterfactual: key by row_id then map through the frame in the tests."""
    return {
        r["row_id"]: (r["cost_after_usd"], r["cost_after_low_savings_usd"], r["cost_after_high_savings_usd"])
        for r in result.counterfactual.iter_rows(named=True)
    }


def test_registered_in_plan_order() -> None:
    ids = [lever.id for lever in available_levers()]
    assert "context_trimming" in ids
    assert ids.index("model_tiering") < ids.index("context_trimming") < ids.index("output_caps")


def test_twelve_turn_session_resending_full_history(prices: PriceBook) -> None:
    frame, result = run(full_history(), prices)
    (finding,) = result.findings
    assert finding.code == "LA701"
    assert finding.savings_usd == pytest.approx(0.00225)  # 2,250 tokens at $1/M
    assert finding.affected_requests == 5  # turns 8..12
    assert finding.scope == {"feature": "chat", "model": "claude-haiku-4-5"}
    ev = finding.evidence
    assert ev["sessions"] == 1 and ev["requests"] == 12 and ev["turns_max"] == 12
    assert ev["history_tokens_removed"] == 2250
    # input = 12 * 1000 + 150 * (0 + 1 + ... + 11) = 12000 + 9900 = 21,900
    assert ev["input_tokens"] == 21_900
    assert ev["removed_token_classes"] == {"uncached": 2250, "cache_read": 0, "cache_write": 0}
    assert ev["cache_read_share_of_removed"] == 0.0
    assert ev["savings_low_usd"] == pytest.approx(0.00015)
    assert ev["savings_high_usd"] == pytest.approx(0.0042)
    assert ev["worst_sessions"] == [
        {"session": "s1", "turns": 12, "tokens_removed": 2250, "savings_usd": pytest.approx(0.00225)}
    ]
    # the excerpt is masked
    assert ev["example"]["opening_message"] == "question 1 from [email]"
    assert ev["example"]["resent_in_later_requests"] == 11

    # per request: turn 12 costs 2650 * 1 + 100 * 5 = 3150 micro-dollars; without 750 tokens 2400.
    rows = {r["request_id"]: r["row_id"] for r in frame.iter_rows(named=True)}
    after = cf(result)
    assert set(after) == {rows[f"s1-{n}"] for n in range(6, 13)}  # turns 6, 7 are touched by the high case only
    assert after[rows["s1-12"]] == (Decimal("0.0024"), Decimal("0.003"), Decimal("0.0021"))  # -750 / -150 / -1050
    assert after[rows["s1-6"]] == (Decimal("0.00225"), Decimal("0.00225"), Decimal("0.0021"))  # 1750 + 500; high -150

    plan, (summary,) = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.00225)
    assert summary.savings_low_usd == pytest.approx(0.00015)
    assert summary.savings_high_usd == pytest.approx(0.0042)
    assert summary.confidence == "heuristic"


def test_two_interleaved_sessions_are_measured_separately(prices: PriceBook) -> None:
    rows = full_history("a", step=60.0) + full_history("b", t0=30.0, step=60.0)
    _, result = run(rows, prices)
    (finding,) = result.findings
    assert finding.savings_usd == pytest.approx(0.0045)  # 2 x $0.00225
    assert finding.evidence["sessions"] == 2


def test_failed_attempt_inside_the_session_does_not_break_the_chain(prices: PriceBook) -> None:
    rows = full_history()
    # a 429 without usage before turn 6 (the retries lever owns it; here it must not split the conversation)
    failed = turn("s1", 6, 0, 355.0, output_tokens=None, status="error", error_type="rate_limit")
    rows.insert(5, failed | {"input_tokens": None})
    _, result = run(rows, prices)
    (finding,) = result.findings
    assert finding.savings_usd == pytest.approx(0.00225)


def test_cached_history_is_removed_from_cache_reads(prices: PriceBook) -> None:
    # Anthropic multi-turn caching: the previous prompt is read from the cache, the 150 new tokens are written.
    rows = full_history()
    for n, row in enumerate(rows, start=1):
        if n > 1:
            row["cache_read_tokens"] = 1000 + 150 * (n - 2)
            row["cache_write_5m_tokens"] = 150
    _, result = run(rows, prices)
    (finding,) = result.findings
    # the removed span [1000, 1000 + 150 (n - 7)) lies inside the reads [0, input_{n-1}): 2,250 read tokens at $0.10/M
    assert finding.savings_usd == pytest.approx(0.000225)
    assert finding.evidence["removed_token_classes"] == {"uncached": 0, "cache_read": 2250, "cache_write": 0}
    assert finding.evidence["cache_read_share_of_removed"] == 1.0
    assert "prompt cache" in finding.evidence["note"]


def test_short_session_is_not_flagged(prices: PriceBook) -> None:
    _, result = run(full_history(turns=3), prices)
    assert result.findings == [] and result.counterfactual.height == 0


def test_session_with_trimmed_history_is_not_flagged(prices: PriceBook) -> None:
    # The client keeps a window itself: input grows for 6 turns, then stays near 1,750 with 11 messages.
    rows = full_history(turns=6) + [
        turn("s1", n, 1750 + (n % 3) * 10, 60.0 * n, messages_count=11) for n in range(7, 13)
    ]
    _, result = run(rows, prices)
    assert result.findings == [] and result.counterfactual.height == 0


def test_window_and_summary_come_from_options(prices: PriceBook) -> None:
    # K = 8: turns 10..12 lose 150, 300, 450 = 900 tokens -> $0.0009 (range K 10 / K 4 unchanged)
    _, result = run(full_history(), prices, window_turns=8)
    assert result.findings[0].savings_usd == pytest.approx(0.0009)
    # K = 6 with a 100-token summary: 50 + 200 + 350 + 500 + 650 = 1,750 tokens -> $0.00175
    _, result = run(full_history(), prices, summary_tokens=100)
    assert result.findings[0].savings_usd == pytest.approx(0.00175)


def test_missing_session_id_is_a_gap(prices: PriceBook) -> None:
    rows = [turn(None, n, 1000 + 150 * (n - 1), 60.0 * n) for n in range(1, 13)]
    _, result = run(rows, prices)
    assert result.findings == []
    (gap,) = result.gaps
    assert gap.missing_fields == ["session_id"]
    # turns 2..12 have 3+ messages; their cost: sum(1150..2650 step 150) = 11 * 1900 = 20,900 input tokens at $1/M
    # + 11 * 100 output at $5/M = 5,500 -> 26,400 micro-dollars
    assert gap.requests == 11
    assert gap.cost_at_stake_usd == pytest.approx(0.0264)


def test_oversized_context_is_report_only_with_an_optimistic_cap(prices: PriceBook) -> None:
    # 45 requests at 2,000 input and 5 at 20,000, answers of 50 tokens, on gpt-4o-mini, no session.
    # median 2,000; p99 (nearest) = 20,000 > 4 x 2,000 and > 8,000; p90 = 2,000 (the 45th of 50 sorted values).
    rows = [
        {"model": "gpt-4o-mini", "feature": "rag", "input_tokens": 20_000 if i % 10 == 9 else 2_000,
         "output_tokens": 50, "timestamp": at(i), "request_id": f"r{i:02d}", "last_user_text": "context " * 30}
        for i in range(50)
    ]  # fmt: skip
    frame, result = run(rows, prices)
    (finding,) = by_code(result, "LA702")
    assert finding.savings_usd == 0.0 and finding.affected_requests == 5
    ev = finding.evidence
    assert ev["input_median"] == 2000.0 and ev["input_p99"] == 20_000 and ev["input_p90"] == 2000
    assert ev["tokens_above_cap"] == 5 * 18_000
    # capped at 2,000: 5 * 18,000 tokens * $0.15/M = 13,500 micro-dollars
    assert ev["savings_if_capped_usd"] == pytest.approx(0.0135)
    assert ev["example_request_ids"] == ["r09", "r19", "r29"]
    plan, (summary,) = build_plan(frame, [result])
    assert plan.savings_usd == 0.0
    assert summary.savings_low_usd == 0.0
    assert summary.savings_high_usd == pytest.approx(0.0135)
    # answers of 800 tokens are not "short": no finding
    for row in rows:
        row["output_tokens"] = 800
    _, result = run(rows, prices)
    assert by_code(result, "LA702") == []


def test_duplicated_paragraph_inside_one_prompt(prices: PriceBook) -> None:
    paragraph = ("Always answer in the customer's language and cite the policy section you rely on. " * 8).strip()
    assert len(paragraph) >= 500
    prompt = f"[system]\n{paragraph}\n[user]\n{paragraph}\nWhat is the refund window?\n"
    row = {"model": "gpt-4o-mini", "feature": "faq", "prompt_text": prompt, "output_tokens": 10,
           "input_tokens": 2 * len(prompt)}  # fmt: skip
    _, result = run([row], prices)
    (finding,) = by_code(result, "LA703")
    # the extra copy is len(paragraph) of len(prompt) characters: 2 * len(prompt) * len(paragraph) / len(prompt)
    tokens = 2 * len(paragraph)
    assert finding.evidence["duplicated_tokens_estimated"] == tokens
    assert finding.savings_usd == pytest.approx(tokens * 0.15 / 1e6)
    assert finding.evidence["savings_low_usd"] == 0.0
    assert finding.evidence["repeated_text"].startswith("Always answer in the customer's language")
    # a paragraph shorter than the threshold does not count
    _, result = run([row], prices, duplicate_min_chars=len(paragraph) + 1)
    assert by_code(result, "LA703") == []


@pytest.mark.parametrize(
    "options",
    [{"window": 6}, {"window_turns": 0}, {"window_turns": 12}, {"min_append_share": 1.5}, {"summary_tokens": -1}],
)
def test_bad_options_are_config_errors(prices: PriceBook, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"levers\.context_trimming"):
        run(full_history(turns=2), prices, **options)
