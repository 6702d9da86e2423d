"""Where a scan's time and memory go, stage by stage (the same calls auditor.pipeline.scan makes, timed one by one).

    python benchmarks/stages.py benchmarks/data/n100000/jsonl [--lever prompt_caching ...] [--spill]

Prints wall time, CPU time and process RSS after each stage (ingest, filter + token fill + sort, pricing, each
lever, plan + report), then the in-memory size of the canonical frame per column. RSS is the process's current
resident set; "in stage" is the largest RSS sampled (every 5 ms) during the stage, "peak" the high-water mark
so far (ru_maxrss). --spill runs the scan in spill mode
(auditor.spill: reduced rows on disk, each lever loads its columns; its stage includes that load).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from auditor.ingest import read_paths
from auditor.levers.base import Lever, LeverContext, LeverResult
from auditor.pipeline import (
    ScanOptions,
    analyze_lever,
    build_report,
    chunk_reducer,
    ingested_frame,
    lever_contexts,
    prepare_frame,
)
from auditor.prices import PriceBook
from auditor.spill import SpillStore

T = TypeVar("T")
MIB = 1024**2


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Sampler:
    """The largest RSS seen since reset(), from a thread polling /proc (ru_maxrss only ever grows)."""

    def __init__(self) -> None:
        self.high = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            self.high = max(self.high, _rss_mib())
            time.sleep(0.005)

    def reset(self) -> None:
        self.high = _rss_mib()


SAMPLER = _Sampler()


def stage(name: str, work: Callable[[], T]) -> T:
    SAMPLER.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:<28} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
        f"   RSS {_rss_mib():8,.0f} MiB   in stage {max(SAMPLER.high, _rss_mib()):8,.0f} MiB   peak {peak:8,.0f} MiB",
        flush=True,
    )
    return result


def _analyze(lever: Lever, ctx: LeverContext, frame: pl.DataFrame, store: SpillStore | None) -> LeverResult:
    return analyze_lever(lever, ctx, frame, store)  # what pipeline.run_levers does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--lever", action="append", help="run only this lever id (repeatable); default all")
    parser.add_argument("--spill", action="store_true", help="spill mode (auditor.spill)")
    args = parser.parse_args()
    options = ScanOptions(paths=args.paths)
    prices = stage("load prices", PriceBook.load)
    levers = [(lv, ctx) for lv, ctx in lever_contexts(options, prices) if not args.lever or lv.id in args.lever]
    with SpillStore.create() if args.spill else nullcontext() as store:
        ingest = stage(
            "ingest + reduce",
            lambda: read_paths(
                options.paths, attribution=options.config.attribution, on_chunk=chunk_reducer(options, levers, store)
            ),
        )
        frame = stage(
            "sort + row_id + pricing", lambda: prepare_frame(ingested_frame(ingest, store), options, prices, store)
        )
        results: list[LeverResult] = []
        for lever, ctx in levers:
            results.append(stage(f"lever {lever.id}", partial(_analyze, lever, ctx, frame, store)))
    stage("plan + report", lambda: build_report(frame, ingest, results, options, prices))
    sizes = sorted(((frame[c].estimated_size() / MIB, c) for c in frame.columns), reverse=True)
    total = sum(size for size, _ in sizes)
    print(f"\ncanonical frame: {frame.height:,} rows, {total:,.0f} MiB (views counted at full length); largest:")
    for size, column in sizes[:8]:
        print(f"  {column:<22} {size:8,.0f} MiB")


if __name__ == "__main__":
    main()
