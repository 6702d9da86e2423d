from __future__ import annotations

import pytest

from auditor.gate import PolicyError, evaluate, parse_condition
from auditor.report import Finding, Plan, Report


def report(requests: int = 500, savings_pct: float = 25.0, unpriced: int = 0) -> Report:
    return Report(
        tool={"name": "llm-audit", "version": "t"},
        inputs={"records_skipped": 2},
        pricing={},
        totals={"requests": requests, "cost_usd": 1000.0, "unpriced_requests": unpriced},
        breakdowns={},
        findings=[
            Finding(
                code="LA401",
                lever="retries",
                title="t",
                severity="high",
                savings_usd=1.0,
                affected_requests=3,
                recommendation="r",
            )
        ],
        plan=Plan(current_cost_usd=1000.0, optimized_cost_usd=750.0, savings_usd=250.0, savings_pct=savings_pct),
    )


def test_metric_conditions_fail_only_when_true() -> None:
    assert evaluate(report(), ["savings_pct>20"]).status == "fail"
    assert evaluate(report(), ["savings_pct>30"]).status == "pass"
    assert evaluate(report(), ["cost_usd>=1000"]).exit_code == 1
    assert evaluate(report(), ["records_skipped>2"]).status == "pass"
    result = evaluate(report(unpriced=1), ["unpriced_requests>0"])
    assert result.reasons == ["unpriced_requests>0: unpriced_requests is 1"]


def test_finding_prefix_conditions() -> None:
    result = evaluate(report(), ["finding:LA4"])
    assert result.status == "fail" and "LA401" in result.reasons[0]
    assert evaluate(report(), ["finding:LA1"]).status == "pass"


def test_too_little_data_is_not_evaluable() -> None:
    result = evaluate(report(requests=50), ["savings_pct>20"], min_requests=100)
    assert result.status == "not_evaluable" and result.exit_code == 3


def test_bad_conditions_are_explained() -> None:
    with pytest.raises(PolicyError, match="METRIC OP NUMBER"):
        parse_condition("savings > lots")
    with pytest.raises(PolicyError, match="unknown metric 'bogus'"):
        evaluate(report(), ["bogus>1"])
