"""batching lever at volume: request ids fetched for the flagged rows only, exclusion reasons without per-row strings.

Prices as in test_lever_batching: a gpt-4.1-mini "job" request (1,000 input, 200 output tokens) costs $0.00072 in
real time and $0.00036 at batch prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
import pytest

from auditor import pipeline
from auditor.levers import available_levers
from auditor.levers.base import LeverContext
from auditor.levers.batching import LEVER
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from tests.helpers import canonical
from tests.test_lever_batching import nightly, req, when


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def test_example_ids_are_fetched_for_the_flagged_rows_only(prices: PriceBook) -> None:
    # 36 nightly job requests whose ids run backwards in time (the smallest ids are the last night's last three)
    # plus 20 interactive streamed requests that are never flagged.
    job = [{**r, "request_id": f"job-{99 - i:02d}"} for i, r in enumerate(nightly("account_sync"))]
    chat = [req("assistant", when(1, 10, 60 * i), stream=True, request_id=f"chat-{i:02d}") for i in range(20)]
    frame = canonical(job + chat)
    reduced = reduce_chunk(frame, [(lever, {}) for lever in available_levers()])  # what the scan keeps
    asked: list[list[int]] = []
    fetch = pipeline.row_fetcher(reduced)

    def rows(ids: pl.Series, columns: Sequence[str]) -> pl.DataFrame:
        asked.append(sorted(ids.to_list()))
        assert list(columns) == ["request_id"]
        return fetch(ids, columns)

    # the frame the pipeline hands the lever has no request_id (not in `reads`): the ids come through ctx.rows
    lever_frame = pipeline.lever_frame(reduced, LEVER)
    assert "request_id" not in lever_frame.columns
    result = LEVER.analyze(lever_frame, LeverContext(prices=prices, options={}, rows=rows))
    (finding,) = result.findings
    # ids job-99 .. job-64 in time order: the three smallest are job-64, job-65, job-66
    assert finding.evidence["example_request_ids"] == ["job-64", "job-65", "job-66"]
    job_rows = frame.filter(pl.col("feature") == "account_sync")["row_id"].to_list()
    assert asked == [sorted(job_rows)]  # one fetch, of the 36 flagged rows, none of the chat rows
    # a full frame (request_id in it) reads its own column and gives the same findings
    full = LEVER.analyze(frame, LeverContext(prices=prices, options={}))
    assert full.findings == result.findings
    assert full.counterfactual.equals(result.counterfactual)


def test_exclusion_reasons_by_tier_case_session_and_status(prices: PriceBook) -> None:
    # 36 scheduled requests, plus at noon on 2026-10-01: a FLEX and a "Batch" tier request (already async, whatever
    # the case), two calls of session s1 (an agent run), one call of session s2 (a single call: still eligible), one
    # streamed and one failed request.
    extra: list[dict[str, Any]] = [
        req("nightly_digest", when(1, 12, 0), service_tier="FLEX"),
        req("nightly_digest", when(1, 12, 10), service_tier="Batch"),
        req("nightly_digest", when(1, 12, 20), session_id="s1"),
        req("nightly_digest", when(1, 12, 30), session_id="s1"),
        req("nightly_digest", when(1, 12, 40), session_id="s2"),
        req("nightly_digest", when(1, 12, 50), stream=True),
        req("nightly_digest", when(1, 12, 55), status="error"),
    ]
    frame = canonical(nightly("nightly_digest") + extra)
    result = LEVER.analyze(frame, LeverContext(prices=prices, options={}))
    (finding,) = result.findings
    # eligible: 36 + the s2 call = 37; 36 of them in scheduled bursts (97 % >= 80 %): a scheduled job
    assert (finding.code, finding.affected_requests) == ("LA501", 37)
    assert finding.evidence["evidence_level"] == "scheduled"
    assert finding.evidence["share_in_scheduled_bursts"] == pytest.approx(36 / 37, abs=1e-4)
    # reasons in alphabetical order
    assert list(finding.evidence["excluded_requests"].items()) == [
        ("already_batch_or_flex", 2),
        ("conversation_or_agent_run", 2),
        ("error", 1),
        ("streaming", 1),
    ]
    # 37 requests at $0.00072, half off at batch prices, 0.9 of it can wait: 37 * 0.00036 * 0.9 = $0.011988
    assert finding.savings_usd == pytest.approx(0.011988)
    s2 = frame.filter(pl.col("session_id") == "s2")["row_id"].item()
    assert s2 in result.counterfactual["row_id"].to_list()
