"""The terminal summary (rich): where the money goes, what is unpriced or skipped, and the savings plan."""

from __future__ import annotations

from io import StringIO
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from auditor.render.view import count, location, money, pct, scope_text, share, tokens
from auditor.report import Report

TOP_ROWS = 8
TOP_FINDINGS = 10
SKIPS_SHOWN = 5


def render_terminal(report: Report, console: Console) -> None:
    for part in terminal_parts(report):
        console.print(part)


def render_terminal_text(report: Report, *, width: int = 110, color: bool = False) -> str:
    buffer = StringIO()
    console = Console(file=buffer, width=width, color_system="standard" if color else None, force_terminal=color)
    render_terminal(report, console)
    return buffer.getvalue()


def terminal_parts(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = [_header(report), _totals(report)]
    if report.levers:
        parts.append(_plan(report))
    if report.findings:
        parts.append(_findings(report))
    for key, title in (
        ("model", "By model"),
        ("feature", "By feature"),
        ("tenant", "By tenant"),
        ("provider", "By provider"),
    ):
        rows = report.breakdowns.get(key) or []
        if rows and not (key in ("feature", "tenant") and len(rows) == 1 and rows[0]["key"] == "(none)"):
            parts.append(_breakdown(title, key, rows))
    if report.breakdowns.get("day"):
        parts.append(_days(report.breakdowns["day"]))
    if report.pricing.get("unpriced_models"):
        parts.append(_unpriced(report))
    mismatches = [row for row in report.pricing.get("logged_vs_recomputed") or [] if row.get("flagged")]
    if mismatches:
        parts.append(_logged_mismatch(mismatches))
    if report.gaps:
        parts.append(_gaps(report))
    parts.append(_skipped(report))
    return parts


def _header(report: Report) -> RenderableType:
    inputs = report.inputs
    span = inputs.get("time_range") or {}
    start, end = (span.get("start") or "")[:16], (span.get("end") or "")[:16]
    formats = ", ".join(f"{name} {n:,}" for name, n in (inputs.get("formats") or {}).items()) or "none"
    text = Text()
    text.append("llm-audit ", style="bold")
    text.append(f"{report.tool.get('version', '')}  ·  ")
    text.append(f"{len(inputs.get('files') or [])} file(s), {count(report.totals.get('requests'))} requests")
    if start:
        text.append(f"  ·  {start} → {end} UTC")
    text.append(f"\nformats: {formats}")
    price_date = report.pricing.get("price_date")
    text.append(f"\nprices: tables checked {report.pricing.get('table_date')}")
    text.append(f", repriced at {price_date}" if price_date else ", each request at its own day's price")
    return text


def _totals(report: Report) -> RenderableType:
    t = report.totals
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    cost = money(t.get("cost_usd"))
    if not t.get("cost_complete", True):
        cost += f"  (incomplete: {count(t.get('unpriced_requests'))} unpriced requests not included)"
    table.add_row("Cost (recomputed)", cost)
    if t.get("logged_cost_usd") is not None:
        table.add_row(
            f"Cost logged by the source ({count(t.get('logged_cost_requests'))} requests)",
            money(t.get("logged_cost_usd")),
        )
    table.add_row(
        "Requests",
        count(t.get("requests")) + (f"  ({count(t.get('error_requests'))} errors)" if t.get("error_requests") else ""),
    )
    table.add_row("Input tokens", tokens(t.get("input_tokens")))
    table.add_row("  of which cache reads", tokens(t.get("cache_read_tokens")))
    table.add_row("  of which cache writes", tokens(t.get("cache_write_tokens")))
    table.add_row("Output tokens", tokens(t.get("output_tokens")))
    table.add_row("  of which reasoning", tokens(t.get("reasoning_tokens")))
    if t.get("estimated_token_requests"):
        table.add_row("Token counts estimated", f"{count(t.get('estimated_token_requests'))} requests (tiktoken)")
    return Panel(table, title="Spend", title_align="left")


def _plan(report: Report) -> RenderableType:
    plan = report.plan
    headline = Text()
    headline.append(f"{money(plan.current_cost_usd)} → {money(plan.optimized_cost_usd)}   ", style="bold")
    headline.append(f"save {money(plan.savings_usd)} ({pct(plan.savings_pct)})", style="bold green")
    headline.append(f"   range {money(plan.savings_low_usd)} – {money(plan.savings_high_usd)}")
    table = Table(box=None, show_edge=False, pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("lever")
    table.add_column("saves", justify="right")
    table.add_column("range", justify="right")
    table.add_column("requests", justify="right")
    table.add_column("confidence")
    table.add_column("cost after", justify="right")
    steps = {step.lever: step for step in plan.steps}
    for i, lever in enumerate(report.levers, start=1):
        step = steps.get(lever.id)
        table.add_row(
            str(i),
            lever.title,
            money(lever.savings_usd),
            f"{money(lever.savings_low_usd)} – {money(lever.savings_high_usd)}",
            count(lever.affected_requests),
            lever.confidence,
            money(step.cost_after_usd) if step else "—",
        )
    note = Text(
        "Levers apply in order, each to the traffic the previous ones left, so no dollar is counted twice.",
        style="dim",
    )
    return Panel(Group(headline, table, note), title="Savings plan", title_align="left")


def _findings(report: Report) -> RenderableType:
    table = Table(box=None, show_edge=False, pad_edge=False)
    table.add_column("code", style="bold")
    table.add_column("finding")
    table.add_column("where")
    table.add_column("saves", justify="right")
    table.add_column("requests", justify="right")
    for finding in report.findings[:TOP_FINDINGS]:
        table.add_row(
            finding.code,
            finding.title,
            scope_text(finding.scope),
            money(finding.savings_usd) if finding.savings_usd else "—",
            count(finding.affected_requests),
        )
    more = len(report.findings) - TOP_FINDINGS
    footer = Text(
        (f"+{more} more in the JSON/HTML report. " if more > 0 else "") + "Details: llm-audit explain CODE",
        style="dim",
    )
    return Panel(Group(table, footer), title=f"Findings ({len(report.findings)})", title_align="left")


def _breakdown(title: str, key: str, rows: list[dict[str, Any]]) -> RenderableType:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, pad_edge=False)
    table.add_column(key)
    table.add_column("requests", justify="right")
    table.add_column("input", justify="right")
    table.add_column("output", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("share", justify="right")
    for row in rows[:TOP_ROWS]:
        cost = money(row["cost_usd"])
        if row.get("unpriced_requests"):
            cost += f" (+{count(row['unpriced_requests'])} unpriced)"
        table.add_row(
            str(row["key"]),
            count(row["requests"]),
            tokens(row["input_tokens"]),
            tokens(row["output_tokens"]),
            cost,
            share(row.get("cost_share")),
        )
    if len(rows) > TOP_ROWS:
        table.add_row(f"… {len(rows) - TOP_ROWS} more", "", "", "", "", "")
    return table


def _days(rows: list[dict[str, Any]]) -> RenderableType:
    peak = max((row["cost_usd"] for row in rows), default=0.0) or 1.0
    table = Table(title="By day", title_justify="left", title_style="bold", box=None, pad_edge=False)
    table.add_column("day")
    table.add_column("requests", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("")
    shown = rows if len(rows) <= 31 else rows[-31:]
    for row in shown:
        bar = "█" * max(1, round(row["cost_usd"] / peak * 30)) if row["cost_usd"] else ""
        table.add_row(row["key"], count(row["requests"]), money(row["cost_usd"]), Text(bar, style="cyan"))
    return table


def _unpriced(report: Report) -> RenderableType:
    table = Table(box=None, pad_edge=False)
    table.add_column("model")
    table.add_column("requests", justify="right")
    table.add_column("input", justify="right")
    table.add_column("output", justify="right")
    for row in report.pricing["unpriced_models"]:
        table.add_row(
            str(row.get("model")),
            count(row.get("requests")),
            tokens(row.get("input_tokens")),
            tokens(row.get("output_tokens")),
        )
    hint = Text(
        "Not in the price tables: these requests are NOT in the cost totals. Add the model under "
        "pricing.overrides in llm-audit.yaml (see docs/pricing.md).",
        style="yellow",
    )
    return Panel(Group(table, hint), title="Unpriced models", title_align="left", border_style="yellow")


def _logged_mismatch(rows: list[dict[str, Any]]) -> RenderableType:
    table = Table(box=None, pad_edge=False)
    table.add_column("model")
    table.add_column("logged", justify="right")
    table.add_column("recomputed", justify="right")
    table.add_column("difference", justify="right")
    for row in rows:
        table.add_row(
            str(row.get("model")),
            money(row.get("logged_cost_usd")),
            money(row.get("recomputed_cost_usd")),
            pct(row.get("difference_pct")),
        )
    return Panel(table, title="Logged cost differs from recomputed (> 1%)", title_align="left", border_style="yellow")


def _gaps(report: Report) -> RenderableType:
    table = Table(box=None, pad_edge=False)
    table.add_column("lever")
    table.add_column("missing")
    table.add_column("requests", justify="right")
    table.add_column("cost at stake", justify="right")
    for gap in report.gaps:
        table.add_row(gap.lever, ", ".join(gap.missing_fields), count(gap.requests), money(gap.cost_at_stake_usd))
    return Panel(table, title="What the logs could not tell", title_align="left")


def _skipped(report: Report) -> RenderableType:
    inputs = report.inputs
    n = inputs.get("records_skipped", 0)
    if not n:
        return Text(f"All {count(inputs.get('records_read'))} records read; none skipped.", style="dim")
    lines = Text()
    lines.append(f"{count(n)} record(s) skipped", style="bold yellow")
    lines.append(f" of {count(inputs.get('records_read'))} read (use --strict to fail on any):\n")
    for skip in (inputs.get("skipped") or [])[:SKIPS_SHOWN]:
        lines.append(f"  {location(skip)}: {skip.get('reason')}\n")
    if n > SKIPS_SHOWN:
        lines.append(f"  … {count(n - SKIPS_SHOWN)} more in --format json (inputs.skipped)\n", style="dim")
    return lines
