"""The JSONL fast path (auditor.ingest.fast) gives exactly the per-record path's rows, skips and counts."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from auditor.ingest import IngestResult, fast, read_paths

ROOT = Path(__file__).resolve().parents[1]
KEY = ["source_file", "source_line"]


def _both(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[IngestResult, IngestResult, int]:
    taken = [0]
    original = fast.parse_block

    def counting(*args: Any, **kwargs: Any) -> fast.BlockResult:
        result = original(*args, **kwargs)
        taken[0] += result.fast_rows
        return result

    monkeypatch.setattr(fast, "parse_block", counting)
    monkeypatch.setattr(fast, "ENABLED", True)
    quick = read_paths(paths)
    monkeypatch.setattr(fast, "ENABLED", False)
    slow = read_paths(paths)
    monkeypatch.setattr(fast, "ENABLED", True)
    return quick, slow, taken[0]


def _assert_same(quick: IngestResult, slow: IngestResult) -> None:
    assert_frame_equal(quick.frame.sort(KEY), slow.frame.sort(KEY))
    assert quick.records_read == slow.records_read
    assert quick.formats == slow.formats
    assert quick.ignored == slow.ignored
    skips = sorted((s.file, s.line or 0, s.reason) for s in quick.skipped)
    assert skips == sorted((s.file, s.line or 0, s.reason) for s in slow.skipped)


def test_sample_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    quick, slow, _taken = _both([str(ROOT / "sample_logs")], monkeypatch)
    _assert_same(quick, slow)
    assert quick.frame.height > 5000


def test_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    quick, slow, _ = _both([str(ROOT / "tests" / "fixtures" / "ingest")], monkeypatch)
    _assert_same(quick, slow)


def test_generated_benchmark_slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = str(ROOT / "benchmarks" / "generate.py")
    command = [sys.executable, script, "--requests", "2000", "--out", str(tmp_path), "--format", "jsonl"]
    subprocess.run(command, check=True, capture_output=True)
    quick, slow, taken = _both([str(tmp_path / "jsonl")], monkeypatch)
    _assert_same(quick, slow)
    assert quick.frame.height == 2000
    assert taken == 2000  # every generated envelope takes the fast path


def _chat(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": f"2026-01-01T00:00:{n % 60:02d}.123456Z",
        "request": {
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": "sys é"}, {"role": "user", "content": f"q{n} ✓"}],
        },
        "response": {
            "id": f"r{n}",
            "object": "chat.completion",
            "model": "gpt-4o",
            "choices": [{"message": {"content": "a"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 50}},
        },
        "metadata": {"feature": "f", "env": "prod"},
        **extra,
    }


def test_edge_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps(_chat(n), ensure_ascii=False) for n in range(30)]
    lines[3] = ""  # blank line: counted, produces nothing
    lines[5] = "   "
    lines[7] = '{"timestamp": "2026-01-01T00:00:00Z", "request": {'  # malformed in the middle of a block
    lines[9] = json.dumps({"custom_id": "x", "response": {"status_code": 200, "body": {}}})  # not an envelope
    lines[11] = json.dumps(_chat(11, error={"error": {"type": "rate_limit_error"}}, status=429, response=None))
    lines[13] = json.dumps(_chat(13, status="200"))
    lines[15] = json.dumps({**_chat(15), "tags": ["a:b"]})
    lines[17] = json.dumps(_chat(17, user=42))
    lines[19] = "[1, 2]"
    text = "\n".join(lines) + "\n" + json.dumps(_chat(99))  # last line without newline
    (tmp_path / "a.jsonl").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    quick, slow, taken = _both([str(tmp_path)], monkeypatch)
    _assert_same(quick, slow)
    assert taken >= 40
    assert len(slow.skipped) >= 4


def test_parse_block_routes_unknown_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "ENABLED", True)
    plan = fast.plan_for({"feature": ["feature"]})
    assert plan is not None
    block = (json.dumps(_chat(1)) + "\n\n" + '{"hello": 1}\n').encode()
    result = fast.parse_block(block, 1, "x.jsonl", plan)
    assert result.fast_rows == 1
    assert result.slow == [(3, b'{"hello": 1}')]
    assert result.frame is not None and result.frame["source_line"].to_list() == [1]


def test_hashes_match_short_hash() -> None:
    from auditor.ingest.values import short_hash

    values = pl.Series("p", ["abc", None, "é" * 5000, ""] * 700)
    assert fast.hashes(values).to_list() == [short_hash(v) for v in values.to_list()]
