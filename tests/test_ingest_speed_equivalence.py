"""The per-record ingest shortcuts (issue 7) give what the straightforward code they replace gives."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from auditor.config import DEFAULT_ATTRIBUTION
from auditor.ingest import envelope, shape
from auditor.ingest.context import RecordContext
from auditor.ingest.outcome import http_code
from auditor.ingest.values import RecordError, compact_json, integer, number, text, token_count
from auditor.schema import INGEST_SCHEMA, rows_to_frame

# Every character str.strip() removes (the Unicode whitespace set), plus some it keeps.
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).strip() == ""]
TRICKY = ['"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "\u2028", "😀", "\ud800", "/", " "]


def test_text_blank_means_only_whitespace() -> None:
    assert len(WHITESPACE) > 20
    for blank in ("", *WHITESPACE, " \n\t\u3000"):
        assert text(blank) is None
    for kept in ("a", " a ", "\u200b", "x\n"):  # U+200B is not whitespace for str.strip()
        assert text(kept) == kept
    assert text(3) == "3" and text(1.5) == "1.5" and text(True) is None and text([]) is None


def test_number_fast_path_keeps_errors_and_exactness() -> None:
    assert number(3, "f") == 3.0 and isinstance(number(3, "f"), float)
    with pytest.raises(RecordError, match="f is inf, expected a finite number"):
        number(float("inf"), "f")
    with pytest.raises(RecordError, match="expected a number"):
        number(True, "f")
    assert token_count(5, "t") == 5
    with pytest.raises(RecordError, match="t is -1, token counts cannot be negative"):
        token_count(-1, "t")


def test_max_tokens_shortcut_equals_integer() -> None:
    for value in (0, 1, 2**53, -(2**53), 2**53 + 1, 2**60 + 1):
        assert shape.request_fields({"messages": [], "max_tokens": value}, shape.CHAT)["max_tokens"] == integer(
            value, "max_tokens"
        )
    assert integer(2**60 + 1, "x") == 2**60  # the float round trip the shortcut must not skip for big values


def test_http_code_shortcut() -> None:
    assert [http_code(v, "status") for v in (200, 404, 999, "201", "ok", None, True)] == [200, 404, 999, 201] + [
        None
    ] * 3
    assert http_code(2**60 + 1, "status") == 2**60  # large values still go through integer()


def test_tags_json_is_json_dumps() -> None:
    tags = {f"k{a}{b}": f"{b}v{a}" for a in TRICKY for b in TRICKY[:5]}
    row = shape.attribute([tags], [tags], {"feature": ["nope"]})
    assert row["tags"] == json.dumps(tags, sort_keys=True, ensure_ascii=False)


def test_compact_json_is_json_dumps() -> None:
    value: Any = {"b": [1, 2.5, None, True], "a": "é\n" + "".join(TRICKY), "c": {"x": float("nan")}}
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact_json({"when": datetime(2024, 1, 1)})


def test_attribute_first_map_first_key_and_tags() -> None:
    top = {"feature": " ", "org": "acme", "other": "x"}
    meta = {"endpoint": "search", "feature": "chat", "team": "t1", "note": "n", "blank": " ", "num": 3}
    extra = {"feature": "ignored", "note": "second", "user_id": "u1"}
    attribution = {"feature": ["feature", "endpoint"], "tenant": ["team", "org"], "user": ["user_id"]}
    row = shape.attribute([top, meta, extra], [meta, extra], attribution, {"user": "fallback", "tenant": "f"})
    # feature: top's is blank, meta has both keys -> the first configured key; tenant: top's org comes first
    assert (row["feature"], row["tenant"], row["user"]) == ("chat", "acme", "u1")
    # used keys (meta.feature, extra.user_id) are not tags; meta.endpoint/team are; the first map wins a key
    expected = {"endpoint": "search", "team": "t1", "note": "n", "feature": "ignored"}
    assert row["tags"] == json.dumps(expected, sort_keys=True, ensure_ascii=False)
    assert shape.attribute([None], [None], attribution, {"user": "fb"}) == {
        "feature": None,
        "tenant": None,
        "user": "fb",
        "tags": None,
    }


def test_openai_leading_system_rendered_once_and_same() -> None:
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "S1"},
            {"role": "developer", "content": [{"type": "text", "text": "D"}], "tool_calls": [{"id": "1"}]},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "2"}]},
            {"role": "user", "content": [{"type": "text", "text": "Q2"}, {"type": "image_url", "image_url": {}}]},
        ],
    }
    fields = shape.request_fields(request, shape.CHAT)
    assert fields["system_text"] == 'S1\nD\n{"id":"1"}'
    assert fields["prompt_text"] == (
        '[system]\nS1\n[developer]\nD\n{"id":"1"}\n[user]\nQ\n[assistant]\n{"id":"2"}\n'
        '[user]\nQ2\n{"type":"image_url","image_url":{}}\n'
    )
    assert fields["last_user_text"] == 'Q2\n{"type":"image_url","image_url":{}}'
    assert fields["messages_count"] == 5 and fields["stream"] is False and fields["tools_count"] == 0


def test_envelope_rows_hold_every_column() -> None:
    ctx = RecordContext(file="f.jsonl", line=1, attribution=DEFAULT_ATTRIBUTION)
    row = envelope.parse({"request": {"model": "m", "messages": []}, "status": 500}, ctx)
    assert isinstance(row, dict) and set(INGEST_SCHEMA) <= set(row)
    assert row["messages_count"] == 0 and row["input_tokens"] is None and row["status"] == "error"


def test_rows_to_frame_timestamps_as_polars_converts_them() -> None:
    aware = [
        datetime(2026, 10, 1, 0, 0, 0, 15986, tzinfo=UTC),
        None,
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    ]
    naive = [datetime(2024, 1, 1, 12), None]
    for values in (aware, naive):
        rows = [{"timestamp": value, "source_line": i} for i, value in enumerate(values)]
        frame = rows_to_frame(rows)
        assert frame.schema == pl.Schema(INGEST_SCHEMA)
        expected = pl.Series("timestamp", values, dtype=INGEST_SCHEMA["timestamp"], strict=False)
        assert_series_equal(frame["timestamp"], expected)
    with pytest.raises(pl.exceptions.ComputeError):  # as polars itself: aware and naive do not mix
        rows_to_frame([{"timestamp": value} for value in aware + naive])


def test_rows_to_frame_complete_and_partial_rows_agree() -> None:
    partial = [{"request_id": "a", "input_tokens": 3}, {"model": "m", "stream": True}]
    complete = [{name: row.get(name) for name in INGEST_SCHEMA} for row in partial]
    assert_frame_equal(rows_to_frame(partial), rows_to_frame(complete))
    assert rows_to_frame(partial)["input_tokens"].to_list() == [3, None]
