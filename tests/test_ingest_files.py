"""Ingest containers and bad input: compression, JSON arrays, Parquet, paths, skips with file:line, order."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from auditor.ingest import expand_paths, read_paths
from auditor.schema import INGEST_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def chat(n: int, prompt: int = 100) -> dict[str, Any]:
    return {
        "timestamp": f"2026-01-01T00:00:{n:02d}Z",
        "request": {"model": "gpt-4o", "messages": [{"role": "user", "content": f"q{n}"}]},
        "response": {
            "id": f"r{n}",
            "object": "chat.completion",
            "model": "gpt-4o",
            "choices": [{"message": {"content": "a"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 7},
        },
    }


def jsonl(records: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_every_bad_input_in_one_call(tmp_path: Path) -> None:
    bad_usage = chat(3)
    bad_usage["response"]["usage"]["prompt_tokens"] = "abc"
    negative = chat(4)
    negative["response"]["usage"]["completion_tokens"] = -5
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(
        jsonl([chat(1)])
        + b'{"request": {"model": "gpt-4o"\n'  # line 2: malformed JSON
        + jsonl([bad_usage, negative, {"hello": "world"}, chat(6)])
    )
    truncated = tmp_path / "cut.jsonl.gz"
    whole = gzip.compress(jsonl([chat(n) for n in range(10, 13)]))
    truncated.write_bytes(whole[: len(whole) - 12])  # drop the gzip trailer and some data
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blob.jsonl").write_bytes(b"\x00\x01\x02binary\xff\xfe" * 20)
    missing = tmp_path / "nope.jsonl"

    result = read_paths([str(tmp_path / "*.jsonl*"), str(missing)])
    reasons = {(Path(s.file).name, s.line): s.reason for s in result.skipped}
    # the truncated gzip: lines 1-2 decompress whole, line 3 is cut -> reported at line 3
    assert set(reasons) == {
        ("mixed.jsonl", 2),
        ("mixed.jsonl", 3),
        ("mixed.jsonl", 4),
        ("mixed.jsonl", 5),
        ("cut.jsonl.gz", 3),
        ("empty.jsonl", None),
        ("blob.jsonl", None),
        ("nope.jsonl", None),
    }
    assert reasons[("mixed.jsonl", 2)].startswith("malformed JSON")
    assert "usage.prompt_tokens is 'abc'" in reasons[("mixed.jsonl", 3)]
    assert "usage.completion_tokens is -5" in reasons[("mixed.jsonl", 4)]
    assert "no known format" in reasons[("mixed.jsonl", 5)] and "--input-format" in reasons[("mixed.jsonl", 5)]
    assert "truncated" in reasons[("cut.jsonl.gz", 3)]
    assert "empty" in reasons[("empty.jsonl", None)]
    assert "binary" in reasons[("blob.jsonl", None)]
    assert "no such file" in reasons[("nope.jsonl", None)]
    # every good record is still there: mixed lines 1 and 6, and the complete lines of the truncated gzip
    ids = list(result.frame["request_id"])
    cut_rows = result.frame.filter(pl.col("source_file").str.ends_with("cut.jsonl.gz"))
    assert sorted(cut_rows["request_id"]) == ["r10", "r11"]
    assert sorted(ids) == ["r1", "r10", "r11", "r6"]
    assert result.records_read == result.frame.height + len(result.skipped)


def test_wrong_type_in_json_array_counts_elements_as_lines(tmp_path: Path) -> None:
    bad = chat(2)
    bad["response"]["usage"]["prompt_tokens"] = True
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([chat(1), bad, 7, chat(4)], indent=2))
    result = read_paths([str(path)])
    first = result.skipped[0]
    assert (first.line, first.reason.split(" is ")[0]) == (2, "envelope: response.usage.prompt_tokens")
    assert result.skipped[1].line == 3 and "expected a JSON object" in result.skipped[1].reason
    assert sorted(result.frame["source_line"]) == [1, 4]


def test_compression_and_containers_give_the_same_rows(tmp_path: Path) -> None:
    records = [chat(n, prompt=100 + n) for n in range(5)]
    (tmp_path / "plain.jsonl").write_bytes(jsonl(records))
    (tmp_path / "g.ndjson.gz").write_bytes(gzip.compress(jsonl(records)))
    (tmp_path / "z.jsonl.zst").write_bytes(pa.compress(jsonl(records), "zstd", asbytes=True))
    (tmp_path / "arr.json").write_text(json.dumps(records, indent=1))
    (tmp_path / "objs.json").write_text("\n".join(json.dumps(r, indent=2) for r in records))  # concatenated
    result = read_paths([str(tmp_path)])
    assert not result.skipped and result.frame.height == 25
    per_file = result.frame.group_by("source_file").agg(pl.col("input_tokens").sum(), pl.len())
    assert per_file["input_tokens"].to_list() == [510] * 5  # 100+101+102+103+104
    array_rows = result.frame.filter(pl.col("source_file").str.ends_with("arr.json"))
    assert sorted(array_rows["source_line"]) == [1, 2, 3, 4, 5]


def test_canonical_parquet_and_jsonl_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src.jsonl"
    source.write_bytes(jsonl([chat(n, prompt=10 * n) for n in range(1, 4)]))
    frame = read_paths([str(source)]).frame
    frame.write_parquet(tmp_path / "canon.parquet")
    exported = frame.with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    (tmp_path / "canon.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in exported.iter_rows(named=True)), encoding="utf-8"
    )
    for name in ("canon.parquet", "canon.jsonl"):
        again = read_paths([str(tmp_path / name)])
        assert again.formats == {"canonical": 3} and not again.skipped
        assert again.frame.schema == pl.Schema(INGEST_SCHEMA)
        cols = ["request_id", "timestamp", "input_tokens", "output_tokens", "prompt_text", "prompt_hash"]
        assert again.frame.select(cols).sort("request_id").equals(frame.select(cols).sort("request_id"))
        assert set(again.frame["source_file"]) == {str(tmp_path / name)}


def test_canonical_parquet_bad_values_are_skipped(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "request_id": ["a", "b", "c"],
            "model": ["m"] * 3,
            "input_tokens": [5, -1, None],
            "output_tokens": ["1", "x", "3"],
        }
    ).write_parquet(tmp_path / "c.parquet")
    result = read_paths([str(tmp_path / "c.parquet")])
    assert result.frame["request_id"].to_list() == ["a", "c"]
    assert [(s.line, s.reason.split(":")[0]) for s in result.skipped] == [(2, "input_tokens")]


def test_litellm_spendlogs_parquet_export(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "request_id": ["x1"],
            "call_type": ["acompletion"],
            "spend": [0.5],
            "prompt_tokens": [1000],
            "completion_tokens": [50],
            "model": ["gpt-4o"],
            "custom_llm_provider": ["openai"],
            "startTime": [datetime(2026, 1, 1, tzinfo=UTC)],
            "metadata": ['{"spend_logs_metadata": {"feature": "chat"}}'],
        }
    ).write_parquet(tmp_path / "s.parquet")
    result = read_paths([str(tmp_path / "s.parquet")])
    [row] = result.frame.iter_rows(named=True)
    assert (row["input_tokens"], row["output_tokens"], row["logged_cost_usd"], row["feature"]) == (
        1000,
        50,
        0.5,
        "chat",
    )
    assert row["source_format"] == "litellm_spendlogs" and row["source_line"] == 1


def test_file_order_does_not_change_the_frame(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl([chat(1), chat(2)]))
    (tmp_path / "b.jsonl").write_bytes(jsonl([chat(3)]))
    claude = str(FIXTURES / "claude_session_segment.jsonl")
    one = read_paths([str(tmp_path / "b.jsonl"), claude, str(tmp_path / "a.jsonl")])
    two = read_paths([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), claude])
    keys = ["timestamp", "source_file", "source_line", "request_id"]
    assert one.frame.sort(keys).equals(two.frame.sort(keys))
    assert one.files == two.files


def test_expand_paths_folders_globs_and_progress(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "deep" / "x.jsonl").write_bytes(jsonl([chat(1)]))
    (tmp_path / "sub" / "notes.txt").write_text("not a log")
    (tmp_path / "y.json.gz").write_bytes(gzip.compress(jsonl([chat(2)])))
    files, skipped = expand_paths([str(tmp_path), str(tmp_path / "sub" / "*.jsonl"), str(tmp_path / "none")])
    assert [f.name for f in files] == ["x.jsonl", "y.json.gz"]
    assert [s.reason.split(";")[0] for s in skipped] == ["no files match this pattern", "no such file or directory"]
    seen: list[int] = []
    read_paths([str(tmp_path)], progress=seen.append)
    assert sum(seen) == sum(f.stat().st_size for f in files)


def test_forced_input_format_and_unknown_format_name(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(jsonl([chat(1)]))
    result = read_paths([str(path)], input_format="anthropic_batch")
    assert result.frame.height == 0 and "not an Anthropic batch result" in result.skipped[0].reason
    with pytest.raises(ValueError, match="unknown input format"):
        read_paths([str(path)], input_format="nope")
