"""Terminal view of `llm-audit diff`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from auditor.render.view import count, money, pct


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.endswith("_usd"):
        return money(value)
    if key.endswith("_pct"):
        return pct(value)
    return count(value)


def render_diff(changes: dict[str, Any], console: Console) -> None:
    table = Table(title="base → head", title_justify="left", box=None)
    for column in ("", "base", "head", "change"):
        table.add_column(column, justify="left" if not column else "right")
    for section in ("totals", "plan"):
        for key, change in changes[section].items():
            delta = change["delta"]
            sign = "+" if delta > 0 else ""
            rel = f" ({change['delta_pct']:+.1f}%)" if change.get("delta_pct") is not None else ""
            table.add_row(key, _fmt(key, change["base"]), _fmt(key, change["head"]), f"{sign}{_fmt(key, delta)}{rel}")
    console.print(table)
    for title, rows in (("New findings", changes["findings_new"]), ("Resolved findings", changes["findings_resolved"])):
        if rows:
            console.print(f"[bold]{title}[/]")
            for row in rows:
                console.print(f"  {row['key']}: {row['title']} ({money(row['savings_usd'])})", highlight=False)
