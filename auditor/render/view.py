"""Formatting helpers shared by the renderers: numbers as people read them. No computation of results."""

from __future__ import annotations

from typing import Any


def money(value: float | None, *, precise: bool = False) -> str:
    """$1,234.56; small amounts keep significant digits ($0.000225) so they never read as $0.00."""
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    sign = "-" if value < 0 else ""
    v = abs(value)
    if precise or v < 0.01:
        text = f"{v:,.6f}".rstrip("0")
        return f"{sign}${text}"
    if v < 100:
        return f"{sign}${v:,.2f}"
    return f"{sign}${v:,.0f}" if v >= 100_000 else f"{sign}${v:,.2f}"


def count(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{int(value):,}"


def tokens(value: int | float | None) -> str:
    """1,234 / 12.3K / 4.56M / 7.8B."""
    if value is None:
        return "—"
    v = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= limit * 10 or (suffix != "K" and abs(v) >= limit):
            return f"{v / limit:,.1f}{suffix}"
    return f"{int(v):,}"


def pct(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}%"


def share(value: float | None) -> str:
    return pct(None if value is None else value * 100)


def location(skip: dict[str, Any]) -> str:
    line = skip.get("line")
    return f"{skip.get('file')}:{line}" if line is not None else str(skip.get("file"))


def scope_text(scope: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "all traffic"
