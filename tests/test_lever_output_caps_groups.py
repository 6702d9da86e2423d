"""output_caps: the (group, model) codes that replace per-request label strings (issue 7, memory at volume).

A group is the feature, else "system prompt " + the system hash's first 12 characters; a model is model_id, else
model. Requests whose labels are equal must land in one group whatever column the label came from, and the
Categorical frame the pipeline hands the lever must give what the plain String frame gives.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from auditor.levers import available_levers
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.output_caps import LEVER, group_codes
from auditor.prices import PriceBook
from auditor.reduce import reduce_chunk
from auditor.spill import CATEGORICAL_COLUMNS
from tests.helpers import canonical

# 17 x 200, then 1000, 1500, 2000 output tokens: p50 200, p99 2000 -> LA301 (as in test_lever_output_caps)
LONG_TAIL = [200] * 17 + [1000, 1500, 2000]


@pytest.fixture(scope="module")
def prices() -> PriceBook:
    return PriceBook.load()


def req(feature: str | None, output: int | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"feature": feature, "model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": output}
    row.update(extra)
    return row


def analyze(frame: pl.DataFrame, prices: PriceBook) -> LeverResult:
    return LEVER.analyze(frame, LeverContext(prices=prices, options={}))


def test_codes_follow_labels_not_the_column_they_come_from() -> None:
    rows = [
        req("system prompt abcdef012345", 10),  # a feature spelled like a system-prompt group
        req(None, 20, system_hash="abcdef0123456789"),  # same label from the hash's first 12 characters
        req(None, 30, system_hash="abcdef012345ffff"),  # another hash, same first 12 characters
        req("chat", 40),
        req("chat", 50, status="error"),  # failed: not analysed
        req("chat", None),  # no output count: not analysed
        req(None, 60),  # neither feature nor system hash: no group
    ]
    frame = canonical(rows)
    groups = group_codes(frame)
    assert groups.groups == ["chat", "system prompt abcdef012345"] and groups.models == ["gpt-4o-mini"]
    by_output = dict(zip(frame["output_tokens"].to_list(), groups.code.to_list(), strict=True))
    # code = group index * 1 model + 0
    assert by_output == {10: 1, 20: 1, 30: 1, 40: 0, 50: None, None: None, 60: None}
    assert groups.labels(pl.Series([1, 0], dtype=pl.UInt32)).rows() == [
        ("system prompt abcdef012345", "gpt-4o-mini"),
        ("chat", "gpt-4o-mini"),
    ]


def test_a_feature_and_a_system_prompt_with_one_label_are_one_group(prices: PriceBook) -> None:
    # 10 requests name the feature, 10 only carry the system hash; together they are LONG_TAIL (n = 20)
    rows = [req("system prompt abcdef012345", o) for o in LONG_TAIL[:10]]
    rows += [req(None, o, system_hash="abcdef0123456789") for o in LONG_TAIL[10:]]
    (finding,) = [f for f in analyze(canonical(rows), prices).findings if f.code == "LA301"]
    assert finding.scope == {"feature": "system prompt abcdef012345", "model": "gpt-4o-mini"}
    assert finding.evidence["requests"] == 20 and finding.evidence["output_tokens_p90"] == 1500
    # only the 2000-token answer shrinks to the p90 1500: 500 tokens * $0.60/M
    assert finding.savings_usd == pytest.approx(0.0003)


def test_model_falls_back_to_model_when_model_id_is_missing(prices: PriceBook) -> None:
    frame = canonical([req("summarize", o) for o in LONG_TAIL])
    # the 10 shortest lose their model_id (as an unpriced request would): their model "gpt-4o-mini" is the label
    ids = frame.sort("output_tokens")["row_id"].head(10)
    frame = frame.with_columns(
        pl.when(pl.col("row_id").is_in(ids.implode())).then(None).otherwise(pl.col("model_id")).alias("model_id")
    )
    (finding,) = [f for f in analyze(frame, prices).findings if f.code == "LA301"]
    assert finding.scope["model"] == "gpt-4o-mini" and finding.evidence["requests"] == 20


def test_categorical_frame_gives_the_string_frame_result(prices: PriceBook) -> None:
    # What pipeline.prepare_frame hands the levers: reduced, low-cardinality strings as Categorical.
    rows = [req("summarize", o) for o in LONG_TAIL]
    rows += [req(None, o, system_hash="0123456789abcdef", model="o4-mini") for o in LONG_TAIL]
    rows += [req("label", 50, max_tokens=50, finish_reason="length") for _ in range(5)]
    rows += [req("label", 20, max_tokens=50, finish_reason="stop") for _ in range(15)]
    reduced = reduce_chunk(canonical(rows), [(lever, {}) for lever in available_levers()])
    categorical = reduced.with_columns(pl.col(c).cast(pl.Categorical) for c in CATEGORICAL_COLUMNS)
    assert categorical.schema["feature"] == pl.Categorical and categorical.schema["model_id"] == pl.Categorical
    plain, coded = analyze(reduced, prices), analyze(categorical, prices)
    assert sorted((f.code, f.scope["feature"], f.scope["model"]) for f in coded.findings) == [
        ("LA301", "summarize", "gpt-4o-mini"),
        ("LA301", "system prompt 0123456789ab", "o4-mini"),
        ("LA303", "label", "gpt-4o-mini"),
    ]
    assert coded.findings == plain.findings
    assert coded.counterfactual.height == 6  # the 1000/1500/2000 answers of both long tails (optimistic cap 200)
    assert coded.counterfactual.equals(plain.counterfactual)
