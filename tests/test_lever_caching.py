"""prompt_caching lever (LA1xx, LA801): constructed workloads with hand-computed answers, priced by the real tables.

claude-sonnet-4-5 (pricing/anthropic.yaml): input $3/MTok, 5m write 1.25x = $3.75, 1h write 2x = $6, read 0.1x =
$0.30, minimum 1,024 tokens, TTL options 300 s / 3,600 s. Prompts are built at exactly 4 bytes per token, with
the shared part a whole number of 256-byte blocks, so shared bytes / 4 = shared tokens exactly.
"""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
import pytest

from auditor.levers.base import LeverContext
from auditor.levers.caching import LEVER
from auditor.prices import PriceBook
from tests.helpers import at, canonical

MODEL = "claude-sonnet-4-5"
IN = 3e-6  # $ per input token
W5, W1, RD = 3.75e-6, 6e-6, 0.3e-6


def stable_prefix(total_bytes: int, first_line: str = "") -> str:
    body = "[system]\n" + first_line + "You are a careful assistant. " * 2000
    return body[: total_bytes - 8] + "\n[user]\n"


def request(prefix: str, i: int, t: float, **extra: Any) -> dict[str, Any]:
    tail = f"{i:04d}" + "q" * 508  # 512 unique bytes = 128 tokens, different from its first byte
    text = prefix + tail
    row = {
        "timestamp": at(t),
        "provider": "anthropic",
        "model": MODEL,
        "feature": "chat",
        "session_id": extra.pop("session_id", None),
        "prompt_text": text,
        "input_tokens": len(text) // 4,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 0,
    }
    row.update(extra)
    return row


def analyze(rows: list[dict[str, Any]], **options: Any) -> Any:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=PriceBook.load(), options=options))


def by_code(result: Any, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def test_shared_3000_token_prompt_with_gaps_shorter_and_longer_than_5m() -> None:
    # 12,288-byte stable prefix = 3,072 tokens; +128 unique tokens = 3,200 input per request; uncached $0.0096 each.
    prefix = stable_prefix(12288)
    times = [0, 60, 120, 1000, 1060]  # the 880 s gap breaks a 5 min TTL, not a 1 h one
    _, result = analyze([request(prefix, i, t) for i, t in enumerate(times)])
    # 5m: writes at t=0 and t=1000: 2 x (128*3e-6 + 3072*3.75e-6) + 3 x (128*3e-6 + 3072*0.3e-6) = 0.0277248
    # 1h: one write: (128*3e-6 + 3072*6e-6) + 4 x 0.0013056 = 0.018816 + 0.0052224 = 0.0240384  <- best
    # unbounded: one 5m-priced write 0.011904 + 0.0052224 = 0.0171264
    (la101,) = by_code(result, "LA101")
    assert la101.savings_usd == pytest.approx(0.048 - 0.0240384, abs=1e-9)
    assert la101.evidence["best_config_cost_usd"] == pytest.approx(0.0240384, abs=1e-9)
    assert la101.evidence["unbounded_cost_usd"] == pytest.approx(0.0171264, abs=1e-9)
    assert la101.evidence["stable_prefix_tokens_median"] == 3072
    assert la101.evidence["best_config"].endswith("TTL 1h")
    assert la101.evidence["potential_hit_rate"] == pytest.approx(4 * 3072 / 16000)
    assert la101.evidence["realized_hit_rate"] == 0.0
    assert result.confidence == "simulated"
    cf = result.counterfactual.sort("row_id")
    # The first request's 1h write costs more than it saves: savings 0.0239616 spread over the 4 readers.
    assert cf["row_id"].to_list() == [1, 2, 3, 4]
    assert [float(x) for x in cf["cost_after_usd"]] == pytest.approx([0.0096 - 0.0239616 / 4] * 4)
    # low: 5m TTL, breakpoint at the end of each prompt: readers pay 3072*0.3e-6 + 128*3.75e-6 = 0.0030016,
    # the t=1000 request re-writes (no savings); per request never below the expected cost 0.0036096
    expected_after = 0.0096 - 0.0239616 / 4
    low = [float(x) for x in cf["cost_after_low_savings_usd"]]
    assert low == pytest.approx([expected_after, expected_after, 0.0096, expected_after])
    total_high = float(cf["cost_after_high_savings_usd"].sum()) + 0.0096
    assert total_high == pytest.approx(0.0171264)


def test_all_gaps_within_5m_keep_the_5m_ttl() -> None:
    prefix = stable_prefix(12288)
    _, result = analyze([request(prefix, i, 60 * i) for i in range(4)])
    (la101,) = by_code(result, "LA101")
    # 5m: one write 0.011904 + 3 reads 3 x 0.0013056 = 0.0158208; 1h would cost 0.018816 + 0.0039168 = 0.0227328
    assert la101.evidence["best_config_cost_usd"] == pytest.approx(0.0158208, abs=1e-9)
    assert la101.evidence["best_config"].endswith("TTL 5m")


def test_anthropic_writes_cost_more_than_they_save() -> None:
    # Logged: every request writes its 3,072-token prefix at 5m, gaps of 4,000 s: nothing is ever read.
    prefix = stable_prefix(12288)
    rows = [request(prefix, i, 4000 * i, cache_write_5m_tokens=3072) for i in range(3)]
    frame, result = analyze(rows)
    # logged: 3 x (128*3e-6 + 3072*3.75e-6) = 0.035712; uncached 3 x 0.0096 = 0.0288; no TTL option gets a hit
    assert float(frame["cost_usd"].sum()) == pytest.approx(0.035712)
    (la105,) = by_code(result, "LA105")
    assert la105.savings_usd == pytest.approx(0.035712 - 0.0288, abs=1e-9)
    assert la105.evidence["best_config"] == "no caching"
    assert not by_code(result, "LA101")
    assert float(result.counterfactual["cost_after_usd"].sum()) == pytest.approx(0.0288)


def test_timestamp_in_first_line_is_a_cache_buster() -> None:
    rows = []
    for i in range(6):
        first = f"Current time: 2026-10-01T12:{i:02d}:00Z\n"  # same length every time
        rows.append(request(stable_prefix(12288, first), i, 60 * i))
    _, result = analyze(rows)
    (la102,) = by_code(result, "LA102")
    ev = la102.evidence
    assert ev["volatile_kind"] == "timestamp"
    assert ev["segment"] == "system"
    assert ev["line_in_segment"] == 1
    assert ev["char_offset"] == len("[system]\nCurrent time: ")  # 23
    assert ev["token_offset"] == 23 // 4
    assert "<timestamp>" in ev["example"] and "2026-10-01" not in ev["example"]
    assert ev["requests_with_buster"] == 6
    # As logged nothing is shared (the first block differs); fixed, 3,072 - 1 block... every request shares the
    # masked prefix up to the unique tail. Best with the fix, 5m: one write + 5 reads, all savings are LA102's.
    assert la102.savings_usd > 0
    assert not by_code(result, "LA101")


def test_prefix_just_below_the_minimum() -> None:
    # 3,584 shared bytes = 896 tokens < 1,024; input 1,024 tokens each, gaps 10 s
    prefix = stable_prefix(3584)
    _, result = analyze([request(prefix, i, 10 * i) for i in range(4)])
    assert not by_code(result, "LA101")
    assert result.counterfactual.height == 0
    (la103,) = by_code(result, "LA103")
    assert la103.evidence["shared_prefix_tokens_median"] == 896
    assert la103.evidence["requests_below_minimum"] == 4
    # padded by 128 tokens to 1,024: first 1024*3e-6 + 128*3e-6 + 1024*0.75e-6 = 0.004224, then
    # 3 x (0.003072 + 0.000384 - 1024*2.7e-6) = 3 x 0.0006912; vs 4 x 0.003072 uncached
    assert la103.savings_usd == pytest.approx(4 * 0.003072 - (0.004224 + 3 * 0.0006912), abs=1e-9)


def test_token_only_rows_are_measured_and_reported_as_a_gap() -> None:
    # No prompt text. Session a: write then a read 60 s later. Session b: one write, never read.
    base = {"provider": "anthropic", "model": MODEL, "feature": "chat", "output_tokens": 0, "input_tokens": 3200}
    rows = [
        {**base, "timestamp": at(0), "session_id": "a", "cache_write_5m_tokens": 3072},
        {**base, "timestamp": at(60), "session_id": "a", "cache_read_tokens": 3072},
        {**base, "timestamp": at(120), "session_id": "b", "cache_write_5m_tokens": 3072},
    ]
    _, result = analyze(rows)
    assert result.confidence == "measured"
    (la105,) = by_code(result, "LA105")
    assert la105.savings_usd == pytest.approx(3072 * (W5 - IN), abs=1e-12)  # 0.002304 premium, never read
    assert la105.affected_requests == 1
    assert la105.evidence["realized_hit_rate"] == pytest.approx(3072 / 9600)
    (gap,) = result.gaps
    assert gap.missing_fields == ["prompt_text"] and gap.requests == 3
    assert gap.cost_at_stake_usd == pytest.approx(3 * 3200 * (IN - RD))  # all input read from cache
    assert [f.code for f in result.findings if f.lever == "data"] == ["LA801"]
    cf = result.counterfactual
    assert cf.height == 1 and float(cf["cost_after_usd"][0]) == pytest.approx(3200 * IN)


def test_ttl_gap_misses_in_token_only_sessions() -> None:
    # Session writes 3,072 tokens, comes back after 900 s (> 5m, < 1h) and re-writes them.
    base = {"provider": "anthropic", "model": MODEL, "feature": "chat", "output_tokens": 0, "input_tokens": 3200}
    rows = [
        {**base, "timestamp": at(0), "session_id": "a", "cache_write_5m_tokens": 3072},
        {**base, "timestamp": at(900), "session_id": "a", "cache_write_5m_tokens": 3072},
        {**base, "timestamp": at(1800), "session_id": "a", "cache_write_5m_tokens": 3072},
    ]
    _, result = analyze(rows)
    (la104,) = by_code(result, "LA104")
    assert la104.affected_requests == 2
    # 1h: 2 misses become reads: 2*3072*(3.75-0.3)e-6 = 0.0211968; minus 1h premium on all 3 writes
    # 3*3072*(6-3.75)e-6 = 0.020736  -> 0.0004608
    assert la104.savings_usd == pytest.approx(2 * 3072 * (W5 - RD) - 3 * 3072 * (W1 - W5), abs=1e-12)


def test_unpriced_or_uncacheable_models_are_ignored() -> None:
    rows = [{"timestamp": at(i), "provider": "x", "model": "no-such-model", "input_tokens": 5000, "output_tokens": 1,
             "prompt_text": "p" * 20000} for i in range(3)]  # fmt: skip
    _, result = analyze(rows)
    assert result.findings == [] and result.counterfactual.height == 0 and result.gaps == []


def test_bad_option_is_a_config_error() -> None:
    from auditor.config import ConfigError

    with pytest.raises(ConfigError, match="block_bytes"):
        analyze([request(stable_prefix(12288), 0, 0)], block_bytes=0)


def test_counterfactual_never_exceeds_cost() -> None:
    prefix = stable_prefix(12288)
    frame, result = analyze([request(prefix, i, 250 * i) for i in range(8)])
    joined = result.counterfactual.join(frame.select("row_id", "cost_usd"), on="row_id")
    for column in ("cost_after_usd", "cost_after_low_savings_usd", "cost_after_high_savings_usd"):
        assert joined.select((pl.col(column) <= pl.col("cost_usd")).all()).item()
    assert joined.select(
        (pl.col("cost_after_high_savings_usd") <= pl.col("cost_after_usd") + 1e-12).all()
        & (pl.col("cost_after_usd") <= pl.col("cost_after_low_savings_usd") + 1e-12).all()
    ).item()


def test_reordered_tool_json_is_a_cache_buster() -> None:
    # Every request lists the same three tools in another order: as logged no two prompts share a prefix.
    tools = ['{"name":"search","description":"Search"}', '{"name":"fetch","description":"Fetch"}', '{"name":"x"}']
    rows = []
    for i, order in enumerate(list(itertools.permutations(tools))[:4]):
        prefix = "[tools]\n[" + ",".join(order) + "]\n" + stable_prefix(12288)
        rows.append(request(prefix, i, 30 * i))
    _, result = analyze(rows)
    (la102,) = by_code(result, "LA102")
    assert la102.evidence["volatile_kind"] == "json-order"
    assert la102.evidence["segment"] == "tools"
