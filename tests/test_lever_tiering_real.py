"""model_tiering on the shipped price tables (pricing/openai.yaml) through the real PriceBook.

gpt-4.1 is premium at $2 / $8 per Mtok (input / output) with cheaper candidates [gpt-4.1-mini ($0.40 /
$1.60), gpt-4.1-nano] and successor gpt-5 ($1.25 / $10), which costs *more* on output-heavy work; gpt-4o
($2.50 / $10) has successor gpt-4.1, which is cheaper on everything.
"""

from __future__ import annotations

from typing import Any

import pytest

from auditor.levers.base import LeverContext
from auditor.levers.tiering import LEVER
from auditor.plan import build_plan
from auditor.prices import PriceBook
from tests.helpers import canonical

BOOK = PriceBook.load()


def req(feature: str, system: str, user: str, inp: int, out: int, model: str = "gpt-4.1", **kw: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "model": model,
        "feature": feature,
        "system_text": system,
        "last_user_text": user,
        "input_tokens": inp,
        "output_tokens": out,
        **kw,
    }


def tickets(n: int = 40, feature: str = "tickets") -> list[dict[str, Any]]:
    system = "Classify the support ticket into one of: billing, bug, account. Respond with only the label."
    return [req(feature, system, "I was charged twice", 500, 2, temperature=0.0) for _ in range(n)]


def codegen(n: int = 30) -> list[dict[str, Any]]:
    system = "You are a senior engineer. Write a Python function for the task."
    return [req("codegen", system, "Sort invoices by date", 300, 600, output_text="```python\ndef f(): ...\n```")] * n


def mixed() -> list[dict[str, Any]]:
    system = "You are a helpful assistant."
    short = req("assistant", system, "Is this refundable? Answer yes or no.", 200, 1)
    long = req("assistant", system, "Draft a launch announcement.", 200, 1200, temperature=1.0)
    return [short] * 20 + [long] * 20


def analyze(rows: list[dict[str, Any]], **options: Any) -> Any:
    frame = canonical(rows)
    return frame, LEVER.analyze(frame, LeverContext(prices=BOOK, options=options))


def test_constructed_features_on_real_prices() -> None:
    rows = tickets() + codegen() + mixed() + tickets(30, "pinned")
    frame, result = analyze(rows, pins={"pinned": "gpt-4.1"})
    found = {(f.code, f.scope.get("feature")): f for f in result.findings}
    assert sorted(found) == [("LA201", "tickets"), ("LA202", "assistant")]

    la201 = found[("LA201", "tickets")]
    assert la201.evidence["candidate"] == "gpt-4.1-mini"
    # gpt-4.1: 500 * 2/1e6 + 2 * 8/1e6 = 0.001016; gpt-4.1-mini: 0.0002 + 0.0000032 = 0.0002032
    # 40 * (0.001016 - 0.0002032) = 0.032512; expected 0.8 x -> 0.0260096, low 0.5 x, high 1.0 x
    assert la201.savings_usd == pytest.approx(0.0260096, abs=1e-9)
    assert la201.evidence["savings_low_usd"] == pytest.approx(0.016256, abs=1e-9)
    assert la201.evidence["savings_high_usd"] == pytest.approx(0.032512, abs=1e-9)

    la202 = found[("LA202", "assistant")]
    # 20 yes/no requests: gpt-4.1 0.0004 + 0.000008 = 0.000408; mini 0.00008 + 0.0000016 = 0.0000816
    # 20 * 0.0003264 = 0.006528; route share 0.6 -> 0.0039168
    assert la202.savings_usd == pytest.approx(0.0039168, abs=1e-9)

    plan, _ = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.0260096 + 0.0039168, abs=1e-9)


def test_older_model_with_cheaper_successor_is_la203() -> None:
    rows = [{**r, "model": "gpt-4o"} for r in codegen(10)]
    _, result = analyze(rows)
    assert [(f.code, f.scope["model"]) for f in result.findings] == [("LA203", "gpt-4o")]
    # gpt-4o 300 * 2.5/1e6 + 600 * 10/1e6 = 0.00675; gpt-4.1 0.0006 + 0.0048 = 0.0054; 10 * 0.00135 = 0.0135
    assert result.findings[0].savings_usd == pytest.approx(0.0135, abs=1e-9)
    assert result.findings[0].evidence["successor"] == "gpt-4.1"
