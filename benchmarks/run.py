"""Whole-process wall time, CPU time and peak RSS of `llm-audit scan` against the obvious baseline script.

    python benchmarks/run.py --sizes 10000 100000 1000000 --output benchmarks/data/table.md
    python benchmarks/run.py --check-split 1000000
    python benchmarks/run.py --large 10000000 --timeout 1800 --max-rss-gb 8

Every command runs as its own process; its CPU time (user+sys, worker processes included) comes from os.wait4's
rusage, its peak RSS is the largest sum over its process tree (sampled every 0.2 s), wall time from a monotonic
clock around it. A command past --timeout or --max-rss-gb is killed and marked.
Data is generated on first use (benchmarks/generate.py) under --data: n{N}/{jsonl,parquet} in one file each and
n{N}-split8/jsonl in eight files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
GIB = 1024**3


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    status: str  # ok | exit N | killed: timeout | killed: memory


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_rss_bytes(pid: int) -> int:
    """RSS of the process and all its descendants (llm-audit's ingest workers are child processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(_rss_bytes(member) for member in tree)


def measure(cmd: list[str], stdout_path: Path, timeout_s: float, max_rss_bytes: int) -> Measured:
    """Run cmd to completion (or kill it) and return its wall time, CPU time (its own and its children's) and
    peak RSS of the whole process tree, sampled every 0.2 s (rusage's ru_maxrss would give the largest single
    process, not the sum of a scan and its worker processes)."""
    with stdout_path.open("wb") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.PIPE, start_new_session=True)
        killed = ""
        peak = 0
        while True:
            pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - started
            rss = _tree_rss_bytes(proc.pid)
            peak = max(peak, rss)
            if not killed and elapsed > timeout_s:
                killed = "killed: timeout"
            elif not killed and rss > max_rss_bytes:
                killed = "killed: memory"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, code, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
        wall = time.monotonic() - started
    assert proc.stderr is not None
    errors = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(code)
    status = killed or ("ok" if proc.returncode == 0 else f"exit {proc.returncode}: {errors.strip()[-300:]}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, max(peak, usage.ru_maxrss * 1024), status)


def ensure_data(data: Path, n: int, files: int, formats: str, seed: int, compress: bool = False) -> Path:
    out = data / (f"n{n}" if files == 1 or compress else f"n{n}-split{files}")
    wanted = ["jsonl", "parquet"] if formats == "both" else [formats]
    if all((out / fmt).is_dir() and any((out / fmt).iterdir()) for fmt in wanted):
        return out
    cmd = [sys.executable, str(BENCH / "generate.py"), "--requests", str(n), "--out", str(out)]
    cmd += ["--files", str(files), "--format", formats, "--seed", str(seed)] + (
        ["--compress", "zstd"] if compress else []
    )
    print(f"generating {out} ...", file=sys.stderr)
    subprocess.run(cmd, check=True)
    return out


def scan_cmd(path: Path, report: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "auditor.cli", "scan", str(path), "--format", "json", "-o", str(report), *extra]


def commands(data_dir: Path, reports: Path, n: int) -> dict[str, list[str]]:
    return {
        "llm-audit scan JSONL (all levers)": scan_cmd(data_dir / "jsonl", reports / f"n{n}-jsonl.json"),
        "llm-audit scan Parquet (all levers)": scan_cmd(data_dir / "parquet", reports / f"n{n}-parquet.json"),
        "llm-audit scan JSONL --no-levers": scan_cmd(
            data_dir / "jsonl", reports / f"n{n}-jsonl-nolevers.json", "--no-levers"
        ),
        "baseline.py (json.loads + tiktoken per message)": [
            sys.executable,
            str(BENCH / "baseline.py"),
            str(data_dir / "jsonl"),
        ],
    }


def fmt_row(n: int, name: str, m: Measured, baseline: Measured | None, size_mb: float) -> str:
    done = m.status == "ok"
    speedup = f"{baseline.wall_s / m.wall_s:.1f}x" if done and baseline and baseline.status == "ok" else "–"
    rate = f"{n / m.wall_s:,.0f}" if done else "–"
    return (
        f"| {n:,} | {size_mb:,.0f} | {name} | {m.wall_s:.1f} | {m.cpu_s:.1f} | {m.peak_rss_bytes / GIB:.2f} "
        f"| {rate} | {speedup} | {m.status} |"
    )


def run_sizes(args: argparse.Namespace) -> str:
    reports = args.data / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    lines = [
        "| requests | JSONL MB | command | wall s | CPU s (user+sys) | peak RSS GiB | requests/s "
        "| speed-up vs baseline | status |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for n in args.sizes:
        data_dir = ensure_data(args.data, n, 1, "both", args.seed)
        size_mb = sum(p.stat().st_size for p in (data_dir / "jsonl").iterdir()) / 1e6
        cmds = commands(data_dir, reports, n)
        selected = [name for name in cmds if not args.only or any(word in name for word in args.only)]
        # The baseline runs first so every llm-audit row can state its speed-up in the same run.
        order = sorted(selected, key=lambda name: not name.startswith("baseline"))
        measured: dict[str, Measured] = {}
        for name in order:
            print(f"[{n:,}] {name} ...", file=sys.stderr)
            stdout = reports / f"n{n}-{name.split()[0]}-{len(measured)}.out"
            measured[name] = measure(cmds[name], stdout, args.timeout, int(args.max_rss_gb * GIB))
            m = measured[name]
            report = Path(cmds[name][-1])
            if m.status == "ok" and report.suffix == ".json":
                args.fresh_reports.add(report)
            print(
                f"    {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, {m.peak_rss_bytes / GIB:.2f} GiB, {m.status}",
                file=sys.stderr,
            )
        baseline = next((m for name, m in measured.items() if name.startswith("baseline")), None)
        lines += [fmt_row(n, name, measured[name], baseline, size_mb) for name in selected]
    return "\n".join(lines) + "\n"


def run_large(args: argparse.Namespace) -> str:
    """One size too big for the baseline and for plain files: JSONL in 10 zstd parts, llm-audit with all levers."""
    n = args.large
    reports = args.data / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    data_dir = ensure_data(args.data, n, 10, "jsonl", args.seed, compress=True)
    size_mb = sum(p.stat().st_size for p in (data_dir / "jsonl").iterdir()) / 1e6
    name = "llm-audit scan JSONL.zst x10 (all levers)"
    print(f"[{n:,}] {name} ...", file=sys.stderr)
    m = measure(
        scan_cmd(data_dir / "jsonl", reports / f"n{n}-jsonl.json"),
        reports / f"n{n}.out",
        args.timeout,
        int(args.max_rss_gb * GIB),
    )
    return (
        "| requests | zstd MB | command | wall s | CPU s (user+sys) | peak RSS GiB | requests/s | status |\n"
        "|---:|---:|---|---:|---:|---:|---:|---|\n"
        f"| {n:,} | {size_mb:,.0f} | {name} | {m.wall_s:.1f} | {m.cpu_s:.1f} | {m.peak_rss_bytes / GIB:.2f} "
        f"| {n / m.wall_s:,.0f} | {m.status} |\n"
    )


# ---------------------------------------------------------------------------------------------------------------
# Split check: the same requests in 1 file and in 8 files must give the same report.

COMPARED = ("totals", "breakdowns", "levers", "plan")


def _finding_keys(report: dict[str, Any]) -> list[Any]:
    """Findings without evidence (which names files and lines, legitimately different)."""
    return sorted(
        json.dumps(
            {k: f.get(k) for k in ("code", "lever", "scope", "savings_usd", "affected_requests")}, sort_keys=True
        )
        for f in report.get("findings", [])
    )


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if len(out) >= 10:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            _diff(a.get(key), b.get(key), f"{path}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}")


def compare_reports(one: dict[str, Any], other: dict[str, Any]) -> list[str]:
    differences: list[str] = []
    for key in COMPARED:
        _diff(one.get(key), other.get(key), key, differences)
    if _finding_keys(one) != _finding_keys(other):
        differences.append("findings (code, scope, savings, affected requests) differ")
    return differences


def check_split(args: argparse.Namespace) -> str:
    n = args.check_split
    reports = args.data / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    single = ensure_data(args.data, n, 1, "both", args.seed)
    split = ensure_data(args.data, n, 8, "jsonl", args.seed)
    runs = {
        "1 JSONL file": (single / "jsonl", reports / f"n{n}-jsonl.json"),
        "8 JSONL files": (split / "jsonl", reports / f"n{n}-split8-jsonl.json"),
        "1 Parquet file": (single / "parquet", reports / f"n{n}-parquet.json"),
    }
    lines = [f"Split check at {n:,} requests (report keys compared: {', '.join(COMPARED)}, findings):", ""]
    loaded = {}
    for name, (path, report) in runs.items():
        if report in args.fresh_reports:  # written by the timed runs of this invocation: no need to scan again
            lines.append(f"- {name}: report of the timed run above")
            loaded[name] = json.loads(report.read_text(encoding="utf-8"))
            continue
        m = measure(scan_cmd(path, report), reports / "split-check.out", args.timeout, int(args.max_rss_gb * GIB))
        lines.append(
            f"- {name}: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s CPU, {m.peak_rss_bytes / GIB:.2f} GiB, {m.status}"
        )
        if m.status == "ok":
            loaded[name] = json.loads(report.read_text(encoding="utf-8"))
    lines.append("")
    base = loaded.get("1 JSONL file")
    for name in ("8 JSONL files", "1 Parquet file"):
        if base is None or name not in loaded:
            lines.append(f"- 1 JSONL file vs {name}: not compared (a scan did not finish)")
            continue
        differences = compare_reports(base, loaded[name])
        verdict = "EQUAL" if not differences else f"DIFFERENT ({len(differences)}+ differences)"
        lines.append(f"- 1 JSONL file vs {name}: {verdict}")
        lines += [f"    - {d}" for d in differences]
    if base is not None:
        totals = base["totals"]
        plan = base.get("plan", {})
        lines.append(
            f"- totals: {totals['requests']:,} requests, ${totals['cost_usd']:,.2f}; plan: "
            f"{json.dumps({k: v for k, v in plan.items() if not isinstance(v, list | dict)})}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[])
    parser.add_argument("--check-split", type=int, metavar="N", help="compare 1-file and 8-file reports at N")
    parser.add_argument("--large", type=int, metavar="N", help="also scan N requests from 10 zstd JSONL parts")
    parser.add_argument("--only", nargs="*", help="run only commands whose name contains one of these words")
    parser.add_argument("--data", type=Path, default=BENCH / "data")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per command before it is killed")
    parser.add_argument("--max-rss-gb", type=float, default=20.0, help="GiB of RSS before a command is killed")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    if not args.sizes and args.check_split is None and args.large is None:
        parser.error("give --sizes, --large and/or --check-split")
    args.fresh_reports = set()
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    header = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM, "
        f"Python {sys.version.split()[0]}\n\n"
    )
    parts = [header]
    if args.sizes:
        parts.append(run_sizes(args))
    if args.large is not None:
        parts.append("\n" + run_large(args))
    if args.check_split is not None:
        parts.append("\n" + check_split(args))
    text = "".join(parts)
    sys.stdout.write(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
