"""Library side of `llm-audit pricing list|show|check`: plain dicts and strings, no printing."""

from __future__ import annotations

import difflib
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from auditor.prices import ModelPrice, PriceBook, PricingError


def _num(value: Decimal | None) -> str | None:
    """Decimal -> plain string without exponent or trailing zeros (JSON-safe, exact)."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


def list_models(book: PriceBook, on: date) -> list[dict[str, Any]]:
    """One row per model with the prices in force on `on` (USD per 1M tokens), sorted by provider and id."""
    rows = []
    for model_id in book.models():
        p = book.model(model_id, on)
        rows.append(
            {
                "model_id": model_id,
                "provider": p.provider,
                "family": p.family,
                "input_mtok": _num(p.input_mtok),
                "cache_read_mtok": _num(p.cache_read_mtok),
                "output_mtok": _num(p.output_mtok),
                "effective_from": p.effective_from.isoformat(),
            }
        )
    return sorted(rows, key=lambda r: (r["provider"], r["model_id"]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _num(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def show_model(book: PriceBook, model: str, on: date) -> dict[str, Any]:
    """Everything about one model on `on`; PricingError naming close matches when the name is unknown."""
    model_id = book.resolve(model)
    if model_id is None:
        names = sorted(book.alias_index())
        close = difflib.get_close_matches(model.lower(), names, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `llm-audit pricing list` shows every model"
        raise PricingError(f"unknown model {model!r}{hint}")
    p = book.model(model_id, on)
    details = _jsonable(asdict(p))
    details.pop("file", None)
    details["resolved_from"] = model
    details["history"] = [
        {
            "effective_from": r.effective_from.isoformat(),
            "input_mtok": _num(r.input_mtok),
            "output_mtok": _num(r.output_mtok),
        }
        for r in book.history(model_id)
    ]
    return {"model_id": model_id, "on": on.isoformat(), **{k: v for k, v in details.items() if k != "model_id"}}


def _cheaper(candidate: ModelPrice, model: ModelPrice) -> bool:
    return (candidate.input_mtok <= model.input_mtok and candidate.output_mtok <= model.output_mtok) and (
        candidate.input_mtok < model.input_mtok or candidate.output_mtok < model.output_mtok
    )


def _check_model(book: PriceBook, model_id: str, on: date) -> list[str]:
    problems: list[str] = []
    p = book.model(model_id, on)
    where = f"{p.file or 'overrides'}: {model_id}"
    for candidate in p.cheaper_candidates:
        if candidate not in book.models():
            problems.append(f"{where}: candidate {candidate!r} is not a model in the tables")
            continue
        c = book.model(candidate, on)
        if c.provider != p.provider:
            problems.append(f"{where}: candidate {candidate!r} is from another provider ({c.provider})")
        if not _cheaper(c, p):
            problems.append(f"{where}: candidate {candidate!r} is not cheaper on {on.isoformat()}")
    if p.successor is not None and p.successor not in book.models():
        problems.append(f"{where}: successor {p.successor!r} is not a model in the tables")
    if not p.source.strip():
        problems.append(f"{where}: no source")
    if p.checked is None and not p.custom:
        problems.append(f"{where}: no checked date")
    for row in book.history(model_id):
        when = f"{where} (from {row.effective_from.isoformat()})"
        if row.cache_read_mtok is not None and row.cache_read_mtok >= row.input_mtok:
            problems.append(f"{when}: cache read {row.cache_read_mtok} is not below input {row.input_mtok}")
        if row.input_mtok == 0 or row.output_mtok == 0:
            problems.append(f"{when}: a zero input or output price (unknown must be absent, not 0)")
        previous = 0
        for tier in row.tiers:
            if tier.threshold_input_tokens <= previous:
                problems.append(f"{when}: tier thresholds must increase")
            previous = tier.threshold_input_tokens
            if tier.input_mtok < row.input_mtok or tier.output_mtok < row.output_mtok:
                problems.append(f"{when}: long-context tier above {tier.threshold_input_tokens} is cheaper than base")
        for name, mult in (("batch", row.batch_multiplier), ("flex", row.flex_multiplier)):
            if mult is not None and not Decimal(0) < mult <= 1:
                problems.append(f"{when}: {name} multiplier {mult} must be in (0, 1]")
        if row.priority_multiplier is not None and row.priority_multiplier < 1:
            problems.append(f"{when}: priority multiplier {row.priority_multiplier} is below 1")
    rules = p.caching
    if rules is not None and p.cache_read_mtok is not None and p.input_mtok:
        ratio = p.cache_read_mtok / p.input_mtok
        if abs(ratio - rules.read_multiplier) > rules.read_multiplier / 100:
            problems.append(f"{where}: cache read is {ratio:.4f}x input but caching.read says {rules.read_multiplier}")
    return problems


def check_tables(book: PriceBook, on: date | None = None) -> list[str]:
    """Consistency problems in the tables (empty list = OK): bad candidates, alias collisions, missing sources..."""
    on = on or book.table_date()
    problems: list[str] = []
    for model_id in book.models():
        problems.extend(_check_model(book, model_id, on))
    for name, ids in sorted(book.alias_index().items()):
        providers = [book.model(i, on).provider for i in ids]
        if len(set(providers)) != len(providers):
            problems.append(f"alias {name!r} names several models of one provider: {', '.join(ids)}")
    return problems
