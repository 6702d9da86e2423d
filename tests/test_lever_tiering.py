"""model_tiering lever on constructed features, priced with a small hand-made price book.

Prices per million tokens (input / output): prem $10/$40 (premium, candidate smol), smol $0.50/$2 (small),
old-mid $3/$15 (mid, successor new-mid $2/$10), prem2 $10/$40 (premium, no same-provider candidate),
xprov $1/$4 (small, another provider). The real price tables are exercised in test_lever_tiering_real.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from auditor.config import ConfigError
from auditor.levers import available_levers
from auditor.levers.base import COUNTERFACTUAL_SCHEMA, LeverContext
from auditor.levers.tiering import LEVER, TieringOptions
from auditor.plan import build_plan
from auditor.prices import ModelPrice
from auditor.reduce import is_reduced, reduce_chunk
from auditor.schema import MONEY, rows_to_frame
from tests.helpers import at, model_price

DAY = date(2026, 10, 1)


def _mp(model_id: str, provider: str, family: Any, inp: str, out: str, **kw: Any) -> ModelPrice:
    return model_price(model_id, provider, inp, out, family=family, **kw)


class FakeBook:
    """Just the two PriceBook calls the lever makes: model() and cost() (input and output tokens only)."""

    def __init__(self) -> None:
        self.models = {
            m.model_id: m
            for m in (
                _mp("prem", "acme", "premium", "10", "40", cheaper_candidates=("smol",)),
                _mp("smol", "acme", "small", "0.5", "2"),
                _mp("old-mid", "acme", "mid", "3", "15", successor="new-mid"),
                _mp("new-mid", "acme", "mid", "2", "10"),
                _mp("prem2", "acme", "premium", "10", "40"),
                _mp("xprov", "other", "small", "1", "4"),
            )
        }

    def model(self, model_id: str, on: date) -> ModelPrice:
        return self.models[model_id]

    def cost(self, frame: pl.DataFrame, price_date: date | None = None) -> pl.Series:
        values = []
        for model_id, inp, out in frame.select("model_id", "input_tokens", "output_tokens").iter_rows():
            m = self.models.get(model_id)
            values.append(None if m is None else (inp * m.input_mtok + out * m.output_mtok) / Decimal(1_000_000))
        return pl.Series("cost_usd", values, dtype=MONEY)


BOOK = FakeBook()

TICKET_SYSTEM = "Classify the support ticket into one of: billing, bug, account. Respond with only the label."
CODE_SYSTEM = "You are a senior engineer. Write a Python function for the task; return only code."
CODE_OUTPUT = "```python\ndef solve(items):\n    return sorted(items)\n```"


def ticket(feature: str = "tickets", model: str = "prem") -> dict[str, Any]:
    # 500 in, 2 out on prem: 500*10/1e6 + 2*40/1e6 = 0.00508; on smol: 0.00025 + 0.000004 = 0.000254
    return {
        "feature": feature,
        "model_id": model,
        "system_text": TICKET_SYSTEM,
        "last_user_text": "I was charged twice this month, please help",
        "input_tokens": 500,
        "output_tokens": 2,
        "temperature": 0.0,
        "output_text": "billing",
    }


def codegen() -> dict[str, Any]:
    return {
        "feature": "codegen",
        "model_id": "prem",
        "system_text": CODE_SYSTEM,
        "last_user_text": "Sort a list of invoices by date",
        "input_tokens": 300,
        "output_tokens": 600,
        "output_text": CODE_OUTPUT,
    }


def yes_no() -> dict[str, Any]:
    # 200 in, 1 out on prem: 0.002 + 0.00004 = 0.00204; on smol: 0.0001 + 0.000002 = 0.000102
    return {
        "feature": "assistant",
        "model_id": "prem",
        "system_text": "You are a helpful assistant.",
        "last_user_text": "Is this order refundable? Answer yes or no.",
        "input_tokens": 200,
        "output_tokens": 1,
    }


def essay() -> dict[str, Any]:
    return {
        "feature": "assistant",
        "model_id": "prem",
        "system_text": "You are a helpful assistant.",
        "last_user_text": "Draft a launch announcement for our new plan.",
        "input_tokens": 200,
        "output_tokens": 1200,
        "temperature": 1.0,
    }


def frame_of(rows: list[dict[str, Any]], book: FakeBook = BOOK) -> pl.DataFrame:
    filled = [{"timestamp": at(i), "provider": "acme", "status": "ok", **row} for i, row in enumerate(rows)]
    frame = rows_to_frame(filled).with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    ids = [r.get("model_id") for r in filled]
    frame = frame.with_columns(
        pl.Series("model_id", ids, dtype=pl.String),
        pl.lit(DAY).alias("price_date"),
        pl.lit(False).alias("unpriced"),
    )
    return frame.with_columns(book.cost(frame).alias("cost_usd"))


def run(rows: list[dict[str, Any]], **options: Any) -> Any:
    return LEVER.analyze(frame_of(rows), LeverContext(prices=BOOK, options=options))  # type: ignore[arg-type]


def codes(result: Any) -> list[tuple[str, str | None]]:
    return sorted((f.code, f.scope.get("feature")) for f in result.findings)


def test_ticket_classifier_on_premium_is_la201_with_hand_computed_savings() -> None:
    result = run([ticket() for _ in range(40)])
    assert codes(result) == [("LA201", "tickets")]
    finding = result.findings[0]
    # per request: 0.00508 - 0.000254 = 0.004826; 40 requests -> 0.19304 if all moved
    # expected 0.8 * 0.19304 = 0.154432; low 0.5 * 0.19304 = 0.09652; high 1.0 * 0.19304
    assert finding.savings_usd == pytest.approx(0.154432, abs=1e-9)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.09652, abs=1e-9)
    assert finding.evidence["savings_high_usd"] == pytest.approx(0.19304, abs=1e-9)
    assert finding.evidence["candidate"] == "smol"
    assert finding.evidence["dominant_family"] == "classification"
    assert finding.evidence["signals"][0] == {"signals": "kw_classify,enum_output", "requests": 40}
    assert finding.affected_requests == 40
    assert finding.severity == "high"  # 0.154 of 0.2032 total spend
    cf = result.counterfactual
    assert cf.schema == pl.Schema(COUNTERFACTUAL_SCHEMA)
    assert cf.height == 40
    row = cf.row(0, named=True)
    # 0.00508 - 0.8 * 0.004826 = 0.0012192; low case 0.00508 - 0.5 * 0.004826 = 0.002667; high case 0.000254
    assert row["cost_after_usd"] == Decimal("0.001219200000")
    assert row["cost_after_low_savings_usd"] == Decimal("0.002667000000")
    assert row["cost_after_high_savings_usd"] == Decimal("0.000254000000")
    assert result.confidence == "heuristic"
    assert any("Token counts are assumed equal" in a for a in result.assumptions)


def test_plan_reproduces_the_finding_savings() -> None:
    rows = [ticket() for _ in range(40)]
    frame = frame_of(rows)
    result = LEVER.analyze(frame, LeverContext(prices=BOOK))  # type: ignore[arg-type]
    plan, summaries = build_plan(frame, [result])
    assert plan.savings_usd == pytest.approx(0.154432, abs=1e-9)
    assert summaries[0].savings_low_usd == pytest.approx(0.09652, abs=1e-9)
    assert summaries[0].savings_high_usd == pytest.approx(0.19304, abs=1e-9)


def test_code_generation_on_the_same_model_has_no_finding() -> None:
    result = run([codegen() for _ in range(30)])
    assert result.findings == []
    assert result.counterfactual.is_empty()


def test_mixed_feature_is_la202_only_with_route_share() -> None:
    result = run([yes_no() for _ in range(20)] + [essay() for _ in range(20)])
    assert codes(result) == [("LA202", "assistant")]
    finding = result.findings[0]
    # 20 simple requests, each 0.00204 - 0.000102 = 0.001938 -> 0.03876; expected route share 0.6 -> 0.023256
    assert finding.savings_usd == pytest.approx(0.023256, abs=1e-9)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.3 * 0.03876, abs=1e-9)
    assert finding.evidence["simple_share"] == 0.5
    assert finding.evidence["task_families"] == {"classification": 20, "generation": 20}
    # only the simple half is in the counterfactual
    assert result.counterfactual.height == 20


def test_pinned_and_quality_critical_features_have_no_finding() -> None:
    rows = [ticket("pinned") for _ in range(30)] + [ticket("critical") for _ in range(30)]
    result = run(rows, pins={"pinned": "prem"}, quality_critical=["critical"])
    assert result.findings == []
    assert result.counterfactual.is_empty()
    assert any("critical, pinned" in a for a in result.assumptions)


def test_all_four_constructed_features_together() -> None:
    rows = (
        [ticket() for _ in range(40)]
        + [codegen() for _ in range(30)]
        + [yes_no() for _ in range(20)]
        + [essay() for _ in range(20)]
        + [ticket("pinned") for _ in range(30)]
    )
    result = run(rows, pins={"pinned": "prem"})
    assert codes(result) == [("LA201", "tickets"), ("LA202", "assistant")]
    assert result.counterfactual["row_id"].is_unique().all()


def test_small_feature_below_min_requests_is_not_judged() -> None:
    assert run([ticket() for _ in range(19)]).findings == []
    assert codes(run([ticket() for _ in range(19)], min_requests=5)) == [("LA201", "tickets")]


def test_successor_cheaper_is_la203() -> None:
    legacy = {**essay(), "feature": "legacy", "model_id": "old-mid", "input_tokens": 1000, "output_tokens": 900}
    result = run([legacy for _ in range(20)])
    assert codes(result) == [("LA203", None)]
    finding = result.findings[0]
    # old-mid 1000*3/1e6 + 900*15/1e6 = 0.0165; new-mid 0.002 + 0.009 = 0.011; 20 * 0.0055 = 0.11
    assert finding.savings_usd == pytest.approx(0.11, abs=1e-9)
    assert finding.evidence["savings_low_usd"] == pytest.approx(0.055, abs=1e-9)
    assert finding.scope == {"model": "old-mid", "provider": "acme"}


def test_cross_provider_candidate_only_when_configured() -> None:
    rows = [ticket(model="prem2") for _ in range(30)]
    assert run(rows, candidates={"prem2": ["xprov"]}).findings == []
    result = run(rows, candidates={"prem2": ["xprov"]}, cross_provider=True)
    assert codes(result) == [("LA201", "tickets")]
    # prem2 0.00508; xprov 500*1/1e6 + 2*4/1e6 = 0.000508; 30 * 0.004572 * 0.8 = 0.109728
    assert result.findings[0].savings_usd == pytest.approx(0.109728, abs=1e-9)


def test_distillation_candidate_la204_is_reported_but_not_in_plan() -> None:
    summary = {
        "feature": "digest",
        "model_id": "prem",
        "system_text": "Summarize the following article in three sentences.",
        "last_user_text": "Article: ...",
        "input_tokens": 4000,
        "output_tokens": 150,
    }
    options = {
        "distillation": {
            "min_requests": 50,
            "training_cost_usd": 0.1,
            "eval_requests": 10,
            "quality_retention": 0.9,
            "inference_multiplier": 2,
        }
    }
    result = run([summary for _ in range(100)], **options)
    assert codes(result) == [("LA204", "digest")]
    ev = result.findings[0].evidence
    # current 100 * (0.04 + 0.006) = 4.6; smol 100 * (0.002 + 0.0003) = 0.23, fine-tuned x2 = 0.46
    # gross 0.9 * (4.6 - 0.46) = 3.726; eval 10 * 4.6/100 = 0.46; net 3.726 - 0.1 - 0.46 = 3.166
    assert result.findings[0].savings_usd == pytest.approx(3.166, abs=1e-9)
    assert ev["gross_savings_usd"] == pytest.approx(3.726, abs=1e-9)
    assert ev["eval_cost_usd"] == pytest.approx(0.46, abs=1e-9)
    # logs span 99 s -> counted as one day; payback 0.56 / 3.726 days = 0.150 -> 0.2
    assert ev["payback_days"] == 0.2
    assert ev["in_plan"] is False
    assert result.counterfactual.is_empty()
    # with the default 500 USD training cost it does not pay back within the period
    assert run([summary for _ in range(100)], distillation={"min_requests": 50}).findings == []


def test_unpriced_rows_are_ignored() -> None:
    rows = [ticket() for _ in range(30)] + [{**ticket(), "model_id": "mystery"} for _ in range(5)]
    result = run(rows)
    assert codes(result) == [("LA201", "tickets")]
    assert result.findings[0].affected_requests == 30


def test_gap_for_premium_requests_without_prompt_text() -> None:
    bare = {"feature": "bare", "model_id": "prem", "input_tokens": 500, "output_tokens": 2}
    result = run([bare for _ in range(10)])
    assert [(g.missing_fields, g.requests) for g in result.gaps] == [(["prompt_text"], 10)]
    assert result.gaps[0].cost_at_stake_usd == pytest.approx(0.0508, abs=1e-9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"move_share": {"low": 0.9, "expected": 0.5, "high": 1.0}}, "low <= expected <= high"),
        ({"move_share": {"low": 1.5}}, "between 0 and 1"),
        ({"pins": ["a"]}, "pins must map"),
        ({"simple_families": ["chitchat"]}, "unknown family 'chitchat'"),
        ({"colour": 1}, "unknown option(s) colour"),
        ({"distillation": {"training_cost_usd": -1}}, "training_cost_usd must be >= 0"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TieringOptions.parse(options)


def test_default_options_match_docs() -> None:
    opts = TieringOptions.parse({})
    assert (opts.move_share.low, opts.move_share.expected, opts.move_share.high) == (0.5, 0.8, 1.0)
    assert (opts.route_share.low, opts.route_share.expected, opts.route_share.high) == (0.3, 0.6, 0.9)
    assert opts.simple_families == ("classification", "extraction", "short_answer")
    assert opts.cross_provider is False


def _same_result(full: Any, reduced: Any) -> None:
    assert reduced.findings == full.findings  # dataclasses: every field, evidence included
    assert reduced.counterfactual.equals(full.counterfactual)
    assert reduced.gaps == full.gaps and reduced.assumptions == full.assumptions


def test_pipeline_reduced_frame_gives_the_full_frame_result() -> None:
    # What the scan does: every lever's features at ingest, then the texts cut (prompt dropped, heads kept).
    # The code in late_code's output starts past the 300-character output head: only the features see it.
    filler = "Here is the function you asked for, with a short explanation. " * 6
    late_keyword = {**yes_no(), "feature": "late"}
    late_code = {**essay(), "feature": "late", "output_text": filler + "\n\ndef f(x):\n    return x\n"}
    prompt_only = {
        "feature": "rendered",
        "model_id": "prem",
        "prompt_text": "[user]\nClassify this ticket: billing or bug?\n",
        "input_tokens": 500,
        "output_tokens": 2,
    }
    bare = {"feature": "bare", "model_id": "prem", "input_tokens": 500, "output_tokens": 2}
    legacy = {**essay(), "feature": "legacy", "model_id": "old-mid", "input_tokens": 1000, "output_tokens": 900}
    rows = (
        [ticket() for _ in range(40)]
        + [codegen() for _ in range(30)]
        + [yes_no() for _ in range(20)]
        + [essay() for _ in range(20)]
        + [late_keyword for _ in range(12)]
        + [late_code for _ in range(12)]
        + [prompt_only for _ in range(25)]
        + [bare for _ in range(10)]
        + [legacy for _ in range(20)]
    )
    frame = frame_of(rows)
    reduced = reduce_chunk(frame, [(lever, {}) for lever in available_levers()])
    assert is_reduced(reduced) and not is_reduced(frame)
    ctx = LeverContext(prices=BOOK, options={})  # type: ignore[arg-type]
    full, cut = LEVER.analyze(frame, ctx), LEVER.analyze(reduced, ctx)
    assert codes(full) == [
        ("LA201", "rendered"),  # classified from the rendered prompt, which the reduced frame no longer has
        ("LA201", "tickets"),
        ("LA202", "assistant"),
        ("LA202", "late"),  # 12 of 24 simple: the code past the output head counts
        ("LA203", None),
    ]
    late = next(f for f in full.findings if f.scope.get("feature") == "late")
    assert late.evidence["task_families"] == {"classification": 12, "code": 12}
    assert [(g.missing_fields, g.requests) for g in full.gaps] == [(["prompt_text"], 10)]
    _same_result(full, cut)


def test_successor_saving_by_hand() -> None:
    # 20 requests of feature "legacy" on old-mid, whose successor is new-mid (FakeBook): old-mid 1000*3/1e6 +
    # 900*15/1e6 = 0.0165 a request, new-mid 0.002 + 0.009 = 0.011: LA203 saves 20 * 0.0055 = 0.11.
    legacy = {**essay(), "feature": "legacy", "model_id": "old-mid", "input_tokens": 1000, "output_tokens": 900}
    rows = [ticket() for _ in range(40)] + [yes_no() for _ in range(20)] + [essay() for _ in range(20)] + [legacy] * 20
    result = LEVER.analyze(frame_of(rows), LeverContext(prices=BOOK))  # type: ignore[arg-type]
    la203 = next(f for f in result.findings if f.code == "LA203")
    assert la203.savings_usd == pytest.approx(0.11, abs=1e-9)
