"""Compare two report JSON files on what must not change: totals, breakdowns, levers, plan, findings.

    python benchmarks/compare.py before.json after.json [--evidence]

Exit 0 and EQUAL when they agree; otherwise up to 10 differences and exit 1. Findings are compared on code, lever,
scope, savings and affected requests; `--evidence` also compares their evidence (excerpts, examples).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import _diff, compare_reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--evidence", action="store_true", help="compare finding evidence too")
    args = parser.parse_args()
    one, other = (json.loads(p.read_text(encoding="utf-8")) for p in (args.before, args.after))
    differences = compare_reports(one, other)
    if args.evidence:
        _diff(one.get("findings"), other.get("findings"), "findings", differences)
    print("EQUAL" if not differences else "DIFFERENT")
    for line in differences:
        print(" ", line)
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
