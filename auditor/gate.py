"""CI gate: evaluate a policy against a Report and decide the exit code.

A policy is a list of conditions that FAIL the gate when true, e.g.
  savings_pct>20          the plan says more than 20% could be saved
  cost_usd>=5000          spend over a budget
  unpriced_requests>0     a model we cannot price appeared
  finding:LA4             any finding whose code starts with LA4 (retries)
  finding:LA102           a cache buster appeared
plus `min_requests`: below it the sample is too small to judge (exit 3, not evaluable).
Metrics are looked up in plan, then totals, then inputs of the Report.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from auditor.report import Report

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.]+)\s*$")
_FINDING = re.compile(r"^\s*finding:(LA[0-9]{1,3})\s*$", re.IGNORECASE)


class PolicyError(ValueError):
    """A condition that cannot be parsed; the message shows the accepted forms."""


@dataclass(frozen=True)
class Condition:
    text: str
    metric: str | None = None
    op: str | None = None
    threshold: float | None = None
    finding_prefix: str | None = None


@dataclass
class GateResult:
    status: Literal["pass", "fail", "not_evaluable"]
    reasons: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "not_evaluable": 3}[self.status]


def parse_condition(text: str) -> Condition:
    if match := _FINDING.match(text):
        return Condition(text=text.strip(), finding_prefix=match.group(1).upper())
    if match := _CONDITION.match(text):
        return Condition(text=text.strip(), metric=match.group(1), op=match.group(2), threshold=float(match.group(3)))
    raise PolicyError(
        f"cannot read the condition {text!r}; write METRIC OP NUMBER (e.g. savings_pct>20, cost_usd>=5000, "
        "unpriced_requests>0) or finding:CODE (e.g. finding:LA4)"
    )


def _metric(report: Report, name: str) -> Any:
    plan = {
        "current_cost_usd": report.plan.current_cost_usd,
        "optimized_cost_usd": report.plan.optimized_cost_usd,
        "savings_usd": report.plan.savings_usd,
        "savings_pct": report.plan.savings_pct,
    }
    for source in (plan, report.totals, report.inputs):
        if name in source:
            return source[name]
    known = sorted(
        {*plan, *(k for k, v in report.totals.items() if isinstance(v, int | float)), "records_skipped", "records_read"}
    )
    raise PolicyError(f"unknown metric {name!r}; known: {', '.join(known)}")


def evaluate(report: Report, conditions: Sequence[str], *, min_requests: int = 0) -> GateResult:
    parsed = [parse_condition(text) for text in conditions]
    requests = int(report.totals.get("requests") or 0)
    if requests < min_requests:
        return GateResult(
            "not_evaluable", [f"only {requests} requests; the policy needs at least {min_requests} to judge"]
        )
    reasons = []
    for cond in parsed:
        if cond.finding_prefix is not None:
            hits = [f for f in report.findings if f.code.upper().startswith(cond.finding_prefix)]
            if hits:
                codes = ", ".join(sorted({f.code for f in hits}))
                reasons.append(f"{cond.text}: {len(hits)} finding(s) ({codes})")
            continue
        assert cond.metric is not None and cond.op is not None and cond.threshold is not None
        value = _metric(report, cond.metric)
        if value is not None and _OPS[cond.op](float(value), cond.threshold):
            reasons.append(f"{cond.text}: {cond.metric} is {value}")
    return GateResult("fail" if reasons else "pass", reasons)
