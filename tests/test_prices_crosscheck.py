"""Cross-check our tables against the genai-prices package's bundled snapshot (offline, an independent route).

Every model that genai-prices also knows is compared at each of our effective_from dates and at the table date,
field by field (standard prices per 1M tokens, long-context tiers). Each disagreement must be listed with a reason
in tests/pricing_disagreements.yaml; a listed one that no longer disagrees fails too (the list must stay true).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.prices import ModelPrice, PriceBook

genai_prices = pytest.importorskip("genai_prices")
from genai_prices import data_snapshot, types  # noqa: E402

GP_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google": "google", "deepseek": "deepseek",
               "mistral": "mistral", "xai": "x-ai", "bedrock": "aws", "vertex": "google"}  # fmt: skip
LISTED = Path(__file__).with_name("pricing_disagreements.yaml")
# Where genai-prices' prefix matching picks another model for our id, name its matching entry explicitly.
GP_REF = {"mistral-medium-3": "mistral-medium-3-1"}
NOON = time(12, 0, tzinfo=UTC)  # off-peak for DeepSeek's current schedule, where genai-prices' default applies


def _gp_model(model_id: str, aliases: tuple[str, ...], provider: str) -> Any:
    # The bundled snapshot only: no UpdatePrices, so nothing is fetched.
    snapshot = data_snapshot.get_snapshot()
    assert snapshot.from_auto_update is False
    refs = [GP_REF[model_id]] if model_id in GP_REF else [model_id.removeprefix("vertex_ai/"), *aliases]
    for ref in refs:
        try:
            return snapshot.find_provider_model(ref, None, GP_PROVIDER[provider], None)[1]
        except LookupError:
            continue
    return None


def _base(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value.base if isinstance(value, types.TieredPrices) else Decimal(value)


def _tier(value: Any) -> tuple[int, Decimal] | None:
    if isinstance(value, types.TieredPrices) and value.tiers:
        return value.tiers[-1].start, value.tiers[-1].price
    return None


def _ours(p: ModelPrice, at: datetime) -> dict[str, Any]:
    factor = Decimal(1)
    if p.offpeak_multiplier is not None and at.hour not in p.peak_hours_utc:
        factor = p.offpeak_multiplier
    tier = p.tiers[-1] if p.tiers else None

    def scaled(v: Decimal | None) -> Decimal | None:
        return None if v is None else v * factor

    return {
        "input": scaled(p.input_mtok),
        "output": scaled(p.output_mtok),
        "cache_read": scaled(p.cache_read_mtok),
        "cache_write_5m": scaled(p.cache_write_5m_mtok),
        "cache_write_1h": scaled(p.cache_write_1h_mtok),
        "tier_input": None if tier is None else (tier.threshold_input_tokens, tier.input_mtok * factor),
        "tier_output": None if tier is None else (tier.threshold_input_tokens, tier.output_mtok * factor),
    }


def _theirs(gp: Any, at: datetime) -> dict[str, Any]:
    prices = gp.get_prices(at)
    return {
        "input": _base(prices.input_mtok),
        "output": _base(prices.output_mtok),
        "cache_read": _base(prices.cache_read_mtok),
        "cache_write_5m": _base(prices.cache_write_mtok),
        "cache_write_1h": _base(prices.cache_write_1h_mtok),
        "tier_input": _tier(prices.input_mtok),
        "tier_output": _tier(prices.output_mtok),
    }


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return f">{value[0]}: {value[1].normalize()}"
    return "none" if value is None else format(value.normalize(), "f")


def disagreements() -> dict[tuple[str, str, str], tuple[str, str]]:
    book = PriceBook.load()
    found: dict[tuple[str, str, str], tuple[str, str]] = {}
    for model_id in book.models():
        history = book.history(model_id)
        gp = _gp_model(model_id, history[-1].aliases, history[-1].provider)
        if gp is None:
            continue
        days = sorted({r.effective_from for r in history} | {book.table_date()})
        for day in days:
            at = datetime.combine(day, NOON)
            ours, theirs = _ours(book.model(model_id, day), at), _theirs(gp, at)
            for field, their_value in theirs.items():
                our_value = ours[field]
                if field in ("cache_write_5m", "cache_write_1h") and their_value is None:
                    continue  # genai-prices omits free / absent cache writes; our write price then is input or none
                if field == "cache_read" and their_value is None and our_value is None:
                    continue
                # genai-prices starts some tiers at 199,999 (>= 200K) where our sources say "above 200K".
                if field.startswith("tier_") and our_value and their_value and their_value[0] == our_value[0] - 1:
                    their_value = (our_value[0], their_value[1])
                if our_value != their_value:
                    found[(model_id, day.isoformat(), field)] = (_fmt(our_value), _fmt(their_value))
    return found


def listed() -> dict[tuple[str, str, str], dict[str, str]]:
    raw = yaml.safe_load(LISTED.read_text(encoding="utf-8")) or []
    out = {}
    for item in raw:
        assert set(item) == {"model", "date", "field", "ours", "theirs", "reason"}, item
        assert str(item["reason"]).strip(), item
        out[(item["model"], str(item["date"]), item["field"])] = item
    return out


def test_every_disagreement_with_genai_prices_is_reviewed() -> None:
    found, known = disagreements(), listed()
    unlisted = [f"{k} ours={v[0]} theirs={v[1]}" for k, v in sorted(found.items()) if k not in known]
    stale = [str(k) for k in sorted(known) if k not in found]
    changed = [
        f"{k} now ours={found[k][0]} theirs={found[k][1]}"
        for k in sorted(known)
        if k in found and (str(known[k]["ours"]), str(known[k]["theirs"])) != found[k]
    ]
    assert not unlisted, "new disagreements (fix the table or list them with a reason):\n" + "\n".join(unlisted)
    assert not stale, "listed disagreements that no longer disagree (remove them):\n" + "\n".join(stale)
    assert not changed, "listed disagreements whose values changed (review):\n" + "\n".join(changed)


def test_crosscheck_covers_most_models() -> None:
    book = PriceBook.load()
    matched = [m for m in book.models() if _gp_model(m, book.history(m)[-1].aliases, book.history(m)[-1].provider)]
    assert len(matched) >= 60
    assert date(2026, 1, 1) < book.table_date()
