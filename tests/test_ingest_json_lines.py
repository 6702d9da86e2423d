"""JSONL lines read through orjson give exactly what json.loads gives, and json's own messages when they fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.ingest import read_paths
from auditor.ingest.reader import line_record

SAMPLE_LOGS = Path(__file__).resolve().parents[1] / "sample_logs"

LINES = [
    b'{"a": 1, "a": 2}',  # duplicate key: the last wins in both
    b'{"n": 18446744073709551615, "big": 18446744073709551616123}',  # past 2**64: orjson would make a float
    b'{"s": "\\ud83d\\ude00 \\uD83D\\uDE00"}',  # an escaped surrogate pair is one character in both
    b'{"x": NaN, "y": Infinity}',  # json extensions orjson refuses
    b'{"f": 1e400}',  # json gives inf
    b'{"t": "caf\xc3\xa9 \\u00e9", "z": -0.0, "e": 1.5E-7}',
    b'{"deep": [[[[{"k": null}]]]]}',
]


@pytest.mark.parametrize("raw", LINES)
def test_values_are_those_of_json(raw: bytes) -> None:
    record = line_record(3, raw)
    assert record is not None and record.error is None
    expected = json.loads(raw.decode())
    assert repr(record.obj) == repr(expected)  # repr: nan != nan, and 1 == 1.0 would hide an int turned float
    if b"big" in raw:
        assert record.obj["big"] == 18446744073709551616123 and isinstance(record.obj["big"], int)


def test_failures_keep_json_messages() -> None:
    bad = line_record(4, b'{"a": 1,}')
    assert bad is not None and bad.error is not None and bad.error.startswith("malformed JSON: Expecting property name")
    latin = line_record(5, b'{"a": "caf\xe9"}')
    assert latin is not None and latin.error == "not valid UTF-8 text (invalid continuation byte at byte 10)"


def test_lone_surrogates_become_replacement_characters() -> None:
    # json accepts a lone surrogate escape (an emoji cut in half by a log writer) but the str cannot be encoded,
    # hashed or put in a polars column: it becomes U+FFFD, keys included; the pair next to it stays an emoji.
    record = line_record(2, b'{"s": "cut \\ud83d| pair \\ud83d\\ude00", "k\\uDC00": ["\\udfff"]}')
    assert record is not None and record.error is None
    assert record.obj == {"s": "cut \ufffd| pair \U0001f600", "k\ufffd": ["\ufffd"]}


def test_a_scan_reads_records_with_lone_surrogates_and_odd_type_fields(tmp_path: Path) -> None:
    envelope = json.loads((SAMPLE_LOGS / "app_requests.jsonl").read_text().splitlines()[0])
    envelope["request"]["messages"][-1]["content"] = "half \ud83d emoji"
    prompt_tokens = envelope["response"]["usage"]["prompt_tokens"]
    lines = [
        json.dumps(envelope),  # ensure_ascii writes the lone surrogate as the escape \ud83d
        json.dumps({"type": {"nested": 1}, "x": 1}),  # "type" holding an object once crashed format detection
        json.dumps({"type": [1], "x": 1}),
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "log.json").write_text("[" + lines[0] + "]")
    for name in ("log.jsonl", "log.json"):
        result = read_paths([str(tmp_path / name)])
        assert result.frame["last_user_text"].to_list() == ["half \ufffd emoji"]
        assert result.frame["input_tokens"].to_list() == [prompt_tokens]
    skipped = read_paths([str(tmp_path / "log.jsonl")]).skipped
    assert [(s.line, s.reason.startswith("record of no known format (keys: type, x)")) for s in skipped] == [
        (2, True),
        (3, True),
    ]
