"""Compare two reports (base -> head): what changed in spend, savings and findings."""

from __future__ import annotations

from typing import Any

from auditor.report import Finding, Report


def _finding_key(finding: Finding) -> str:
    scope = ",".join(f"{k}={v}" for k, v in sorted(finding.scope.items()))
    return f"{finding.code}[{scope}]"


def _change(base: float | int | None, head: float | int | None) -> dict[str, Any]:
    b, h = float(base or 0), float(head or 0)
    return {
        "base": base,
        "head": head,
        "delta": round(h - b, 9),
        "delta_pct": round((h - b) / b * 100, 2) if b else None,
    }


def diff_reports(base: Report, head: Report) -> dict[str, Any]:
    base_findings = {_finding_key(f): f for f in base.findings}
    head_findings = {_finding_key(f): f for f in head.findings}
    base_models = {row["key"]: row for row in base.breakdowns.get("model", [])}
    head_models = {row["key"]: row for row in head.breakdowns.get("model", [])}
    return {
        "totals": {
            key: _change(base.totals.get(key), head.totals.get(key))
            for key in (
                "requests",
                "cost_usd",
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "unpriced_requests",
            )
        },
        "plan": {
            key: _change(getattr(base.plan, key), getattr(head.plan, key))
            for key in ("current_cost_usd", "savings_usd", "savings_pct")
        },
        "models": {
            model: _change(
                (base_models.get(model) or {}).get("cost_usd"), (head_models.get(model) or {}).get("cost_usd")
            )
            for model in sorted(set(base_models) | set(head_models))
        },
        "findings_new": [
            {"key": key, "title": head_findings[key].title, "savings_usd": head_findings[key].savings_usd}
            for key in sorted(set(head_findings) - set(base_findings))
        ],
        "findings_resolved": [
            {"key": key, "title": base_findings[key].title, "savings_usd": base_findings[key].savings_usd}
            for key in sorted(set(base_findings) - set(head_findings))
        ],
    }
