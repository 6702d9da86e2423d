"""Markdown for CI and PR comments: the headline, the plan, the top findings, what was not priced."""

from __future__ import annotations

from auditor.render.view import count, location, money, pct, scope_text, share, tokens
from auditor.report import Report

TOP_FINDINGS = 15


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    t = report.totals
    out: list[str] = ["## llm-audit report", ""]
    span = report.inputs.get("time_range") or {}
    cost = money(t.get("cost_usd"))
    if not t.get("cost_complete", True):
        cost += f" (incomplete: {count(t.get('unpriced_requests'))} unpriced requests)"
    out += [
        f"**{count(t.get('requests'))} requests** from {len(report.inputs.get('files') or [])} file(s)"
        + (f", {span.get('start')} → {span.get('end')}" if span.get("start") else "")
        + f" · **cost {cost}**",
        "",
        f"Input {tokens(t.get('input_tokens'))} tokens (cache reads {tokens(t.get('cache_read_tokens'))}, "
        f"writes {tokens(t.get('cache_write_tokens'))}) · output {tokens(t.get('output_tokens'))} "
        f"(reasoning {tokens(t.get('reasoning_tokens'))})",
        "",
    ]
    plan = report.plan
    if report.levers:
        out += [
            f"### Savings plan: {money(plan.savings_usd)} ({pct(plan.savings_pct)}), "
            f"range {money(plan.savings_low_usd)} – {money(plan.savings_high_usd)}",
            "",
            "| # | lever | saves | range | requests | confidence | cost after |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        steps = {s.lever: s for s in plan.steps}
        for i, lever in enumerate(report.levers, start=1):
            step = steps.get(lever.id)
            out.append(
                f"| {i} | {_cell(lever.title)} | {money(lever.savings_usd)} | "
                f"{money(lever.savings_low_usd)} – {money(lever.savings_high_usd)} | {count(lever.affected_requests)} "
                f"| {lever.confidence} | {money(step.cost_after_usd) if step else '—'} |"
            )
        out += ["", "Levers apply in order, each to the traffic the previous ones left (no double counting).", ""]
    if report.findings:
        out += ["### Findings", "", "| code | finding | where | saves | requests |", "|---|---|---|---:|---:|"]
        for f in report.findings[:TOP_FINDINGS]:
            out.append(
                f"| {f.code} | {_cell(f.title)} | {_cell(scope_text(f.scope))} | "
                f"{money(f.savings_usd) if f.savings_usd else '—'} | {count(f.affected_requests)} |"
            )
        if len(report.findings) > TOP_FINDINGS:
            out.append(f"\n… and {len(report.findings) - TOP_FINDINGS} more (see the JSON report).")
        out.append("")
    models = report.breakdowns.get("model") or []
    if models:
        out += ["### By model", "", "| model | requests | cost | share |", "|---|---:|---:|---:|"]
        for row in models[:10]:
            out.append(
                f"| {_cell(row['key'])} | {count(row['requests'])} | {money(row['cost_usd'])} | "
                f"{share(row.get('cost_share'))} |"
            )
        out.append("")
    unpriced = report.pricing.get("unpriced_models") or []
    if unpriced:
        out += [
            "### Unpriced models (not in the totals)",
            "",
            "| model | requests | input | output |",
            "|---|---:|---:|---:|",
        ]
        for row in unpriced:
            out.append(
                f"| {_cell(row.get('model'))} | {count(row.get('requests'))} | "
                f"{tokens(row.get('input_tokens'))} | {tokens(row.get('output_tokens'))} |"
            )
        out.append("")
    skipped = report.inputs.get("records_skipped", 0)
    if skipped:
        out += [f"### {count(skipped)} record(s) skipped", ""]
        samples = (report.inputs.get("skipped") or [])[:10]
        out += [f"- `{_cell(location(s))}`: {_cell(s.get('reason'))}" for s in samples]
        out.append("")
    return "\n".join(out) + "\n"
