"""retries on a reduced frame (issue 7): agent-loop tool calls are compared on their full output text, through the
lever's feature, although the frame keeps only the first 300 characters.

Prices as in test_lever_retries.py: gpt-4o at $2.50 / $10 per million tokens; 1,000 in / 100 out = $0.0035.
"""

from __future__ import annotations

from typing import Any

import pytest

from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.retries import CALL_HASH, LEVER
from auditor.prices import PriceBook
from auditor.reduce import HEAD_CHARS, reduce_chunk
from tests.helpers import at, canonical

# Two tool calls that differ only after the 300-character head.
ARGS = "order 42 " * 40
CALL_A = '{"name": "search", "arguments": {"q": "' + ARGS + 'A"}}'
CALL_B = '{"name": "search", "arguments": {"q": "' + ARGS + 'B"}}'


def step(i: int, call: str) -> dict[str, Any]:
    return {
        "session_id": "run1",
        "model": "gpt-4o",
        "feature": "agent",
        "prompt_hash": f"step{i}",
        "timestamp": at(10 * i),
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 1000.0,
        "finish_reason": "tool_calls",
        "output_text": call,
    }


def dump(result: LeverResult) -> tuple[Any, ...]:
    return result.findings, result.gaps, result.counterfactual.sort("row_id").to_dicts()


def test_a_loop_is_a_run_of_identical_full_tool_calls() -> None:
    assert CALL_A[:HEAD_CHARS] == CALL_B[:HEAD_CHARS] != CALL_A
    # A A B A A A: runs of 2, 1 and 3 identical calls; threshold 3 removes only the last step.
    # Compared on the heads it would be one run of 6, with 4 steps removed.
    calls = [CALL_A, CALL_A, CALL_B, CALL_A, CALL_A, CALL_A]
    full = canonical([step(i, call) for i, call in enumerate(calls)])
    reduced = reduce_chunk(full, [(lever, {}) for lever in available_levers()])
    assert "prompt_text" not in reduced.columns and CALL_HASH in reduced.columns
    ctx = LeverContext(prices=PriceBook.load())
    result = LEVER.analyze(reduced, ctx)
    assert dump(result) == dump(LEVER.analyze(full, ctx))
    (loop,) = result.findings
    assert loop.code == "LA404" and loop.affected_requests == 1
    assert loop.savings_usd == pytest.approx(0.0035)  # 1000 * 2.50 + 100 * 10 = 3,500 micro-dollars
    assert result.counterfactual["row_id"].to_list() == [int(full.filter(full["prompt_hash"] == "step5")["row_id"][0])]


def test_only_tool_calls_get_a_call_hash() -> None:
    rows = [step(0, CALL_A), step(1, CALL_A) | {"finish_reason": "stop"}, step(2, CALL_B) | {"output_text": None}]
    hashes = LEVER.features(canonical(rows), {})[CALL_HASH].to_list()
    assert hashes[0] is not None and hashes[1:] == [None, None]
