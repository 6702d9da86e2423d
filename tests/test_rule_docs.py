"""Every finding code the code can emit has its docs page with the fixed sections (ruff-style rule docs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("What it detects", "Why it costs money", "How the estimate is computed", "What to do",
            "When it is a false positive")  # fmt: skip


def emitted_codes() -> set[str]:
    codes: set[str] = set()
    for source in (ROOT / "auditor").rglob("*.py"):
        codes |= set(re.findall(r"\bLA[1-9]\d\d\b", source.read_text(encoding="utf-8")))
    return codes


def test_every_emitted_code_has_a_page_with_the_sections() -> None:
    codes = emitted_codes()
    assert {"LA101", "LA201", "LA301", "LA401", "LA801"} <= codes
    for code in sorted(codes):
        page = ROOT / "docs" / "rules" / f"{code}.md"
        assert page.is_file(), f"{code} has no docs/rules/{code}.md"
        text = page.read_text(encoding="utf-8")
        assert code in text.splitlines()[0], f"{page} should start with its code"
        missing = [s for s in SECTIONS if s.lower() not in text.lower()]
        assert not missing, f"{page} lacks sections {missing}"
