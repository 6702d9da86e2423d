"""Ingest: every source format -> exact canonical token columns; request shape; attribution."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from auditor.ingest import FORMATS, IngestResult, read_paths
from auditor.ingest.values import short_hash
from auditor.schema import INGEST_SCHEMA, TOKEN_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(result: IngestResult) -> list[dict[str, Any]]:
    return list(result.frame.sort("source_file", "source_line").iter_rows(named=True))


def tokens(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in TOKEN_COLUMNS)


def test_schema_and_formats_registry(tmp_path: Path) -> None:
    result = read_paths([str(write_jsonl(tmp_path / "empty_ok.jsonl", []))])
    assert result.frame.schema == pl.Schema(INGEST_SCHEMA)
    assert {
        "canonical",
        "envelope",
        "openai_batch",
        "anthropic_batch",
        "litellm_payload",
        "litellm_spendlogs",
        "claude_code",
        "codex",
    } <= set(FORMATS)


def test_openai_chat_envelope_cached_and_reasoning_tokens(tmp_path: Path) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    record = {
        "timestamp": "2026-01-01T00:00:00Z",
        "latency_ms": 812,
        "request": {
            "model": "gpt-4.1-mini",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Capital"}, {"type": "text", "text": "of Peru?"}],
                },
            ],
            "tools": tools,
            "max_tokens": 100,
            "max_completion_tokens": 256,
            "temperature": 0.2,
            "response_format": {"type": "json_object"},
            "user": "u_123",
            "metadata": {"feature": "qa", "env": "prod"},
        },
        "response": {
            "id": "chatcmpl-AbC123",
            "object": "chat.completion",
            "created": 1767225600,
            "model": "gpt-4.1-mini-2025-04-14",
            "service_tier": "default",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Lima."}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 2048,
                "completion_tokens": 300,
                "prompt_tokens_details": {"cached_tokens": 1920},
                "completion_tokens_details": {"reasoning_tokens": 256},
            },
        },
        "metadata": {"tenant": "acme"},
    }
    [row] = rows(read_paths([str(write_jsonl(tmp_path / "chat.jsonl", [record]))]))
    # OpenAI prompt_tokens already include the 1,920 cached tokens; completion includes the 256 reasoning tokens.
    # No cache_write_tokens field -> both write columns unknown (null), not 0.
    assert tokens(row) == (2048, 1920, None, None, 300, 256)
    tools_json = json.dumps(tools, ensure_ascii=False, separators=(",", ":"))
    expected_prompt = f"[tools]\n{tools_json}\n[system]\nBe terse.\n[user]\nCapital\nof Peru?\n"
    assert row["prompt_text"] == expected_prompt
    assert row["prompt_hash"] == short_hash(expected_prompt)
    assert row["system_text"] == "Be terse." and row["system_hash"] == short_hash("Be terse.")
    assert row["last_user_text"] == "Capital\nof Peru?"
    assert row["messages_count"] == 2
    assert (row["provider"], row["model"]) == ("openai", "gpt-4.1-mini-2025-04-14")
    assert row["request_id"] == "chatcmpl-AbC123"
    assert (row["max_tokens"], row["temperature"], row["response_format"], row["tools_count"]) == (
        256,
        0.2,
        "json_object",
        1,
    )
    assert (row["service_tier"], row["batch"], row["status"], row["finish_reason"]) == ("standard", False, "ok", "stop")
    assert row["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC) and row["latency_ms"] == 812.0
    assert (row["feature"], row["tenant"], row["user"]) == ("qa", "acme", "u_123")
    assert row["tags"] == '{"env": "prod"}'  # feature/tenant were used for attribution; the rest are tags
    assert row["output_text"] == "Lima." and row["source_format"] == "envelope"


def test_anthropic_envelope_cache_read_and_1h_write(tmp_path: Path) -> None:
    tools = [{"name": "search", "input_schema": {"type": "object"}}]
    record = {
        "timestamp": 1767225600000,  # unix milliseconds
        "request": {
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Cite sources."}],
            "tools": tools,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "search", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
            ],
            "max_tokens": 1024,
            "output_config": {"format": {"type": "json_schema", "schema": {}}},
            "metadata": {"user_id": "u_9"},
        },
        "response": {
            "id": "msg_01X",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "Here"}, {"type": "text", "text": " it is"}],
            "stop_reason": "max_tokens",
            "usage": {
                "input_tokens": 21,
                "cache_creation_input_tokens": 1800,
                "cache_read_input_tokens": 14000,
                "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 1200},
                "output_tokens": 350,
                "service_tier": "priority",
            },
        },
        "feature": "search",
    }
    old_style = {
        "request": {"model": "claude-3-5-haiku", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
        "response": {
            "id": "msg_02",
            "type": "message",
            "model": "claude-3-5-haiku-20241022",
            "content": [],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 500, "output_tokens": 3},
        },
    }
    first, second = rows(read_paths([str(write_jsonl(tmp_path / "anthropic.jsonl", [record, old_style]))]))
    # Anthropic input excludes the cache: 21 uncached + 1,800 written (600 5m + 1,200 1h) + 14,000 read = 15,821.
    assert tokens(first) == (15821, 14000, 600, 1200, 350, None)
    tool_use = '{"type":"tool_use","id":"t1","name":"search","input":{}}'
    tool_result = '{"type":"tool_result","tool_use_id":"t1","content":"ok"}'
    assert first["prompt_text"] == (
        "[tools]\n" + json.dumps(tools, separators=(",", ":")) + "\n"
        "[system]\nYou are terse.\nCite sources.\n"
        "[user]\nhi\n"
        f"[assistant]\n{tool_use}\n"
        f"[user]\n{tool_result}\n"
    )
    assert first["system_text"] == "You are terse.\nCite sources."
    assert first["messages_count"] == 3 and first["last_user_text"] == tool_result
    assert (first["provider"], first["model"], first["user"], first["feature"]) == (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "u_9",
        "search",
    )
    assert (first["finish_reason"], first["response_format"], first["service_tier"]) == (
        "length",
        "json_schema",
        "priority",
    )
    assert first["output_text"] == "Here it is"
    assert first["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    # Only cache_creation_input_tokens: all of it is a 5-minute write. 10 + 500 = 510 input; read unknown.
    assert tokens(second) == (510, None, 500, 0, 3, None)
    assert second["request_id"] == "msg_02"


def test_reordered_tools_change_the_prompt_text(tmp_path: Path) -> None:
    a = {"name": "a", "input_schema": {"type": "object"}}
    b = {"name": "b", "input_schema": {"type": "object"}}

    def req(tools: list[Any]) -> dict[str, Any]:
        return {
            "request": {
                "model": "claude-x",
                "system": "s",
                "tools": tools,
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "q"}],
            }
        }

    first, second = rows(read_paths([str(write_jsonl(tmp_path / "t.jsonl", [req([a, b]), req([b, a])]))]))
    assert first["prompt_hash"] != second["prompt_hash"]
    assert first["system_hash"] == second["system_hash"]


def test_responses_api_bare_response_and_gemini(tmp_path: Path) -> None:
    responses = {
        "id": "resp_68af0c",
        "object": "response",
        "created_at": 1767225600.12,
        "completed_at": 1767225603.9,
        "status": "completed",
        "model": "o4-mini-2025-04-16",
        "service_tier": "flex",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "42"}]},
        ],
        "incomplete_details": None,
        "error": None,
        "usage": {
            "input_tokens": 5200,
            "input_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 100},
            "output_tokens": 730,
            "output_tokens_details": {"reasoning_tokens": 704},
        },
    }
    gemini = {
        "responseId": "mF3x",
        "modelVersion": "gemini-2.5-flash",
        "createTime": "2026-01-01T00:00:00.123Z",
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Paris."}]}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {
            "promptTokenCount": 3100,
            "cachedContentTokenCount": 2048,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 220,
            "toolUsePromptTokenCount": 10,
        },
    }
    resp, gem = rows(read_paths([str(write_jsonl(tmp_path / "bare.jsonl", [responses, gemini]))]))
    # Responses: inclusive; OpenAI cache_write_tokens go to the 5m column (100), 1h known to be 0.
    assert tokens(resp) == (5200, 4096, 100, 0, 730, 704)
    assert resp["latency_ms"] == pytest.approx((1767225603.9 - 1767225600.12) * 1000)
    assert (resp["finish_reason"], resp["service_tier"], resp["output_text"]) == ("stop", "flex", "42")
    # Gemini: input = prompt 3,100 + tool-use prompt 10; output = candidates 4 + thoughts 220 (thoughts on top).
    assert tokens(gem) == (3110, 2048, None, None, 224, 220)
    assert (gem["provider"], gem["finish_reason"], gem["output_text"]) == ("google", "length", "Paris.")


def test_defensive_rule_cache_larger_than_inclusive_input(tmp_path: Path) -> None:
    record = {
        "response": {
            "id": "c1",
            "object": "chat.completion",
            "model": "gpt-x",
            "choices": [],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 3000}},
        }
    }
    [row] = rows(read_paths([str(write_jsonl(tmp_path / "d.jsonl", [record]))]))
    # 3,000 cached > 1,000 "inclusive" input: the source was exclusive -> 1,000 + 3,000.
    assert tokens(row) == (4000, 3000, None, None, 5, None)


def test_error_records_and_text_without_usage(tmp_path: Path) -> None:
    records = [
        {
            "timestamp": "2026-01-01T00:00:01Z",
            "status": 429,
            "request": {"model": "gpt-4o", "messages": []},
            "error": {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}},
        },
        {
            "timestamp": "2026-01-01T00:00:02Z",
            "request": {"model": "claude-x", "max_tokens": 1, "system": "s", "messages": []},
            "response": {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        },
        {
            "timestamp": "2026-01-01T00:00:03Z",
            "status": "error",
            "error": "upstream timed out",
            "request": {"model": "gpt-4o", "messages": []},
        },
        {
            "timestamp": "2026-01-01T00:00:04Z",
            "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            "response": {
                "object": "chat.completion",
                "choices": [{"message": {"content": "hello"}, "finish_reason": "tool_calls"}],
            },
        },
    ]
    got = rows(read_paths([str(write_jsonl(tmp_path / "e.jsonl", records))]))
    assert [(r["status"], r["http_status"], r["error_type"]) for r in got] == [
        ("error", 429, "rate_limit"),
        ("error", None, "overloaded"),
        ("error", None, "timeout"),
        ("ok", None, None),
    ]
    assert all(tokens(r)[0] is None for r in got)  # no usage -> unknown, to be estimated later
    assert got[3]["output_text"] == "hello" and got[3]["finish_reason"] == "tool_calls"
    assert got[0]["request_id"] == "e.jsonl:1"  # fallback id: basename:line


def test_openai_batch_join_by_custom_id(tmp_path: Path) -> None:
    def body(n: int) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "max_tokens": 200, "messages": [{"role": "user", "content": f"doc {n}"}]}

    inputs = [
        {"custom_id": f"req-{n}", "method": "POST", "url": "/v1/chat/completions", "body": body(n)} for n in (1, 2, 3)
    ]

    def output(n: int, prompt: int) -> dict[str, Any]:
        return {
            "id": f"batch_req_{n}",
            "custom_id": f"req-{n}",
            "error": None,
            "response": {
                "status_code": 200,
                "request_id": f"req_api_{n}",
                "body": {
                    "id": f"chatcmpl-{n}",
                    "object": "chat.completion",
                    "created": 1767225600 + n,
                    "model": "gpt-4o-mini-2024-07-18",
                    "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": 95,
                        "prompt_tokens_details": {"cached_tokens": 0},
                        "completion_tokens_details": {"reasoning_tokens": 0},
                    },
                },
            },
        }

    expired = {
        "id": "batch_req_4",
        "custom_id": "req-4",
        "response": None,
        "error": {"code": "batch_expired", "message": "not executed in time"},
    }
    out_path = write_jsonl(tmp_path / "batch_output.jsonl", [output(2, 700), output(1, 812), expired])
    in_path = write_jsonl(tmp_path / "batch_input.jsonl", inputs)
    result = read_paths([str(out_path), str(in_path)])
    got = {r["request_id"]: r for r in rows(result)}
    assert set(got) == {"req_api_1", "req_api_2", "req-4"}
    one = got["req_api_1"]
    assert tokens(one) == (812, 0, None, None, 95, 0)
    assert (one["batch"], one["service_tier"], one["max_tokens"], one["prompt_text"]) == (
        True,
        "batch",
        200,
        "[user]\ndoc 1\n",
    )
    assert got["req_api_2"]["prompt_text"] == "[user]\ndoc 2\n"
    assert (got["req-4"]["status"], got["req-4"]["input_tokens"], got["req-4"]["batch"]) == ("error", None, True)
    assert result.ignored == {"openai_batch_input_joined": 2, "openai_batch_input_unmatched": 1}
    assert result.formats == {"openai_batch": 3}
    assert result.records_read == 6  # 3 output lines + 3 input lines


def test_openai_batch_real_litellm_fixture() -> None:
    result = read_paths([str(FIXTURES / "openai_batch_output_sample.jsonl")])
    got = rows(result)
    assert [tokens(r) for r in got] == [(20, 0, None, None, 10, 0), (22, 0, None, None, 10, 0)]
    assert [r["finish_reason"] for r in got] == ["stop", "length"]
    assert all(r["batch"] and r["provider"] == "openai" for r in got)
    assert got[0]["request_id"] == "07bc45ab4e7e26ac23a0c949973327e7"


def test_anthropic_batch_results(tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": "doc-17",
            "result": {
                "type": "succeeded",
                "message": {
                    "id": "msg_014V",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-haiku-4-5",
                    "content": [{"type": "text", "text": "Positive."}],
                    "stop_reason": "end_turn",
                    "usage": {
                        "input_tokens": 410,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 90,
                        "output_tokens": 3,
                        "service_tier": "batch",
                    },
                },
            },
        },
        {
            "custom_id": "doc-18",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
                },
            },
        },
        {"custom_id": "doc-19", "result": {"type": "expired"}},
    ]
    ok, errored, expired = rows(read_paths([str(write_jsonl(tmp_path / "results.jsonl", lines))]))
    assert tokens(ok) == (500, 90, 0, 0, 3, None)  # 410 + 0 written + 90 read
    assert (ok["batch"], ok["service_tier"], ok["request_id"], ok["status"]) == (True, "batch", "msg_014V", "ok")
    assert (errored["status"], errored["error_type"], errored["input_tokens"]) == ("error", "invalid_request", None)
    assert (expired["status"], expired["request_id"], expired["output_tokens"]) == ("error", "doc-19", None)


def test_litellm_real_fixtures() -> None:
    result = read_paths(
        [str(FIXTURES / "spend_logs_payload.abridged.json"), str(FIXTURES / "standard_logging_payload.abridged.json")]
    )
    spend, payload = rows(result)
    assert result.formats == {"litellm_payload": 1, "litellm_spendlogs": 1}
    for row in (spend, payload):
        # 10 prompt + 20 completion tokens; no details logged -> cache/reasoning unknown.
        assert tokens(row) == (10, None, None, None, 20, None)
        assert row["logged_cost_usd"] == pytest.approx(0.000225)
        assert (row["provider"], row["model"]) == ("openai", "gpt-4o")
        assert row["timestamp"] == datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC)
        assert row["latency_ms"] == pytest.approx(4.583)  # 46.851954 - 46.847371 s
    assert spend["session_id"] == "1234567890" and spend["prompt_text"] is None and spend["tools_count"] is None
    assert payload["prompt_text"] == "[user]\nHello, world!\n" and payload["stream"] is True
    assert payload["request_id"] == "chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f"


def test_litellm_spendlogs_anthropic_cache_and_attribution(tmp_path: Path) -> None:
    row_in = {
        "request_id": "chatcmpl-7d0b",
        "call_type": "acompletion",
        "api_key": "88dc",
        "spend": 0.004713,
        "total_tokens": 15971,
        "prompt_tokens": 15821,
        "completion_tokens": 150,
        "startTime": "2026-01-10T09:00:00.120Z",
        "endTime": "2026-01-10T09:00:03.480Z",
        "request_duration_ms": 3360,
        "model": "claude-sonnet-4-5-20250929",
        "custom_llm_provider": "anthropic",
        "user": "u_42",
        "end_user": "cust_9",
        "team_id": "team-search",
        "session_id": "sess-abc",
        "status": "success",
        "cache_hit": "False",
        "request_tags": '["feature:search","env:prod"]',
        "metadata": json.dumps(
            {
                "user_api_key_alias": "search-svc",
                "status": "success",
                "additional_usage_values": {
                    "cache_creation_input_tokens": 1800,
                    "cache_read_input_tokens": 14000,
                    "prompt_tokens_details": {"cached_tokens": 14000},
                },
            }
        ),
        "messages": "{}",
        "response": "{}",
    }
    cache_hit = dict(row_in, request_id="hit-1", cache_hit="True")
    result = read_paths([str(write_jsonl(tmp_path / "spend.jsonl", [row_in, cache_hit]))])
    [row] = rows(result)
    # LiteLLM prompt_tokens (current versions) = 21 + 1,800 + 14,000 = 15,821, already inclusive.
    assert tokens(row) == (15821, 14000, 1800, 0, 150, None)
    assert (row["provider"], row["latency_ms"], row["logged_cost_usd"]) == ("anthropic", 3360.0, 0.004713)
    assert (row["feature"], row["tenant"], row["user"], row["session_id"]) == (
        "search",
        "team-search",
        "u_42",
        "sess-abc",
    )
    assert row["tags"] == '{"env": "prod", "user_api_key_alias": "search-svc"}'
    assert result.ignored == {"litellm_cache_hit": 1}


def test_claude_code_transcript_dedupes_to_real_totals() -> None:
    result = read_paths([str(FIXTURES / "claude_session_segment.jsonl")])
    frame = result.frame
    assert frame.height == 10  # 25 usage lines, 10 distinct message ids
    sums = frame.select(pl.col(c).sum() for c in TOKEN_COLUMNS).row(0)
    # TraceLab README: input 3,039, cache write 21,086, cache read 394,068 (Anthropic-exclusive), output 9,423.
    assert sums == (3039 + 21086 + 394068, 394068, 21086, 0, 9423, 0)
    assert result.ignored["claude_code_duplicate"] == 15
    assert set(frame["model"]) == {"claude-opus-4-8"} and set(frame["provider"]) == {"anthropic"}
    assert set(frame["session_id"]) == {"2f8b1c4d-6a73-4e9b-91c0-5d7f3a8e2b46"}
    assert result.records_read == 64 and not result.skipped


def test_codex_rollout_real_totals() -> None:
    result = read_paths([str(FIXTURES / "codex_session_segment.jsonl")])
    frame = result.frame
    assert frame.height == 9
    # TraceLab README: 9 calls, input 95,819 of which 79,488 cached, output 1,912.
    assert frame.select(pl.col("input_tokens", "cache_read_tokens", "output_tokens").sum()).row(0) == (
        95819,
        79488,
        1912,
    )
    assert set(frame["model"]) == {"gpt-5.4"}
    assert result.records_read == 72 and not result.skipped


def test_codex_duplicate_token_count_and_cumulative_deltas(tmp_path: Path) -> None:
    def event(total_in: int, total_out: int, last: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "total_token_usage": {"input_tokens": total_in, "cached_input_tokens": 0, "output_tokens": total_out}
        }
        if last:
            info["last_token_usage"] = {"input_tokens": total_in, "cached_input_tokens": 0, "output_tokens": total_out}
        return {
            "timestamp": "2026-03-21T10:06:05Z",
            "type": "event_msg",
            "payload": {"type": "token_count", "info": info},
        }

    lines = [
        {"timestamp": "2026-03-21T10:05:59Z", "type": "session_meta", "payload": {"id": "s1"}},
        {"timestamp": "2026-03-21T10:05:59Z", "type": "turn_context", "payload": {"model": "gpt-5-codex"}},
        event(100, 10, True),
        event(100, 10, True),  # duplicate: the cumulative total did not change
        event(250, 14, False),  # no last_token_usage: 250 - 100 = 150 input, 14 - 10 = 4 output
    ]
    result = read_paths([str(write_jsonl(tmp_path / "rollout.jsonl", lines))])
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows(result)] == [(100, 10), (150, 4)]
    assert result.ignored == {"codex_event": 2, "codex_duplicate_token_count": 1}
