"""Renderers: every output is drawn from the Report alone (one model, many outputs)."""

from __future__ import annotations

from typing import Literal

from auditor.report import Report

Format = Literal["terminal", "json", "markdown", "html"]
FORMATS: tuple[str, ...] = ("terminal", "json", "markdown", "html")


def render(report: Report, fmt: str, *, width: int = 110, color: bool = False) -> str:
    """The report in `fmt` as text (terminal output rendered without colour unless asked)."""
    if fmt == "json":
        return report.to_json() + "\n"
    if fmt == "markdown":
        from auditor.render.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from auditor.render.html import render_html

        return render_html(report)
    if fmt == "terminal":
        from auditor.render.terminal import render_terminal_text

        return render_terminal_text(report, width=width, color=color)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
