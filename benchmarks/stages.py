"""Where a scan's time and memory go, stage by stage (the same calls auditor.pipeline.scan makes, timed one by one).

    python benchmarks/stages.py benchmarks/data/n100000/jsonl [--lever prompt_caching ...]

Prints wall time, CPU time and process RSS after each stage (ingest, filter + token fill + sort, pricing, each
lever, plan + report), then the in-memory size of the canonical frame per column. RSS is the process's current
resident set; the peak so far is the high-water mark (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.ingest import read_paths
from auditor.levers.base import LeverResult
from auditor.pipeline import ScanOptions, _take_frame, build_report, chunk_reducer, lever_contexts, prepare_frame
from auditor.prices import PriceBook

T = TypeVar("T")
MIB = 1024**2


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def stage(name: str, work: Callable[[], T]) -> T:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:<28} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
        f"   RSS {_rss_mib():8,.0f} MiB   peak {peak:8,.0f} MiB",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--lever", action="append", help="run only this lever id (repeatable); default all")
    args = parser.parse_args()
    options = ScanOptions(paths=args.paths)
    prices = stage("load prices", PriceBook.load)
    levers = [(lv, ctx) for lv, ctx in lever_contexts(options, prices) if not args.lever or lv.id in args.lever]
    ingest = stage(
        "ingest + reduce",
        lambda: read_paths(
            options.paths, attribution=options.config.attribution, on_chunk=chunk_reducer(options, levers)
        ),
    )
    frame = stage("sort + row_id + pricing", lambda: prepare_frame(_take_frame(ingest), options, prices))
    results: list[LeverResult] = []
    for lever, ctx in levers:
        results.append(stage(f"lever {lever.id}", partial(lever.analyze, frame, ctx)))
    stage("plan + report", lambda: build_report(frame, ingest, results, options, prices))
    sizes = sorted(((frame[c].estimated_size() / MIB, c) for c in frame.columns), reverse=True)
    total = sum(size for size, _ in sizes)
    print(f"\ncanonical frame: {frame.height:,} rows, {total:,.0f} MiB (views counted at full length); largest:")
    for size, column in sizes[:8]:
        print(f"  {column:<22} {size:8,.0f} MiB")


if __name__ == "__main__":
    main()
