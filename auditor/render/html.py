"""Self-contained HTML report for FinOps reviews: one file, inline CSS, no scripts, no network."""

from __future__ import annotations

import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from auditor.render import view
from auditor.report import Report


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("auditor.render", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),  # prompts in evidence render as text
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=view.money,
        count=view.count,
        tokens=view.tokens,
        pct=view.pct,
        share=view.share,
        location=view.location,
        scope=view.scope_text,
        pretty=lambda value: json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )
    return env


def _waterfall(report: Report) -> list[dict[str, Any]]:
    """Bar geometry (percent of current cost) for the plan chart; formatting only, no new numbers."""
    plan = report.plan
    base = plan.current_cost_usd or 1.0
    bars = [{"label": "current", "value": plan.current_cost_usd, "left": 0.0, "width": 100.0, "kind": "total"}]
    level = plan.current_cost_usd
    for step in plan.steps:
        width = step.savings_usd / base * 100
        bars.append(
            {
                "label": step.lever,
                "value": -step.savings_usd,
                "left": step.cost_after_usd / base * 100,
                "width": width,
                "kind": "step",
            }
        )
        level = step.cost_after_usd
    bars.append({"label": "optimized", "value": level, "left": 0.0, "width": level / base * 100, "kind": "total"})
    return bars


def render_html(report: Report) -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(r=report, waterfall=_waterfall(report) if report.levers else [])
