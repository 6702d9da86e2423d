"""Golden costs computed by hand (prices per 1M tokens; every sum below is in 'USD x 1e6', then / 1e6)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from auditor.prices import PriceBook, PricingError, compare_logged, unpriced_models
from auditor.pricing_report import check_tables, list_models, show_model
from auditor.schema import MONEY
from tests.helpers import canonical


def one(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = canonical([row]).row(0, named=True)
    return out


def usd(text: str) -> Decimal:
    return Decimal(text)


def test_openai_cached_and_reasoning_tokens() -> None:
    # gpt-5: 1.25 in / 0.125 cached / 10 out. 10,000 input of which 4,096 cached; 2,000 output incl. 1,500 reasoning.
    # 5,904 x 1.25 = 7,380; 4,096 x 0.125 = 512; 2,000 x 10 = 20,000 (reasoning not added again) -> 27,892 -> 0.027892
    row = one({"model": "gpt-5-2025-08-07", "provider": "openai", "input_tokens": 10_000,
               "cache_read_tokens": 4_096, "output_tokens": 2_000, "reasoning_tokens": 1_500})  # fmt: skip
    assert row["model_id"] == "gpt-5"
    assert row["cost_usd"] == usd("0.027892")
    assert row["unpriced"] is False


def test_anthropic_cache_reads_and_5m_1h_writes() -> None:
    # claude-sonnet-4-5: 3 in, read 0.30 (0.1x), 5m write 3.75 (1.25x), 1h write 6 (2x), 15 out.
    # canonical input 50,000 = 2,000 uncached + 40,000 read + 5,000 (5m) + 3,000 (1h); output 1,000.
    # 2,000x3 = 6,000; 40,000x0.3 = 12,000; 5,000x3.75 = 18,750; 3,000x6 = 18,000; 1,000x15 = 15,000 -> 69,750
    row = one({"model": "claude-sonnet-4-5-20250929", "provider": "anthropic", "input_tokens": 50_000,
               "cache_read_tokens": 40_000, "cache_write_5m_tokens": 5_000, "cache_write_1h_tokens": 3_000,
               "output_tokens": 1_000})  # fmt: skip
    assert row["model_id"] == "claude-sonnet-4-5"
    assert row["cost_usd"] == usd("0.069750")


def test_gemini_thoughts_already_in_output() -> None:
    # gemini-2.5-flash 0.30 / 2.50: 1,000 input; candidates 200 + thoughts 400 = canonical output 600.
    # 1,000 x 0.30 = 300; 600 x 2.50 = 1,500 -> 1,800 -> 0.0018
    row = one({"model": "models/gemini-2.5-flash", "provider": "google", "input_tokens": 1_000,
               "output_tokens": 600, "reasoning_tokens": 400})  # fmt: skip
    assert row["model_id"] == "gemini-2.5-flash"
    assert row["cost_usd"] == usd("0.0018")


def test_long_context_cliff_reprices_whole_request() -> None:
    # gemini-2.5-pro above 200K total input (cache included): 2.50 in, 0.25 cached, 15 out for the whole request.
    # 250,000 input of which 100,000 cached, 1,000 output: 150,000x2.5 = 375,000; 100,000x0.25 = 25,000;
    # 1,000x15 = 15,000 -> 415,000 -> 0.415.  At exactly 200,000 (not above): 200,000x1.25 + 1,000x10 = 260,000.
    frame = canonical([
        {"model": "gemini-2.5-pro", "provider": "google", "input_tokens": 250_000, "cache_read_tokens": 100_000,
         "output_tokens": 1_000},
        {"model": "gemini-2.5-pro", "provider": "google", "input_tokens": 200_000, "output_tokens": 1_000},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.415"), usd("0.26")]


def test_batch_flex_priority_multipliers() -> None:
    # gpt-4o 2.50 / 10: 1,000 in + 500 out = 2,500 + 5,000 = 7,500 -> 0.0075 standard.
    # batch (flag) x0.5 -> 0.00375; service_tier "batch" the same; priority x1.7 -> 0.01275.
    # gpt-5 flex x0.5: (1,000x1.25 + 500x10) x 0.5 = 6,250 x 0.5 = 3,125 -> 0.003125.
    base = {"model": "gpt-4o", "provider": "openai", "input_tokens": 1_000, "output_tokens": 500}
    frame = canonical([
        base,
        {**base, "batch": True},
        {**base, "service_tier": "batch"},
        {**base, "service_tier": "priority"},
        {**base, "model": "gpt-5", "service_tier": "flex"},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.0075"), usd("0.00375"), usd("0.00375"), usd("0.01275"),
                                           usd("0.003125")]  # fmt: skip


def test_price_change_between_two_days() -> None:
    # o3 was 10 / 40 until 2025-06-09 and 2 / 8 from 2025-06-10. 1,000 in + 1,000 out:
    # before: 10,000 + 40,000 = 50,000 -> 0.05; after: 2,000 + 8,000 = 10,000 -> 0.01.
    base = {"model": "o3", "provider": "openai", "input_tokens": 1_000, "output_tokens": 1_000}
    frame = canonical([
        {**base, "timestamp": datetime(2025, 6, 9, 23, 59, tzinfo=UTC)},
        {**base, "timestamp": datetime(2025, 6, 10, 0, 1, tzinfo=UTC)},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.05"), usd("0.01")]
    assert frame["price_date"].to_list() == [date(2025, 6, 9), date(2025, 6, 10)]


def test_price_date_reprices_everything() -> None:
    # The same o3 request of 2025-06-01 (0.05 at its own date) repriced at 2025-07-01 -> 0.01.
    frame = canonical([{"model": "o3", "provider": "openai", "input_tokens": 1_000, "output_tokens": 1_000,
                        "timestamp": datetime(2025, 6, 1, tzinfo=UTC)}], priced=False)  # fmt: skip
    book = PriceBook.load()
    assert book.add_costs(frame)["cost_usd"].to_list() == [usd("0.05")]
    repriced = book.add_costs(frame, price_date=date(2025, 7, 1))
    assert repriced["cost_usd"].to_list() == [usd("0.01")]
    assert repriced["price_date"].to_list() == [date(2025, 7, 1)]


def test_discount_override_model_beats_provider() -> None:
    # openai 20 % off, gpt-4o 10 % off (the model's own discount wins, they do not stack).
    # gpt-4o 1,000 in + 500 out = 7,500 x 0.9 = 6,750 -> 0.00675; gpt-5: (1,250 + 5,000) x 0.8 = 5,000 -> 0.005.
    # claude-haiku-4-5 untouched: 1,000x1 + 500x5 = 3,500 -> 0.0035.
    overrides = {"discounts": [{"provider": "openai", "percent": 20}, {"model": "gpt-4o", "percent": 10}]}
    frame = canonical([
        {"model": "gpt-4o", "provider": "openai", "input_tokens": 1_000, "output_tokens": 500},
        {"model": "gpt-5", "provider": "openai", "input_tokens": 1_000, "output_tokens": 500},
        {"model": "claude-haiku-4-5", "provider": "anthropic", "input_tokens": 1_000, "output_tokens": 500},
    ], priced=False)  # fmt: skip
    priced = PriceBook.load(overrides).add_costs(frame)
    assert priced["cost_usd"].to_list() == [usd("0.00675"), usd("0.005"), usd("0.0035")]


def test_custom_fine_tuned_model_only_when_configured() -> None:
    # ft:gpt-3.5-turbo-0125:acme::x has no fine-tuned entry in the tables and is never priced as its base;
    # configured at 0.30 / 1.20 with gpt-4o-mini's caching rules:
    # 1,000 x 0.30 + 1,000 x 1.20 = 1,500 -> 0.0015. Cached price derives from the base's 0.5x rule: 0.15.
    name = "ft:gpt-3.5-turbo-0125:acme::x"
    row = {"model": name, "provider": "openai", "input_tokens": 1_000, "output_tokens": 1_000}
    assert one(row)["unpriced"] is True
    overrides = {"models": {name: {"provider": "openai", "input_mtok": 0.3,
                                   "output_mtok": 1.2, "base": "gpt-4o-mini"}}}  # fmt: skip
    book = PriceBook.load(overrides)
    priced = book.add_costs(canonical([row], priced=False))
    assert priced["cost_usd"].to_list() == [usd("0.0015")]
    assert book.model(name, date(2026, 1, 1)).cache_read_mtok == Decimal("0.15")


def test_openai_fine_tuned_models_use_fine_tuned_rates() -> None:
    # ft:gpt-4o-mini-2024-07-18:acme::B7x9 -> the table's ft:gpt-4o-mini-2024-07-18 (0.30 / cached 0.15 / 1.20),
    # never the base gpt-4o-mini (0.15 / 0.60): 2,000 input of which 1,024 cached, 100 output:
    # 976 x 0.30 + 1,024 x 0.15 + 100 x 1.20 = 292.8 + 153.6 + 120 = 566.4 -> 0.0005664
    row = {"model": "ft:gpt-4o-mini-2024-07-18:acme::B7x9", "provider": "openai", "input_tokens": 2_000,
           "cache_read_tokens": 1_024, "output_tokens": 100}  # fmt: skip
    priced = one(row)
    assert priced["model_id"] == "ft:gpt-4o-mini-2024-07-18"
    assert priced["cost_usd"] == usd("0.0005664")


def test_deepseek_off_peak_half_price() -> None:
    # deepseek-v4-flash from 2026-09-10: 0.30 in / 1.20 out at peak (01-04, 06-10 UTC), half outside.
    # 10,000 in + 1,000 out = 3,000 + 1,200 = 4,200 -> 0.0042 at 02:00 UTC; x0.5 = 0.0021 at 12:00 UTC.
    base = {"model": "deepseek-v4-flash", "provider": "deepseek", "input_tokens": 10_000, "output_tokens": 1_000}
    frame = canonical([
        {**base, "timestamp": datetime(2026, 10, 1, 2, 0, tzinfo=UTC)},
        {**base, "timestamp": datetime(2026, 10, 1, 12, 0, tzinfo=UTC)},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.0042"), usd("0.0021")]


def test_litellm_payload_recomputes_to_logged_cost() -> None:
    # /work/shared/real-data/litellm: gpt-4o, 10 prompt + 20 completion, response_cost 0.000225.
    # 10 x 2.50 + 20 x 10 = 225 -> 0.000225
    frame = canonical([{"model": "gpt-4o", "provider": "openai", "input_tokens": 10, "output_tokens": 20,
                        "logged_cost_usd": 0.000225}])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.000225")]
    [cmp] = compare_logged(frame)
    assert cmp["difference_pct"] == 0.0 and cmp["flagged"] is False


def test_compare_logged_flags_over_one_percent() -> None:
    # recomputed 0.0075 (see batch test); logged 0.0080 -> (0.008 - 0.0075) / 0.0075 = +6.6667 %
    frame = canonical([{"model": "gpt-4o", "provider": "openai", "input_tokens": 1_000, "output_tokens": 500,
                        "logged_cost_usd": 0.008}])  # fmt: skip
    [cmp] = compare_logged(frame)
    assert cmp["difference_pct"] == pytest.approx(6.6667, abs=1e-4)
    assert cmp["flagged"] is True


def test_unknown_model_and_missing_tokens() -> None:
    frame = canonical([
        {"model": "mystery-model-9", "provider": "openai", "input_tokens": 100, "output_tokens": 10},
        {"model": "gpt-4o", "provider": "openai", "status": "error"},  # no usage, failed: not billed
        {"model": "gpt-4o", "provider": "openai"},  # no usage, succeeded: cost unknown
        {"model": "mystery-model-9", "provider": "openai", "input_tokens": 5, "output_tokens": 1},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [None, Decimal(0), None, None]
    assert frame["unpriced"].to_list() == [True, False, True, True]
    assert frame["cost_usd"].dtype == MONEY
    assert unpriced_models(frame) == [
        {"model": "mystery-model-9", "requests": 2, "input_tokens": 105, "output_tokens": 11},
        {"model": "gpt-4o", "requests": 1, "input_tokens": 0, "output_tokens": 0},
    ]


def test_cost_prices_counterfactuals_in_row_order() -> None:
    # Levers swap model_id / batch on a copy. gpt-4o 7,500 -> gpt-4o-mini 1,000x0.15 + 500x0.60 = 450 -> 0.00045;
    # batch: 0.000225.
    frame = canonical([{"model": "gpt-4o", "provider": "openai", "input_tokens": 1_000, "output_tokens": 500}] * 3)
    book = PriceBook.load()
    swapped = frame.with_columns(pl.lit("gpt-4o-mini").alias("model_id"), (pl.col("row_id") == 1).alias("batch"))
    assert book.cost(swapped).to_list() == [usd("0.00045"), usd("0.000225"), usd("0.00045")]
    assert book.cost(frame).dtype == MONEY


def test_resolution_of_real_and_demo_models() -> None:
    book = PriceBook.load()
    real = ["gpt-4o", "gpt-4o-mini-2024-07-18", "claude-opus-4-8", "gpt-5.4"]
    demo = ["gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini", "gpt-5-nano", "o3",
            "o4-mini", "claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-pro",
            "gemini-2.5-flash", "gemini-2.5-flash-lite", "deepseek-chat", "mistral-large-latest", "grok-4"]  # fmt: skip
    for name in real + demo:
        assert book.resolve(name) is not None, name
    assert book.resolve("us.anthropic.claude-sonnet-4-5-20250929-v1:0") == "anthropic.claude-sonnet-4-5"
    assert book.resolve("global.anthropic.claude-haiku-4-5-20251001-v1:0") == "global.anthropic.claude-haiku-4-5"
    assert book.resolve("claude-sonnet-4-5@20250929") == "vertex_ai/claude-sonnet-4-5"
    assert book.resolve("gemini-2.5-pro", provider="vertex") == "vertex_ai/gemini-2.5-pro"
    assert book.resolve("gemini-2.5-pro") == "gemini-2.5-pro"
    assert book.resolve("gpt-4o-2024-05-13") == "gpt-4o-2024-05-13"  # own (older, dearer) price, not gpt-4o's
    assert book.resolve("ft:gpt-4o-mini-2024-07-18:acme::abc") == "ft:gpt-4o-mini-2024-07-18"
    assert book.resolve("ft:gpt-4o-2024-08-06:acme:triage:abc") == "ft:gpt-4o-2024-08-06"
    assert book.resolve("ft:gpt-3.5-turbo-0125:acme::abc") is None  # no fine-tuned rates in the tables
    assert len(book.models()) >= 60


def test_bedrock_regional_profile_costs_ten_percent_more() -> None:
    # us. profile of Sonnet 4.5: 3.30 / 16.50 (+10 %); global: 3 / 15. 1,000 in + 100 out:
    # regional 3,300 + 1,650 = 4,950 -> 0.00495; global 3,000 + 1,500 = 4,500 -> 0.0045
    frame = canonical([
        {"model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "provider": "bedrock", "input_tokens": 1_000,
         "output_tokens": 100},
        {"model": "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "provider": "bedrock", "input_tokens": 1_000,
         "output_tokens": 100},
    ])  # fmt: skip
    assert frame["cost_usd"].to_list() == [usd("0.00495"), usd("0.0045")]


def test_add_costs_keeps_rows_columns_and_order() -> None:
    rows = [{"model": m, "provider": "openai", "input_tokens": 1, "output_tokens": 1} for m in ["gpt-5", "x", "o3"]]
    raw = canonical(rows, priced=False)
    priced = PriceBook.load().add_costs(raw)
    assert priced.columns[: len(raw.columns)] == raw.columns
    assert priced["row_id"].to_list() == raw["row_id"].to_list()
    assert priced["model_id"].to_list() == ["gpt-5", None, "o3"]


def test_tables_are_consistent() -> None:
    assert check_tables(PriceBook.load()) == []


def test_report_functions() -> None:
    book = PriceBook.load()
    rows = {r["model_id"]: r for r in list_models(book, date(2025, 6, 1))}
    assert rows["o3"]["input_mtok"] == "10" and rows["o3"]["effective_from"] == "2025-04-16"
    shown = show_model(book, "claude-sonnet-4-5-20250929", date(2026, 10, 1))
    assert shown["model_id"] == "claude-sonnet-4-5"
    assert shown["cache_write_1h_mtok"] == "6" and shown["tiers"][0]["threshold_input_tokens"] == 200_000
    with pytest.raises(PricingError, match="did you mean gpt-4o"):
        show_model(book, "gpt-4-o", date(2026, 10, 1))


# ---------------------------------------------------------------------------------------------------------------
# Strict loader

GOOD = """
provider: acme
source: https://example.com/pricing
checked: 2026-01-01
defaults:
  caching: {mode: automatic, min_tokens: 1024, granularity_tokens: 128, ttl_seconds: [300], write_5m: 1, read: 0.5}
models:
  acme-1:
    family: mid
    prices:
      - {effective_from: 2026-01-01, input: 1, output: 2}
"""


def load_text(tmp_path: Path, text: str) -> PriceBook:
    (tmp_path / "acme.yaml").write_text(text, encoding="utf-8")
    return PriceBook.load(tables_dir=tmp_path)


def test_loader_reads_a_directory(tmp_path: Path) -> None:
    book = load_text(tmp_path, GOOD)
    assert book.models() == ["acme-1"]
    assert book.model("acme-1", date(2026, 2, 1)).cache_read_mtok == Decimal("0.5")  # derived 1 x 0.5


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("    family: mid", "    family: mid\n    colour: red", "models.acme-1.colour"),
        ("input: 1,", "input: cheap,", "models.acme-1.prices[0].input"),
        ("input: 1,", "input: -1,", "models.acme-1.prices[0].input"),
        ("family: mid", "family: huge", "models.acme-1.family"),
        ("effective_from: 2026-01-01", "effective_from: someday", "models.acme-1.prices[0].effective_from"),
        ("read: 0.5}", "read: 0.5, colour: 1}", "models.acme-1.caching.colour"),
        ("provider: acme", "provider: acme\nvendor: x", "vendor"),
    ],
)
def test_loader_rejects_bad_keys_and_values(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GOOD
    with pytest.raises(PricingError) as err:
        load_text(tmp_path, GOOD.replace(old, new, 1))
    assert "pricing/acme.yaml" in str(err.value) and key in str(err.value)


def test_overrides_are_strict() -> None:
    with pytest.raises(PricingError, match=r"pricing\.discount"):
        PriceBook.load({"discount": []})
    with pytest.raises(PricingError, match=r"pricing\.discounts\[0\]\.percent"):
        PriceBook.load({"discounts": [{"provider": "openai", "percent": 120}]})
    with pytest.raises(PricingError, match="unknown model"):
        PriceBook.load({"discounts": [{"model": "gpt-99", "percent": 5}]})
