"""JSONL lines read through orjson give exactly what json.loads gives, and json's own messages when they fail."""

from __future__ import annotations

import json

import pytest

from auditor.ingest.reader import line_record

LINES = [
    b'{"a": 1, "a": 2}',  # duplicate key: the last wins in both
    b'{"n": 18446744073709551615, "big": 18446744073709551616123}',  # past 2**64: orjson would make a float
    b'{"s": "\\ud800"}',  # lone surrogate: orjson refuses, json keeps it
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
