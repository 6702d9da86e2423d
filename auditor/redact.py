"""Prompts are private: short, masked excerpts for reports (secrets, e-mails, keys, long numbers)."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # The END line is optional: a text head (auditor.reduce) can cut a key block before it ends.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*\Z)", re.S),
        "[private-key]",
    ),
    (re.compile(r"\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}\b"), "[api-key]"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "[aws-key]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"), "[github-token]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b"), "[slack-token]"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\b"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer|password|passwd|secret|token|api[_-]?key)(\s*[:=]\s*|\s+)\S{6,}"), r"\1\2[secret]"),
    (re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"), "[email]"),
    (re.compile(r"\b(?:\d[ \-]?){13,19}\b"), "[number]"),  # card-like numbers
    (re.compile(r"\+?\d[\d\s().\-]{8,}\d"), "[phone]"),
)


def mask_secrets(text: str) -> str:
    """Replace secrets and personal data with placeholders; everything else is kept."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def excerpt(text: str | None, limit: int = 120, *, full: bool = False) -> str:
    """A masked, single-line excerpt of at most `limit` characters (`full=True` keeps the whole text)."""
    if not text:
        return ""
    masked = mask_secrets(text)
    if full:
        return masked
    one_line = " ".join(masked.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
