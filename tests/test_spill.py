"""Spill mode (auditor.spill): the reduced rows on disk give the same report as in memory, and never outlive a scan."""

from __future__ import annotations

import errno
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from auditor import pipeline, spill
from auditor import prices as prices_module
from auditor.config import ConfigError
from auditor.ingest import parallel
from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult, empty_counterfactual
from auditor.pipeline import ScanOptions, lever_frame, scan
from auditor.prices import PriceBook
from auditor.spill import PART, PART_ROW, SpillError, SpillStore, write_part

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_logs"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory scans spill into (what TMPDIR would name), empty at the start."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 envelope requests from the benchmark generator, in two files of consecutive time ranges."""
    out = tmp_path_factory.mktemp("generated")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--requests", "4000", "--files", "2"]
    subprocess.run([*cmd, "--format", "jsonl", "--seed", "11", "--out", str(out)], check=True, capture_output=True)
    return out / "jsonl"


def _report(paths: list[Path], mode: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv(spill.SPILL_ENV, mode)
    return scan(ScanOptions(paths=[str(p) for p in paths])).report.to_dict()


def _spilled_orders(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, for every spilled scan, whether its sort changed the ingest order (SpillStore.positions set)."""
    seen: list[bool] = []
    original = SpillStore.order

    def order(self: SpillStore, frame: pl.DataFrame) -> pl.DataFrame:
        out = original(self, frame)
        seen.append(self.positions is not None)
        return out

    monkeypatch.setattr(SpillStore, "order", order)
    return seen


# ---------------------------------------------------------------------------------------------- same report


def test_sample_logs_report_is_the_same_spilled(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _spilled_orders(monkeypatch)
    memory = _report([SAMPLES], "never", monkeypatch)
    spilled = _report([SAMPLES], "always", monkeypatch)
    assert orders == [True]  # several files of overlapping time ranges: the sort reorders them
    assert spilled == memory
    assert memory["totals"]["requests"] == 5657 and memory["findings"]
    assert list(scratch.iterdir()) == []  # the part files went with the scan


def test_generated_data_same_report_with_workers(
    generated: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _report([generated], "never", monkeypatch)
    # both files split across two worker processes, which write the part files themselves
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 2 << 20)
    monkeypatch.setattr(parallel, "MIN_BYTES", 0)
    monkeypatch.setenv("LLM_AUDIT_WORKERS", "2")
    written: list[int] = []
    original = SpillStore.index

    def index(self: SpillStore, stubs: pl.DataFrame) -> None:
        original(self, stubs)
        written.append(len(list(self.directory.glob("*.arrow"))))

    monkeypatch.setattr(SpillStore, "index", index)
    orders = _spilled_orders(monkeypatch)
    spilled = _report([generated], "always", monkeypatch)
    assert spilled == memory
    assert memory["totals"]["requests"] == 4000
    assert written[0] >= 10 and orders == [False]  # 20 MB in 2 MB blocks; the logs were in time order already
    assert list(scratch.iterdir()) == []


def test_out_of_order_lines_and_files_in_reverse_time_order(
    generated: Path, tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early, late = sorted(generated.glob("*.jsonl"))
    reverse = tmp_path / "reverse"
    reverse.mkdir()
    shutil.copy(late, reverse / "a.jsonl")  # read first, yet its requests come after b's
    shutil.copy(early, reverse / "b.jsonl")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    lines = early.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(3).shuffle(lines)
    (shuffled / "one.jsonl").write_text("".join(lines), encoding="utf-8")
    orders = _spilled_orders(monkeypatch)
    for folder in (reverse, shuffled):
        assert _report([folder], "always", monkeypatch) == _report([folder], "never", monkeypatch)
    assert orders == [True, True]


# ---------------------------------------------------------------------------------------------- the store


def _chunk(start: int, times: list[int]) -> pl.DataFrame:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "timestamp": [base + timedelta(seconds=t) for t in times],
            "request_id": [f"r{start + i}" for i in range(len(times))],
            "last_user_text": [f"q{start + i}" for i in range(len(times))],
            "_x_flag": [t % 2 == 0 for t in times],
        }
    )


def test_store_loads_columns_in_sorted_order(tmp_path: Path) -> None:
    chunks = [_chunk(0, [5, 1, 9]), _chunk(3, []), _chunk(3, [4, 0])]
    with SpillStore.create(str(tmp_path)) as store:
        stubs = pl.concat([write_part(str(store.directory), c) for c in chunks])
        assert stubs.columns == ["timestamp", "request_id", PART, PART_ROW]  # texts and features stay on disk
        assert len(list(store.directory.glob("*.arrow"))) == 2  # the empty chunk wrote nothing
        store.index(stubs)
        base = store.order(stubs.sort("timestamp"))
        assert base.columns == ["timestamp"]  # request_id sorts, then stays on disk (SORT_ONLY)
        assert store.positions is not None and store.positions.to_list() == [4, 1, 3, 0, 2]
        loaded = store.load(["_x_flag", "last_user_text", "not_there"])
        assert loaded.columns == ["last_user_text", "_x_flag"]  # the parts' column order
        assert loaded["last_user_text"].to_list() == ["q4", "q1", "q3", "q0", "q2"]
        assert loaded["_x_flag"].to_list() == [True, False, True, False, False]
        assert store.load(["request_id_typo"]).width == 0
    assert not store.directory.exists()


def test_store_in_time_order_skips_the_gather(tmp_path: Path) -> None:
    with SpillStore.create(str(tmp_path)) as store:
        stubs = pl.concat([write_part(str(store.directory), c) for c in (_chunk(0, [1, 2]), _chunk(2, [3]))])
        store.index(stubs)
        store.order(stubs.sort("timestamp"))
        assert store.positions is None
        assert store.load(["last_user_text"])["last_user_text"].to_list() == ["q0", "q1", "q2"]


def test_unwritable_directory_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(SpillError, match=r"a-file.*TMPDIR"):
        SpillStore.create(str(blocker / "sub"))
    with pytest.raises(SpillError, match=r"missing.*TMPDIR"):
        write_part(str(tmp_path / "missing"), _chunk(0, [1]))

    def full(self: pl.DataFrame, file: Any, **kwargs: Any) -> None:
        Path(file).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_ipc", full)
    with pytest.raises(SpillError, match=r"No space left on device.*TMPDIR"):
        write_part(str(tmp_path), _chunk(0, [1]))
    assert list(tmp_path.glob("*.arrow")) == []  # the partial part is removed


# ---------------------------------------------------------------------------------------------- cleanup


class _Failing:
    """A lever that checks the scan really spilled, then fails the way `error` says."""

    id = "retries"
    title = "failing"
    reads: tuple[str, ...] = ()

    def __init__(self, scratch: Path, error: BaseException) -> None:
        self.scratch, self.error = scratch, error

    def check_options(self, options: dict[str, Any]) -> None:
        return None

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame()

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        assert list(self.scratch.glob("llm-audit-spill-*/*.arrow"))
        raise self.error


@pytest.mark.parametrize("error", [RuntimeError("lever bug"), KeyboardInterrupt()])
def test_part_files_are_removed_when_the_scan_fails(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setattr(pipeline, "available_levers", lambda: [_Failing(scratch, error)])
    monkeypatch.setenv(spill.SPILL_ENV, "always")
    with pytest.raises(type(error)):
        scan(ScanOptions(paths=[str(SAMPLES)]))
    assert list(scratch.iterdir()) == []


# ---------------------------------------------------------------------------------------------- lever columns


class _Reader:
    """A lever whose analyze reads prompt_hash; `reads` says whether it declared it."""

    id = "batching"
    title = "reader"

    def __init__(self, reads: tuple[str, ...]) -> None:
        self.reads = reads

    def check_options(self, options: dict[str, Any]) -> None:
        return None

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return pl.DataFrame()

    def analyze(self, frame: pl.DataFrame, ctx: LeverContext) -> LeverResult:
        hashes = frame.select(pl.col("prompt_hash").n_unique()).item()
        return LeverResult("batching", f"{hashes} prompts", "measured", empty_counterfactual())


@pytest.mark.parametrize("mode", ["never", "always"])
def test_a_lever_reading_an_undeclared_column_fails(scratch: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv(spill.SPILL_ENV, mode)
    monkeypatch.setattr(pipeline, "available_levers", lambda: [_Reader(())])
    with pytest.raises(pl.exceptions.ColumnNotFoundError, match="prompt_hash"):
        scan(ScanOptions(paths=[str(SAMPLES / "app_requests.jsonl")]))
    monkeypatch.setattr(pipeline, "available_levers", lambda: [_Reader(("prompt_hash",))])
    result = scan(ScanOptions(paths=[str(SAMPLES / "app_requests.jsonl")]))
    monkeypatch.setenv(spill.SPILL_ENV, "never")  # a spilled scan's frame has only the base columns
    prompts = scan(ScanOptions(paths=[str(SAMPLES / "app_requests.jsonl")], run_levers=False)).frame["prompt_hash"]
    assert prompts.n_unique() > 100 and result.lever_results[0].title == f"{prompts.n_unique()} prompts"


@pytest.fixture(scope="module")
def sample_frame() -> pl.DataFrame:
    """sample_logs reduced and priced, every lever's features included."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(spill.SPILL_ENV, "never")
        return scan(ScanOptions(paths=[str(SAMPLES)])).frame


@pytest.mark.parametrize("lever", available_levers(), ids=lambda lever: lever.id)
def test_each_lever_gives_the_same_result_on_its_columns_only(sample_frame: pl.DataFrame, lever: Any) -> None:
    # A lever that silently skips a missing column (`if c in frame.columns`) would differ here, not fail.
    # what the pipeline hands it: heads of the rows a finding shows are fetched from the whole frame
    ctx = LeverContext(prices=PriceBook.load(), rows=pipeline.row_fetcher(sample_frame))
    projected = lever_frame(sample_frame, lever)
    assert projected.width < sample_frame.width
    whole, own = lever.analyze(sample_frame, ctx), lever.analyze(projected, ctx)
    assert_frame_equal(own.counterfactual.sort("row_id"), whole.counterfactual.sort("row_id"))
    assert (own.findings, own.gaps, own.assumptions) == (whole.findings, whole.gaps, whole.assumptions)


# ---------------------------------------------------------------------------------------------- which mode


def test_auto_mode_decision_with_fake_sizes() -> None:
    gib = 1 << 30
    assert spill.should_spill("always", 0, None) and not spill.should_spill("never", 100 * gib, gib)
    # 1M envelope requests as JSONL (5.5 GB: ~1.4 GB reduced) on this 24 GiB machine: in memory
    assert not spill.should_spill("auto", int(5.5e9 * spill.PLAIN_FACTOR), 22 * gib)
    # 10M as zstd parts (5.3 GB: ~13 GB reduced): spilled however much memory there is
    assert spill.should_spill("auto", int(5.3e9 * spill.COMPRESSED_FACTOR), 1000 * gib)
    # over a quarter of what is available
    assert spill.should_spill("auto", 2 * gib + 1, 8 * gib) and not spill.should_spill("auto", 2 * gib, 8 * gib)
    assert not spill.should_spill("auto", 5 * gib, None)  # unknown memory: only the absolute limit


def test_estimate_by_container(tmp_path: Path) -> None:
    files = {
        "plain.jsonl": b'{"a": 1}\n' * 400,  # 3,600 bytes -> x0.25
        "gz.jsonl.gz": b"\x1f\x8b" + b"\0" * 998,  # 1,000 -> x2.5
        "zst.jsonl.zst": b"\x28\xb5\x2f\xfd" + b"\0" * 996,  # 1,000 -> x2.5
        "rows.parquet": b"PAR1" + b"\0" * 996,  # 1,000 -> x1.3
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [tmp_path / name for name in files] + [tmp_path / "gone.jsonl"]
    assert spill.estimated_reduced_bytes(paths) == 900 + 2500 + 2500 + 1300


def test_available_memory_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       25000000 kB\nMemFree:  1 kB\nMemAvailable:    1000 kB\n")
    assert spill.available_memory(str(meminfo)) == 1_024_000
    meminfo.write_text("MemTotal:       25000000 kB\n")
    assert spill.available_memory(str(meminfo)) is None
    assert spill.available_memory(str(tmp_path / "none")) is None


def test_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert spill.spill_mode({}) == "auto" and spill.spill_mode({spill.SPILL_ENV: " Always "}) == "always"
    monkeypatch.setenv(spill.SPILL_ENV, "sometimes")
    with pytest.raises(ConfigError, match="LLM_AUDIT_SPILL='sometimes' is not one of auto, always, never"):
        pipeline.wants_spill(ScanOptions(paths=[str(SAMPLES)]))
    monkeypatch.setenv(spill.SPILL_ENV, "always")
    assert not pipeline.wants_spill(ScanOptions(paths=[str(SAMPLES)], keep_texts=True))  # export-eval's texts
    monkeypatch.setenv(spill.SPILL_ENV, "auto")
    assert not pipeline.wants_spill(ScanOptions(paths=[str(SAMPLES)]))  # a few MB
    monkeypatch.setattr(spill, "MAX_IN_MEMORY", 1000)
    assert pipeline.wants_spill(ScanOptions(paths=[str(SAMPLES)]))


# ---------------------------------------------------------------------------------------------- pricing slices


def test_pricing_in_slices_gives_the_same_columns(sample_frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = PriceBook.load()
    unpriced = sample_frame.drop("model_id", "price_date", "unpriced", "cost_usd")
    whole = prices.add_costs(unpriced)
    monkeypatch.setattr(prices_module, "PRICE_SLICE_ROWS", 1000)
    sliced = prices.add_costs(unpriced)
    assert_frame_equal(sliced, whole)
    assert sliced["cost_usd"].null_count() < sliced.height and sliced.height > 5000  # six slices, mostly priced
