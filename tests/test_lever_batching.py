"""batching lever (LA5xx) on constructed logs; every expected number is computed by hand below.

Prices (pricing/openai.yaml), USD per million tokens: gpt-4.1-mini input 0.40, cache read 0.10, output 1.60,
Batch API x0.5 (stacks with cache prices). A "job" request has 1,000 input and 200 output tokens:
  real time: 1000*0.40 + 200*1.60 = 400 + 320 = 720 micro-dollars = $0.00072
  batch:     720 * 0.5                         = 360 micro-dollars = $0.00036
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.batching import LEVER
from auditor.plan import build_plan
from auditor.prices import PriceBook
from auditor.reduce import is_reduced, reduce_chunk
from tests.helpers import canonical

REAL, BATCH = Decimal("0.00072"), Decimal("0.00036")


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def when(day: int, hour: int, seconds: float = 0) -> datetime:
    return datetime(2026, 10, day, hour, 0, 0, tzinfo=UTC) + timedelta(seconds=seconds)


def req(feature: str, t: datetime, model: str = "gpt-4.1-mini", **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "feature": feature,
        "model": model,
        "timestamp": t,
        "input_tokens": 1000,
        "output_tokens": 200,
        "latency_ms": 3000.0,
        "stream": False,
        "messages_count": 2,
        "request_id": f"{feature}-{t.isoformat()}",
    }
    row.update(extra)
    return row


def nightly(feature: str, days: int = 3, per_night: int = 12, hour: int = 2, **extra: Any) -> list[dict[str, Any]]:
    """`per_night` requests 10 s apart from hour:00:00, on `days` consecutive nights from 2026-10-01."""
    return [req(feature, when(1 + d, hour, 10 * i), **extra) for d in range(days) for i in range(per_night)]


def run(rows: list[dict[str, Any]], prices: PriceBook, **options: Any) -> tuple[pl.DataFrame, LeverResult]:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=prices, options=options))


def by_code(result: LeverResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def test_registered_last_in_plan_order() -> None:
    assert [lever.id for lever in available_levers()][-1] == "batching"


def test_nightly_burst_job_is_la501(prices: PriceBook) -> None:
    # 12 requests 10 s apart at 02:00 UTC on 3 nights; a neutral name, so only the schedule gives it away.
    frame, result = run(nightly("account_sync"), prices)
    (finding,) = result.findings
    assert finding.code == "LA501"
    assert finding.scope == {"feature": "account_sync", "model": "gpt-4.1-mini"}
    assert finding.affected_requests == 36
    ev = finding.evidence
    # cost 36 * $0.00072 = $0.02592; at batch prices 36 * $0.00036 = $0.01296 (50 % off)
    assert ev["cost_usd"] == pytest.approx(0.02592)
    assert ev["cost_at_async_prices_usd"] == pytest.approx(0.01296)
    assert ev["async_tier"] == "batch"
    assert ev["evidence_level"] == "scheduled"
    # savings = share that can wait x $0.01296: low 0.5 -> $0.00648, expected 0.9 -> $0.011664, high 1.0 -> $0.01296
    # (the whole job at batch prices saves 50 % of its cost; the expected case assumes 90 % of it can wait)
    assert finding.savings_usd == pytest.approx(0.011664)
    assert ev["savings_low_usd"] == pytest.approx(0.00648)
    assert ev["savings_high_usd"] == pytest.approx(0.01296)
    assert ev["schedule"] == [
        {"slot": "02:00 UTC", "days": 3, "bursts": 3, "median_requests_per_burst": 12.0, "median_burst_seconds": 110.0}
    ]
    assert ev["share_in_scheduled_bursts"] == 1.0
    assert ev["batch_files_per_day"] == 1
    # per request: expected 0.00072 - 0.9*0.00036 = 0.000396, low 0.00072 - 0.5*0.00036 = 0.00054, high 0.00036
    cf = result.counterfactual
    assert cf.height == 36
    assert set(cf["cost_after_usd"]) == {Decimal("0.000396")}
    assert set(cf["cost_after_low_savings_usd"]) == {Decimal("0.00054")}
    assert set(cf["cost_after_high_savings_usd"]) == {BATCH}
    plan, (summary,) = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.011664)
    assert summary.savings_low_usd == pytest.approx(0.00648)
    assert summary.savings_high_usd == pytest.approx(0.01296)
    assert summary.confidence == "heuristic"


def test_batch_discount_stacks_with_cache_reads(prices: PriceBook) -> None:
    # 1,000 input of which 800 cache reads: 200*0.40 + 800*0.10 + 200*1.60 = 80 + 80 + 320 = 480 micro-dollars;
    # batch halves all of it -> 240; expected cost after = 480 - 0.9*240 = 264 micro-dollars.
    _, result = run(nightly("account_sync", cache_read_tokens=800), prices)
    assert set(result.counterfactual["cost_after_usd"]) == {Decimal("0.000264")}
    assert result.findings[0].evidence["cost_at_async_prices_usd"] == pytest.approx(36 * 0.00024)


def test_interactive_chat_is_left_alone(prices: PriceBook) -> None:
    rows = []
    for s in range(6):  # six conversations of 4 streamed turns, at different hours; plus the same at 02:00
        for turn in range(4):
            t = when(1 + s % 3, 9 + s, 30 * turn)
            rows.append(req("chat", t, session_id=f"c{s}", stream=True, messages_count=1 + 2 * turn))
    # single-turn, non-streamed lookups spread over the day (one an hour): no burst, no job-like name
    rows += [req("lookup", when(1 + d, h)) for d in range(3) for h in range(8, 20)]
    _, result = run(rows, prices)
    assert result.findings == []
    assert result.counterfactual.height == 0


def test_conversation_turns_in_a_burst_are_not_batched(prices: PriceBook) -> None:
    # The schedule is there, but every request belongs to a multi-call session (an agent run): not batchable.
    rows = [{**r, "session_id": f"run{r['timestamp'].day}"} for r in nightly("account_sync")]
    _, result = run(rows, prices)
    assert result.findings == []


@pytest.mark.parametrize(
    "already", [{"batch": True, "service_tier": "batch"}, {"service_tier": "flex"}, {"stream": True}]
)
def test_requests_already_async_or_streamed_are_excluded(prices: PriceBook, already: dict[str, Any]) -> None:
    _, result = run(nightly("nightly_digest", **already), prices)
    assert result.findings == []
    assert result.counterfactual.height == 0


def test_model_without_batch_price_is_excluded(prices: PriceBook) -> None:
    # xAI publishes no batch or flex discount (pricing/xai.yaml batch: null)
    _, result = run(nightly("nightly_digest", model="grok-3-mini"), prices)
    assert result.findings == []


def test_job_name_alone_gives_la501_with_lower_shares(prices: PriceBook) -> None:
    # "eval" in the name, requests an hour apart (never a burst): named shares 0.3 / 0.7 / 1.0 of the discount.
    rows = [req("eval_runner", when(1 + d, h)) for d in range(2) for h in range(10, 15)]
    _, result = run(rows, prices)
    (finding,) = result.findings
    assert finding.code == "LA501"
    assert finding.evidence["evidence_level"] == "named"
    assert "feature name says 'eval'" in finding.evidence["signals"]
    # 10 requests: discount 10 * $0.00036 = $0.0036; expected 0.7 -> $0.00252, low 0.3 -> $0.00108
    assert finding.savings_usd == pytest.approx(0.00252)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.00108)
    assert finding.evidence["savings_high_usd"] == pytest.approx(0.0036)


def test_scheduled_part_of_a_mixed_feature_is_la502(prices: PriceBook) -> None:
    # "assistant": 60 interactive requests (10:00-19:00 hourly, 2 per hour, 3 days) + a 03:00 burst of 10 on 3 nights.
    interactive = [req("assistant", when(1 + d, h, 600 * k)) for d in range(3) for h in range(10, 20) for k in range(2)]
    burst = nightly("assistant", per_night=10, hour=3)
    frame, result = run(interactive + burst, prices)
    (finding,) = result.findings
    assert finding.code == "LA502"
    assert finding.affected_requests == 30  # only the burst requests; share in bursts 30/90 < 0.8
    assert finding.evidence["share_in_scheduled_bursts"] == pytest.approx(30 / 90, abs=1e-4)
    # discount on the 30 burst requests: 30 * $0.00036 = $0.0108; mixed shares 0.1 / 0.4 / 0.8
    assert finding.savings_usd == pytest.approx(0.00432)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.00108)
    assert finding.evidence["savings_high_usd"] == pytest.approx(0.00864)
    burst_ids = set(frame.filter(pl.col("timestamp").dt.hour() == 3)["row_id"])
    assert set(result.counterfactual["row_id"]) == burst_ids


def test_burst_on_too_few_days_is_no_schedule(prices: PriceBook) -> None:
    _, result = run(nightly("account_sync", days=2), prices)  # min_days 3
    assert result.findings == []
    _, result = run(nightly("account_sync", days=2), prices, min_days=2)
    assert [f.code for f in result.findings] == ["LA501"]


def test_unknown_stream_is_a_gap(prices: PriceBook) -> None:
    _, result = run(nightly("account_sync", stream=None), prices)
    (gap,) = result.gaps
    assert gap.missing_fields == ["stream"]
    assert gap.requests == 36
    assert gap.cost_at_stake_usd == pytest.approx(0.011664)  # the expected savings that rest on the assumption


def test_options_are_validated(prices: PriceBook) -> None:
    with pytest.raises(ConfigError, match="scheduled_share"):
        run(nightly("x"), prices, scheduled_share=[0.9, 0.5, 1.0])
    with pytest.raises(ConfigError, match="unknown option"):
        run(nightly("x"), prices, burst_gap=10)
    _, result = run(nightly("account_sync"), prices, scheduled_share=[0.5, 1.0, 1.0])
    assert result.findings[0].savings_usd == pytest.approx(0.01296)  # the whole 50 % discount


def test_requests_without_a_feature_are_a_gap(prices: PriceBook) -> None:
    # 5 unattributed requests an hour apart: no schedule, no name -> not flagged; their whole batch discount
    # (5 * $0.00036 = $0.0018) is what the missing feature name leaves unexamined.
    rows = [{**req("x", when(1, 8 + h)), "feature": None} for h in range(5)]
    _, result = run(rows, prices)
    assert result.findings == []
    (gap,) = result.gaps
    assert (gap.missing_fields, gap.requests) == (["feature"], 5)
    assert gap.cost_at_stake_usd == pytest.approx(0.0018)


def test_pipeline_reduced_frame_gives_the_full_frame_result(prices: PriceBook) -> None:
    # batching reads no text: the frame the scan keeps (features of every lever, texts cut) gives the same result
    texts = {"system_text": "Sync the account. " * 200, "prompt_text": "[user]\n" + "x" * 5000, "output_text": "ok"}
    interactive = [req("assistant", when(1 + d, h, 600 * k)) for d in range(3) for h in range(10, 20) for k in range(2)]
    rows = [
        *nightly("account_sync", **texts),
        *interactive,
        *nightly("assistant", per_night=10, hour=3),
        *({**req("x", when(1, 8 + h)), "feature": None} for h in range(5)),
    ]
    frame = canonical(rows)
    reduced = reduce_chunk(frame, [(lever, {}) for lever in available_levers()])
    assert is_reduced(reduced)
    ctx = LeverContext(prices=prices, options={})
    full, cut = LEVER.analyze(frame, ctx), LEVER.analyze(reduced, ctx)
    assert [(f.code, f.affected_requests) for f in full.findings] == [("LA501", 36), ("LA502", 30)]
    assert [(g.missing_fields, g.requests) for g in full.gaps] == [(["feature"], 5)]
    assert cut.findings == full.findings and cut.gaps == full.gaps
    assert cut.counterfactual.equals(full.counterfactual)
