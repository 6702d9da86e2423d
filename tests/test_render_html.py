"""The HTML report: self-contained, escapes prompts, and renders in a real browser (headless Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.render import render
from auditor.report import Finding, LeverSummary, Plan, PlanStep, Report

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def sample_report() -> Report:
    return Report(
        tool={"name": "llm-audit", "version": "0.1.0"},
        inputs={
            "files": ["a.jsonl"],
            "records_read": 3,
            "records_skipped": 1,
            "skipped": [{"file": "a.jsonl", "line": 3, "reason": "malformed JSON: Expecting value"}],
            "formats": {"envelope": 2},
            "time_range": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-10-02T00:00:00+00:00"},
        },
        pricing={
            "table_date": "2026-11-20",
            "price_date": None,
            "unpriced_models": [{"model": "mystery-1", "requests": 1, "input_tokens": 10, "output_tokens": 5}],
        },
        totals={
            "requests": 2,
            "input_tokens": 3000,
            "output_tokens": 200,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": 12.5,
            "cost_complete": False,
            "unpriced_requests": 1,
            "logged_cost_usd": None,
        },
        breakdowns={
            "model": [
                {
                    "key": "gpt-4o",
                    "requests": 2,
                    "input_tokens": 3000,
                    "output_tokens": 200,
                    "cost_usd": 12.5,
                    "cost_share": 1.0,
                    "unpriced_requests": 0,
                }
            ]
        },
        levers=[
            LeverSummary(
                id="prompt_caching",
                title="Provider prompt caching",
                savings_usd=5.0,
                savings_low_usd=3.0,
                savings_high_usd=6.0,
                standalone_savings_usd=5.0,
                affected_requests=2,
                confidence="simulated",
                assumptions=["5-minute TTL"],
                method="replay of the provider cache",
                findings=["LA101"],
            )
        ],
        findings=[
            Finding(
                code="LA101",
                lever="prompt_caching",
                title="Stable prefix not cached",
                severity="high",
                savings_usd=5.0,
                affected_requests=2,
                recommendation="Add a cache breakpoint after the system prompt.",
                scope={"feature": HOSTILE},
                evidence={"example": HOSTILE},
            )
        ],
        plan=Plan(
            current_cost_usd=12.5,
            optimized_cost_usd=7.5,
            savings_usd=5.0,
            savings_pct=40.0,
            savings_low_usd=3.0,
            savings_high_usd=6.0,
            steps=[PlanStep(lever="prompt_caching", savings_usd=5.0, cost_after_usd=7.5)],
        ),
    )


def test_html_escapes_prompt_markup_and_is_self_contained() -> None:
    html = render(sample_report(), "html")
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    assert "<script" not in html  # no scripts at all, ours or theirs
    assert not re.search(r"""(src|href)=["']?https?://""", html)  # nothing fetched from the network
    assert "$12.50" in html and "$5.00" in html and "mystery-1" in html
    assert "a.jsonl:3" in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("LLM_AUDIT_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required in CI (.ci/run installs it) but was not found")
        pytest.skip("chromium not installed")
    page = tmp_path / "report.html"
    page.write_text(render(sample_report(), "html"), encoding="utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # the browser parsed the page: the title, the figures, and the hostile text as text, never as a live element
    assert "LLM spend audit" in dom
    assert "$12.50" in dom
    assert "<script>alert" not in dom and "&lt;script&gt;alert" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank image
