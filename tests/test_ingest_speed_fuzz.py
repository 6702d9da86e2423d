"""The faster JSONL ingest (issue 7) reads every record as the code before it did.

The fuzz expectation (tests/fixtures/ingest_speed/fuzz_expected.*) was written by the ingest code of commit 583f55f
(before these changes), with one fix applied to it: its big-integer guard looked for 20-digit runs, so orjson read
-9223372036854775809 (19 digits) as a float; the guard now covers it and json reads it exactly.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from auditor.config import DEFAULT_ATTRIBUTION
from auditor.ingest import envelope, read_paths, shape
from auditor.ingest.context import RecordContext
from auditor.ingest.detect import detect
from auditor.ingest.reader import line_record
from auditor.ingest.values import RecordError, short_hash, short_hash_after
from tests.test_ingest_speed_fuzz_cases import fuzz_lines

EXPECTED = Path(__file__).parent / "fixtures" / "ingest_speed"


def test_fuzzed_envelopes_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(line.encode() for line in fuzz_lines(1500)) + b'\n{"model": "\xff"}\n')
    result = read_paths([str(path)], workers=1)
    expected = pl.read_parquet(EXPECTED / "fuzz_expected.parquet")
    meta = json.loads((EXPECTED / "fuzz_expected.json").read_text(encoding="utf-8"))
    assert expected.height > 1000 and len(meta["skipped"]) > 100  # the fuzz reaches both outcomes
    assert_frame_equal(result.frame.drop("source_file"), expected)
    assert [[s.line, s.reason] for s in result.skipped] == meta["skipped"]
    assert (result.formats, result.ignored, result.records_read) == (
        meta["formats"],
        meta["ignored"],
        meta["records_read"],
    )


NUMBERS = [
    "18446744073709551615",  # 2**64 - 1: orjson's largest exact integer
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1e19",
    "10000000000000000000.0",
    "-0",
    "9007199254740993",
]


@pytest.mark.parametrize("literal", NUMBERS)
def test_line_values_are_json_values(literal: str) -> None:
    for raw in (literal, f'{{"a": [{literal}], "b": "x"}}', f'{{"s": "{literal}", "n": {literal}}}'):
        record = line_record(1, raw.encode())
        assert record is not None and record.error is None
        expected = json.loads(raw)
        assert record.obj == expected and repr(record.obj) == repr(expected)  # repr: int stays int, -0 stays 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"t": "C++ and a+b", "n": 18446744073709551616}',
        '{"t": "C++", "x": 1e+5, "n": -9223372036854775809}',
        '{"t": "1e+19 is text", "n": 12345678901234567890123}',
        '{"t": "1e+19 is text", "n": 1e+19}',
        '{"t": "\\u002b", "n": [1.5e+300, 7]}',
    ],
)
def test_plus_signs_in_text_do_not_hide_big_integers(raw: str) -> None:
    record = line_record(1, raw.encode())
    assert record is not None and repr(record.obj) == repr(json.loads(raw))


def test_deep_nesting_falls_back_to_the_byte_scan() -> None:
    raw = "[" * 300 + "18446744073709551616" + "]" * 300  # deeper than orjson.dumps writes
    record = line_record(1, raw.encode())
    assert record is not None and record.obj == json.loads(raw)


def test_orjson_writes_big_floats_with_an_exponent_sign() -> None:
    """The guard's premise: every float of magnitude >= 2**63 (what orjson makes of an integer it cannot hold)
    comes out of orjson.dumps with "e+"."""
    rng = random.Random(3)
    values = [2.0**63, -(2.0**63), 1e19, 1.8446744073709552e19, 1e308, -1.7976931348623157e308]
    values += [rng.uniform(1, 10) * 10.0**e * rng.choice((1, -1)) for e in range(19, 308) for _ in range(5)]
    assert all(math.isfinite(v) and abs(v) >= 2.0**63 for v in values)
    assert all(b"e+" in orjson.dumps(v) for v in values)


PROMPT_REQUESTS = [
    (shape.CHAT, {"messages": [{"role": "system", "content": "S é"}, {"role": "user", "content": "q"}]}),
    (shape.CHAT, {"messages": [{"role": "developer", "content": "D"}, {"role": "user", "content": "q"}]}),
    (shape.CHAT, {"messages": [{"role": "system", "content": "A"}, {"role": "system", "content": "B"}]}),
    (shape.CHAT, {"messages": [{"role": "system", "content": "S"}], "tools": [{"name": "t"}]}),
    (shape.CHAT, {"messages": [{"role": "user", "content": "no system"}]}),
    (shape.ANTHROPIC, {"system": [{"type": "text", "text": "S"}], "messages": [{"role": "user", "content": "😀"}]}),
    (shape.ANTHROPIC, {"system": "S", "messages": []}),
    (shape.RESPONSES, {"instructions": "I", "input": "hello"}),
    (shape.GEMINI, {"systemInstruction": {"parts": [{"text": "G"}]}, "contents": [{"parts": [{"text": "x"}]}]}),
]


@pytest.mark.parametrize(("kind", "request_body"), PROMPT_REQUESTS)
def test_prompt_hash_is_the_hash_of_the_prompt(kind: str, request_body: dict[str, object]) -> None:
    for _ in range(2):  # the second time from the cached hash state
        fields = shape.request_fields(request_body, kind)
        assert fields["prompt_text"] is not None
        assert fields["prompt_hash"] == short_hash(fields["prompt_text"])


def test_short_hash_after() -> None:
    assert short_hash_after("system", "Be terse.", "[user]\nhi\n") == short_hash("[system]\nBe terse.\n[user]\nhi\n")
    assert short_hash_after("developer", "é", "") == short_hash("[developer]\né\n")


def test_detect_memo_keeps_value_tests() -> None:
    """Records with the same keys in the same order are detected by their values, not by the memo."""
    assert detect({"request": {"model": "m"}, "status": 200}) == "envelope"
    assert detect({"request": None, "status": 200}) == "envelope"  # `request` present with a status
    assert detect({"request": None, "other": 1}) is None
    assert detect({"request": 3, "other": 1}) is None
    assert detect({"request": "{}", "other": 1}) == "envelope"
    assert detect({"type": "turn_context", "payload": {}}) == "codex"
    assert detect({"type": "turn_context", "payload": 1}) is None
    assert detect({"type": "error"}) == "envelope"
    assert detect({"model": "m", "input_tokens": 1}) == "canonical"
    assert detect({"model": "m", "input_tokens": 1, "request": {}}) == "envelope"


def test_envelope_row_matches_hand_values() -> None:
    """One envelope, its columns worked out by hand (the hash by hashing the prompt text written out here)."""
    obj = orjson.loads(
        b'{"timestamp":"2026-10-01T00:00:00.5Z","request":{"model":"claude-x","max_tokens":9,"system":"S",'
        b'"messages":[{"role":"user","content":"q"}],"metadata":{"user_id":"u1"}},"status":200,'
        b'"metadata":{"feature":"f"},"response":{"id":"m1","type":"message","model":"claude-x-1",'
        b'"content":[{"type":"text","text":"a"}],"stop_reason":"end_turn","usage":{"input_tokens":5,'
        b'"cache_read_input_tokens":2,"output_tokens":3}}}'
    )
    ctx = RecordContext(file="/x/f.jsonl", line=4, attribution=DEFAULT_ATTRIBUTION)
    row = envelope.parse(obj, ctx)
    assert isinstance(row, dict)
    assert row["prompt_text"] == "[system]\nS\n[user]\nq\n"
    assert row["prompt_hash"] == short_hash("[system]\nS\n[user]\nq\n")
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (7, 2, 3)
    assert (row["feature"], row["user"], row["tags"]) == ("f", "u1", None)
    assert row["timestamp"].isoformat() == "2026-10-01T00:00:00.500000+00:00"


def test_skip_reason_order_is_kept() -> None:
    """The record's own timestamp is read before the response now; a bad one must still lose to the response's
    problems, as it did when it was read after them."""
    ctx = RecordContext(file="f.jsonl", line=1, attribution=DEFAULT_ATTRIBUTION)
    bad_usage = {"object": "chat.completion", "choices": [], "usage": {"prompt_tokens": -1}}
    with pytest.raises(RecordError, match=r"response\.usage\.prompt_tokens is -1,"):
        envelope.parse({"timestamp": "yesterday", "response": bad_usage}, ctx)
    with pytest.raises(RecordError, match=r"^timestamp is 'yesterday', expected"):
        envelope.parse({"timestamp": "yesterday", "response": {"object": "chat.completion", "choices": []}}, ctx)
    with pytest.raises(RecordError, match=r"status is 1\.5, expected an integer"):
        envelope.parse({"timestamp": "yesterday", "status": 1.5, "request": {"messages": []}}, ctx)
    with pytest.raises(RecordError, match=r"response\.created is -5\.0,"):  # still checked when the record has a time
        envelope.parse({"timestamp": "2026-01-01T00:00:00Z", "response": {"choices": [], "created": -5}}, ctx)
    row = envelope.parse({"response": {"choices": [], "created": 1790000000}}, ctx)
    assert isinstance(row, dict) and row["timestamp"] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=1790000000
    )
