"""Seeded envelope fuzz (no tests here; test_ingest_speed_fuzz.py uses it): mutated copies of real envelope records
(missing and odd fields, nulls, wrong types, unicode, big ints, floats as ints, duplicate keys, odd timestamps, broken
lines)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

BASES: list[dict[str, Any]] = [
    {  # Anthropic Messages, system as blocks, metadata user
        "timestamp": "2026-10-01T00:00:00.015986Z",
        "request": {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "Sum 2 and 3."},
                {"role": "assistant", "content": [{"type": "text", "text": "5"}]},
                {"role": "user", "content": [{"type": "text", "text": "And 4?"}, {"type": "image", "source": {}}]},
            ],
            "temperature": 0.3,
            "metadata": {"user_id": "u_acme_031"},
        },
        "latency_ms": 3733.0,
        "metadata": {"feature": "kb_answer", "tenant": "acme", "user": "u_acme_031", "session_id": "s7-1"},
        "status": 200,
        "response": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "9"}, {"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 281,
                "cache_creation_input_tokens": 547,
                "cache_read_input_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 547, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 151,
                "service_tier": "standard",
            },
        },
    },
    {  # OpenAI Responses, instructions + input list, tools
        "timestamp": "2026-10-01T00:00:01Z",
        "request": {
            "model": "gpt-5-mini",
            "instructions": "Answer in JSON.",
            "input": [{"role": "user", "content": "Hi é 😀"}, {"type": "function_call_output", "output": "42"}],
            "max_output_tokens": 512,
            "user": "u_2",
            "tools": [{"type": "function", "name": "f", "parameters": {"x": 1.5}}],
            "text": {"format": {"type": "json_schema"}},
            "service_tier": "flex",
        },
        "latency_ms": 812.5,
        "tags": ["feature:search", "prod"],
        "status": 200,
        "response": {
            "id": "resp_1",
            "object": "response",
            "created_at": 1790000000,
            "completed_at": 1790000002,
            "status": "completed",
            "model": "gpt-5-mini-2025-08-07",
            "output": [
                {"type": "reasoning", "summary": []},
                {"type": "message", "content": [{"type": "output_text", "text": '{"a": 1}'}]},
            ],
            "usage": {
                "input_tokens": 900,
                "input_tokens_details": {"cached_tokens": 512},
                "output_tokens": 300,
                "output_tokens_details": {"reasoning_tokens": 128},
            },
            "service_tier": "default",
        },
    },
    {  # OpenAI Chat, leading system message, stream, response_format
        "timestamp": 1790000005.25,
        "request": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "w"}}]},
                {"role": "tool", "content": "sunny"},
                {"role": "user", "content": "Thanks"},
            ],
            "max_completion_tokens": 64,
            "temperature": 1,
            "user": "u_3",
            "stream": True,
            "response_format": {"type": "json_object"},
        },
        "duration_ms": 120,
        "metadata": {"endpoint": "chat", "org": "o1", "note": "x"},
        "status": "200",
        "response": {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1790000005,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"content": "Sunny.", "refusal": None}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "service_tier": "default",
        },
    },
    {  # an error record without a response
        "timestamp": "2026-10-01 00:00:03+02:00",
        "request": {"model": "claude-haiku-4-5", "max_tokens": 100, "system": "S", "messages": []},
        "status": 429,
        "error": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
        "metadata": {"feature": "f", "user_id": "u9"},
    },
    {  # Gemini body
        "timestamp": "2026-10-01T00:00:04+00:00",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "hi"}, {"text": "t", "thought": True}]}],
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 99, "responseMimeType": "application/json"},
        },
        "response": {
            "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 2},
            "modelVersion": "gemini-2.5-flash",
        },
    },
    {  # a bare Chat response
        "id": "chatcmpl-bare",
        "object": "chat.completion",
        "created": 1790000009,
        "model": "gpt-4o",
        "choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        "metadata": {"feature": "bare"},
    },
]

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "\u3000",
    0,
    -1,
    1,
    3.0,
    2.5,
    -0.0,
    1e20,
    2**53 + 1,
    2**63,
    2**64,
    2**64 + 1,
    -(2**63) - 1,
    10**30,
    True,
    False,
    [],
    {},
    [1, "a"],
    {"type": "text", "text": "t"},
    "é",
    "😀",
    "\u2028x",
    "12345678901234567890123",
    "2026-10-01T00:00:00Z",
    "1790000000",
    "nan",
    "200",
    "error",
    "json_object",
    "batch",
]

RAW_LINES = [
    "",
    "   ",
    "not json",
    '{"timestamp": NaN, "response": {"object": "chat.completion", "choices": []}}',
    '{"timestamp": 1e400, "response": {"object": "chat.completion", "choices": []}}',
    '{"timestamp": Infinity}',
    "[1, 2]",
    '"just a string"',
    '{"a": 1',
    '{"response": {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 18446744073709551617}}}',
    '{"response": {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": -9223372036854775809}}}',
    '{"response": {"object": "chat.completion", "choices": [], "id": 123456789012345678901234567890}}',
    '{"response": {"object": "chat.completion", "choices": [], "id": "99999999999999999999"}}',
    '{"status": 500, "status": 200, "response": {"object": "chat.completion", "choices": [], "id": "dup"}}',
    '{"response": {"object": "chat.completion", "choices": [], "model": "a\\u00e9\\ud83d\\ude00"}}',
    '{"response": {"object": "chat.completion", "choices": [], "model": "bad\xff"}}',
    '{"response": {"object": "chat.completion", "choices": [], "created": 1e300}}',
    '{"response": {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": 1.0e1}}}',
    '{"request": {"model": "gpt-4o", "messages": [], "max_tokens": 1E2}, "status": 200, "error": null}',
    "\x00binary",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(_paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(_paths(inner, (*prefix, index)))
    return found


def _mutate(record: dict[str, Any], rng: random.Random) -> None:
    path = rng.choice(_paths(record))
    parent: Any = record
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = rng.random()
    if action < 0.2 and isinstance(parent, dict):
        del parent[last]
    elif action < 0.3 and isinstance(parent, dict):
        parent[rng.choice(["user_id", "tenant", "session", "tags", "extra", "type", "id", "error"])] = rng.choice(
            ODD_VALUES
        )
    elif action < 0.4:
        old = parent[last]
        parent[last] = json.dumps(old) if isinstance(old, dict | list) else old  # JSON held as a string
    else:
        parent[last] = copy.deepcopy(rng.choice(ODD_VALUES))


def fuzz_lines(count: int, seed: int = 7) -> list[str]:
    """`count` JSONL lines: mutated base records, and now and then a hand-written odd line."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        if rng.random() < 0.06:
            lines.append(rng.choice(RAW_LINES))
            continue
        record = copy.deepcopy(rng.choice(BASES))
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            _mutate(record, rng)
        if isinstance(record.get("type"), dict | list):
            record["type"] = "odd"  # an unhashable top-level type crashes format detection (codex.is_event): known
        line = json.dumps(record, ensure_ascii=rng.random() < 0.3)
        if rng.random() < 0.05 and line.startswith("{") and len(line) > 2:
            line = '{"status": "failed", ' + line[1:]  # a duplicate key when the record has one: the last wins
        lines.append(line)
    return lines
