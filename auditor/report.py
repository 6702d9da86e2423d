"""The Report: the one versioned, JSON-serializable model that every renderer and the gate read.

Shape follows DESIGN.md §4 (schema_version 1). Money is USD as a JSON number, computed exactly upstream
and rounded to 1e-9 here (a nano-dollar) so the JSON is stable; renderers round for display.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

SCHEMA_VERSION = 1

Confidence = Literal["measured", "simulated", "heuristic"]
Severity = Literal["high", "medium", "low", "info"]

# Plan order of the levers (DESIGN §5): each lever sees the traffic the previous ones left.
LEVER_ORDER: tuple[str, ...] = (
    "retries",
    "response_cache",
    "model_tiering",
    "context_trimming",
    "output_caps",
    "prompt_caching",
    "batching",
)


def usd(value: Decimal | float | int | None) -> float | None:
    """Money for the report: a float rounded to a nano-dollar (None stays None)."""
    if value is None:
        return None
    return float(round(Decimal(value), 9))


@dataclass
class Finding:
    code: str  # LA101 ...
    lever: str  # lever id, or "data" for LA8xx gaps, "hygiene" for LA9xx
    title: str  # what is wrong, e.g. "Stable 3,120-token system prompt is not cached"
    severity: Severity
    savings_usd: float  # expected savings of this finding alone (0 for quality findings such as LA303)
    affected_requests: int
    recommendation: str  # what to do instead
    scope: dict[str, str] = field(default_factory=dict)  # model / feature / tenant / provider
    evidence: dict[str, Any] = field(default_factory=dict)  # numbers and masked examples behind it


@dataclass
class LeverSummary:
    id: str
    title: str
    savings_usd: float  # marginal savings in plan order (equals this lever's plan step)
    savings_low_usd: float
    savings_high_usd: float
    standalone_savings_usd: float  # if this lever were applied alone to all traffic
    affected_requests: int
    confidence: Confidence
    assumptions: list[str] = field(default_factory=list)
    method: str = ""  # how the counterfactual was computed, in one or two sentences
    findings: list[str] = field(default_factory=list)  # finding codes


@dataclass
class PlanStep:
    lever: str
    savings_usd: float
    cost_after_usd: float


@dataclass
class Plan:
    current_cost_usd: float = 0.0
    optimized_cost_usd: float = 0.0
    savings_usd: float = 0.0
    savings_pct: float = 0.0
    savings_low_usd: float = 0.0
    savings_high_usd: float = 0.0
    steps: list[PlanStep] = field(default_factory=list)


@dataclass
class Gap:
    lever: str
    missing_fields: list[str]
    requests: int
    cost_at_stake_usd: float
    note: str = ""


@dataclass
class Report:
    tool: dict[str, str]
    inputs: dict[str, Any]
    pricing: dict[str, Any]
    totals: dict[str, Any]
    breakdowns: dict[str, list[dict[str, Any]]]
    levers: list[LeverSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)
    gaps: list[Gap] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # schema_version first: readers check it before anything else
        return {"schema_version": data.pop("schema_version"), **data}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"report schema_version {version!r} is not supported (this llm-audit reads {SCHEMA_VERSION})"
            )
        plan = data.get("plan") or {}
        return cls(
            schema_version=version,
            tool=dict(data.get("tool", {})),
            inputs=dict(data.get("inputs", {})),
            pricing=dict(data.get("pricing", {})),
            totals=dict(data.get("totals", {})),
            breakdowns={k: list(v) for k, v in (data.get("breakdowns") or {}).items()},
            levers=[LeverSummary(**lever) for lever in data.get("levers", [])],
            findings=[Finding(**finding) for finding in data.get("findings", [])],
            plan=Plan(
                current_cost_usd=plan.get("current_cost_usd", 0.0),
                optimized_cost_usd=plan.get("optimized_cost_usd", 0.0),
                savings_usd=plan.get("savings_usd", 0.0),
                savings_pct=plan.get("savings_pct", 0.0),
                savings_low_usd=plan.get("savings_low_usd", 0.0),
                savings_high_usd=plan.get("savings_high_usd", 0.0),
                steps=[PlanStep(**step) for step in plan.get("steps", [])],
            ),
            gaps=[Gap(**gap) for gap in data.get("gaps", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))
