"""Worker-process ingest (auditor/ingest/parallel.py) gives exactly what the serial read gives."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from polars.testing import assert_frame_equal

from auditor.ingest import IngestResult, parallel, read_paths
from auditor.pipeline import ScanOptions, scan

ROOT = Path(__file__).resolve().parents[1]
KEY = ["source_file", "source_line"]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks of 16 KB and no minimum input size, so test-sized files are split across two workers.

    Returns a list that receives the number of blocks of every file the workers read.
    """
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    blocks: list[int] = []
    original = parallel.ParallelReader.read_file

    def counting(self: parallel.ParallelReader, path: Path, progress: Any) -> list[parallel.BlockResult] | None:
        results = original(self, path, progress)
        if results is not None:
            blocks.append(len(results))
        return results

    monkeypatch.setattr(parallel.ParallelReader, "read_file", counting)
    return blocks


def _assert_same(split: IngestResult, serial: IngestResult) -> None:
    assert_frame_equal(split.frame.sort(KEY), serial.frame.sort(KEY))
    assert (split.records_read, split.formats, split.ignored) == (serial.records_read, serial.formats, serial.ignored)
    # skipped records keep their order: files in order, lines in order within a file
    assert [(s.file, s.line, s.reason) for s in split.skipped] == [(s.file, s.line, s.reason) for s in serial.skipped]


def test_sample_logs_and_fixtures_read_the_same(tmp_path: Path, small_blocks: list[int]) -> None:
    # A Claude Code transcript big enough for the parallel path: its de-duplication needs state across lines,
    # so the file must fall back to the serial read (and still be de-duplicated).
    claude = (ROOT / "tests" / "fixtures" / "ingest" / "claude_session_segment.jsonl").read_text(encoding="utf-8")
    (tmp_path / "claude.jsonl").write_text(claude * 3, encoding="utf-8")
    paths = [str(ROOT / "sample_logs"), str(ROOT / "tests" / "fixtures" / "ingest"), str(tmp_path)]
    split = read_paths(paths, workers=2)
    serial = read_paths(paths, workers=1)
    _assert_same(split, serial)
    assert split.formats["claude_code"] == 10  # 3 copies of the 10 calls, de-duplicated across the copies
    # the big sample files went to the workers, the biggest in several blocks (reads come in 1 MB pieces)
    assert len(small_blocks) >= 3 and max(small_blocks) >= 3


def test_broken_lines_and_truncated_gzip(tmp_path: Path, small_blocks: list[int]) -> None:
    def good(n: int) -> str:
        return json.dumps(
            {
                "timestamp": "2026-01-01T00:00:00Z",
                # random text, so the gzip copy stays bigger than a block and goes to the workers too
                "request": {
                    "model": "gpt-4o",
                    "messages": [{"role": "user", "content": f"{n} {random.randbytes(300).hex()}"}],
                },
                "response": {
                    "id": f"r{n}",
                    "object": "chat.completion",
                    "model": "gpt-4o",
                    "choices": [{"message": {"content": "a"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 7},
                },
            }
        )

    random.seed(5)
    lines = [good(n) for n in range(200)]
    lines[50] = '{"request": {'  # malformed
    lines[120] = ""  # blank
    lines[170] = "[1, 2]"  # not an object
    text = "\n".join(lines) + "\n"
    (tmp_path / "a.jsonl").write_text(text, encoding="utf-8")
    packed = gzip.compress(text.encode())
    (tmp_path / "b.jsonl.gz").write_bytes(packed[: len(packed) * 2 // 3])  # cut off: the rest is lost
    split = read_paths([str(tmp_path)], workers=2)
    serial = read_paths([str(tmp_path)], workers=1)
    _assert_same(split, serial)
    reasons = [(s.file.rsplit("/", 1)[-1], s.line) for s in split.skipped]
    assert ("a.jsonl", 51) in reasons and ("a.jsonl", 171) in reasons
    assert split.frame.height >= 197  # 200 lines - malformed - blank - array in a.jsonl alone
    assert len(small_blocks) == 2  # both files were read by the workers


def test_several_compressed_files_go_whole_to_workers(tmp_path: Path, small_blocks: list[int]) -> None:
    lines = (ROOT / "sample_logs" / "app_requests.jsonl").read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    for k in range(3):  # three gzip parts, the last one truncated
        part = b"".join(lines[k * third : (k + 1) * third])
        (tmp_path / f"part{k}.jsonl.gz").write_bytes(gzip.compress(part) if k < 2 else gzip.compress(part)[:-40])
    split = read_paths([str(tmp_path)], workers=2)
    serial = read_paths([str(tmp_path)], workers=1)
    _assert_same(split, serial)
    assert small_blocks == [1, 1, 1]  # one whole-file result each
    assert split.skipped and "truncated" in split.skipped[-1].reason


def test_canonical_parquet_row_groups_read_the_same(tmp_path: Path, small_blocks: list[int]) -> None:
    frame = read_paths([str(ROOT / "sample_logs")], workers=1).frame
    frame.write_parquet(tmp_path / "canonical.parquet", row_group_size=700)  # 5,657 rows -> 9 row groups
    split = read_paths([str(tmp_path)], workers=2)
    serial = read_paths([str(tmp_path)], workers=1)
    _assert_same(split, serial)
    assert small_blocks == [9]
    assert split.frame["source_line"].sort().to_list() == list(range(1, 5658))  # row numbers run on across groups


def test_scan_report_is_the_same_with_workers(
    tmp_path: Path, small_blocks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(ROOT / "sample_logs", logs, ignore=shutil.ignore_patterns("*.py", "*.md"))
    monkeypatch.setenv("LLM_AUDIT_WORKERS", "2")
    split = scan(ScanOptions(paths=[str(logs)])).report.to_dict()
    monkeypatch.setenv("LLM_AUDIT_WORKERS", "1")
    serial = scan(ScanOptions(paths=[str(logs)])).report.to_dict()
    assert split["totals"] == serial["totals"]
    assert split["plan"] == serial["plan"]
    assert split["findings"] == serial["findings"]
    assert split["totals"]["requests"] == 5657
    assert small_blocks  # the first scan used the workers


def test_worker_env_keeps_freed_memory_and_respects_user_settings() -> None:
    env = parallel.worker_env({"_RJEM_MALLOC_CONF": "dirty_decay_ms:500,muzzy_decay_ms:1000"})
    # jemalloc takes an option's last value: ours come after polars' defaults
    assert env["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:-1,muzzy_decay_ms:-1"
    assert "glibc.malloc.trim_threshold=1073741824" in env["GLIBC_TUNABLES"]
    mine = parallel.worker_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert "GLIBC_TUNABLES" not in mine  # the user's own glibc settings stay
    assert mine["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def test_workers_start_with_worker_env_and_the_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:500")
    with parallel.ParallelReader(1, None, {}, None) as reader:
        seen = reader.pool.submit(os.getenv, "_RJEM_MALLOC_CONF").result()
        glibc = reader.pool.submit(os.getenv, "GLIBC_TUNABLES").result()
    assert seen is not None and seen.endswith("dirty_decay_ms:-1,muzzy_decay_ms:-1")
    assert glibc is not None and glibc.startswith("glibc.malloc.trim_threshold=")
    assert os.environ["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:500"
    assert "GLIBC_TUNABLES" not in os.environ
