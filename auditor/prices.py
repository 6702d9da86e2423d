"""Prices: load pricing/*.yaml, resolve model names and dates, add exact cost columns.

CONTRACT (other modules build on this; keep the names and meanings):

- `PriceBook.load(overrides: dict | None = None) -> PriceBook` reads the YAML tables shipped as package
  data (auditor.pricing_data = the repo's pricing/), strictly: unknown keys and bad values raise PricingError
  naming file and key. `overrides` is the `pricing:` section of llm-audit.yaml.
- `book.resolve(model: str, provider: str | None = None) -> str | None`: the price key (model_id) for a
  logged model name (aliases, dated snapshots, Bedrock/Vertex ids, "models/..." prefixes), or None.
- `book.model(model_id: str, on: date) -> ModelPrice`: the prices in force on that date.
- `book.add_costs(frame, price_date=None) -> DataFrame`: the ingest frame plus `model_id`, `price_date`,
  `unpriced`, `cost_usd` (auditor.schema.MONEY; null when unpriced, never 0 for an unknown model).
- `book.cost(frame, price_date=None) -> pl.Series` (MONEY): the cost of each row from its columns
  `model_id`, `timestamp`, the token columns, `batch`, `service_tier`. Levers call it on a modified copy
  of the frame to price a counterfactual (another model, other cache tokens, batch=True, ...).
- `book.cache_costs(frame, {name: (read, write_5m, write_1h)}, price_date=None) -> DataFrame`: one MONEY column
  per name, what `cost` gives for the frame with those cache token columns (expressions), in one price join.

Cost of one request (all prices per 1M tokens, Decimal-exact):
  uncached = input - cache_read - cache_write_5m - cache_write_1h (null cache columns count as 0)
  cost = (uncached*input + cache_read*read + w5m*write_5m + w1h*write_1h + output*output) / 1e6
         x service multiplier (batch / flex / priority) x off-peak multiplier (DeepSeek)
Reasoning tokens are part of output and never added again. Above a long-context threshold (total input incl.
cache) the whole request uses that tier's prices. Negotiated discounts (overrides) are folded into the prices.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from auditor.package_data import data_files
from auditor.schema import MONEY

Family = Literal["premium", "mid", "small"]
PRICE = pl.Decimal(38, 12)
MTOK = 1_000_000
PRICE_SLICE_ROWS = 262_144  # rows priced at once (cost, cache_costs): bounds the price join's temporary
TABLES_PACKAGE = "auditor.pricing_data"  # the repo's pricing/ (see auditor.package_data)
HOST_PROVIDERS = frozenset({"bedrock", "vertex", "azure"})  # resell other vendors' models
PROVIDER_SYNONYMS = {
    "aws": "bedrock",
    "amazon": "bedrock",
    "aws_bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "gemini": "google",
    "google_ai_studio": "google",
    "vertex_ai": "vertex",
    "google_vertex": "vertex",
    "x-ai": "xai",
    "x_ai": "xai",
    "grok": "xai",
    "azure_openai": "azure",
    "claude": "anthropic",
}


class PricingError(ValueError):
    """A problem in a price table: the message names the file and the key."""


@dataclass(frozen=True)
class ContextTier:
    """Above `threshold_input_tokens` (total input incl. cache), the whole request is priced at these."""

    threshold_input_tokens: int
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_5m_mtok: Decimal | None = None
    cache_write_1h_mtok: Decimal | None = None


@dataclass(frozen=True)
class CacheRules:
    """How the provider's prompt cache behaves for this model (used by the prompt_caching lever)."""

    mode: Literal["automatic", "explicit", "implicit", "none"]  # automatic: OpenAI/DeepSeek; explicit: Anthropic
    min_tokens: int  # shortest cacheable prefix
    granularity_tokens: int  # OpenAI: 128-token steps after min; Anthropic: breakpoint = 1 (any length)
    ttl_seconds: tuple[int, ...]  # TTL options, default first (e.g. (300, 3600))
    write_5m_multiplier: Decimal  # of base input (1.0 when writes are free, 1.25 Anthropic)
    write_1h_multiplier: Decimal | None  # None when no 1-hour option
    read_multiplier: Decimal  # of base input (0.1, 0.25, 0.5 ...)


@dataclass(frozen=True)
class ModelPrice:
    model_id: str
    provider: str
    effective_from: date
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None
    cache_write_5m_mtok: Decimal | None
    cache_write_1h_mtok: Decimal | None
    tiers: tuple[ContextTier, ...] = ()
    batch_multiplier: Decimal | None = None  # e.g. 0.5; None if the provider has no batch API for it
    flex_multiplier: Decimal | None = None
    priority_multiplier: Decimal | None = None
    caching: CacheRules | None = None
    family: Family = "mid"
    cheaper_candidates: tuple[str, ...] = ()  # model_ids, same provider, cheapest-acceptable first
    successor: str | None = None  # newer same-tier model (for LA203)
    source: str = ""
    checked: date | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    # Added by the pricing work (issue 3):
    offpeak_multiplier: Decimal | None = None  # applied outside `peak_hours_utc` (DeepSeek since 2026-08-16)
    peak_hours_utc: tuple[int, ...] = ()  # whole UTC hours that are peak (0..23)
    discount_percent: Decimal | None = None  # negotiated discount already folded into every price above
    custom: bool = False  # defined in llm-audit.yaml pricing.models, not in the shipped tables
    file: str = ""  # the table it came from (for messages)


# ---------------------------------------------------------------------------------------------------------------
# Strict YAML parsing (tables and overrides)

_TOP_KEYS = {"provider", "source", "checked", "defaults", "models"}
_MODEL_KEYS = {
    "family", "aliases", "candidates", "successor", "source", "checked", "caching",
    "batch", "flex", "priority", "offpeak", "prices", "notes",
}  # fmt: skip
_DEFAULT_KEYS = _MODEL_KEYS - {"prices", "aliases", "candidates", "successor", "family"}
_CACHING_KEYS = {"mode", "min_tokens", "granularity_tokens", "ttl_seconds", "write_5m", "write_1h", "read"}
_PRICE_KEYS = {
    "effective_from", "input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "tiers", "offpeak",
}  # fmt: skip
_TIER_KEYS = {"above", "input", "output", "cache_read", "cache_write_5m", "cache_write_1h"}
_OFFPEAK_KEYS = {"multiplier", "peak_hours_utc"}
_FAMILIES = ("premium", "mid", "small")
_MODES = ("automatic", "explicit", "implicit", "none")
_OVERRIDE_KEYS = {"discounts", "models"}
_DISCOUNT_KEYS = {"provider", "model", "percent"}
_CUSTOM_KEYS = {
    "provider", "base", "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_5m_mtok",
    "cache_write_1h_mtok", "family", "aliases", "effective_from",
}  # fmt: skip


def _fail(where: str, key: str, problem: str) -> PricingError:
    return PricingError(f"{where}: {key}: {problem}")


def _check_keys(raw: Any, allowed: set[str], where: str, key: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, key or "(top level)", "must be a mapping")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        prefix = f"{key}." if key else ""
        raise _fail(where, f"{prefix}{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return raw


def _decimal(value: Any, where: str, key: str, *, optional: bool = False) -> Decimal | None:
    if value is None:
        if optional:
            return None
        raise _fail(where, key, "is required")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _fail(where, key, f"must be a number, got {value!r}")
    try:
        # str() first: YAML floats like 0.3 must become Decimal("0.3"), not the binary 0.29999...
        number = Decimal(str(value))
    except ArithmeticError as exc:
        raise _fail(where, key, f"must be a number, got {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise _fail(where, key, f"must be a finite number >= 0, got {value!r}")
    return number


def _required_decimal(value: Any, where: str, key: str) -> Decimal:
    number = _decimal(value, where, key)
    assert number is not None
    return number


def _date(value: Any, where: str, key: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail(where, key, f"must be a date YYYY-MM-DD, got {value!r}")


def _int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, key, f"must be a whole number >= 0, got {value!r}")
    return value


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, key, "must be a list of names")
    return tuple(value)


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, key, f"must be a non-empty string, got {value!r}")
    return value


def _parse_caching(raw: Any, where: str, key: str) -> CacheRules | None:
    raw = _check_keys(raw, _CACHING_KEYS, where, key)
    mode = raw.get("mode")
    if mode not in _MODES:
        raise _fail(where, f"{key}.mode", f"must be one of {', '.join(_MODES)}, got {mode!r}")
    if mode == "none":
        return None
    ttl = raw.get("ttl_seconds")
    if not isinstance(ttl, list) or not ttl:
        raise _fail(where, f"{key}.ttl_seconds", "must be a non-empty list of seconds, default first")
    return CacheRules(
        mode=mode,
        min_tokens=_int(raw.get("min_tokens"), where, f"{key}.min_tokens"),
        granularity_tokens=max(1, _int(raw.get("granularity_tokens"), where, f"{key}.granularity_tokens")),
        ttl_seconds=tuple(_int(t, where, f"{key}.ttl_seconds") for t in ttl),
        write_5m_multiplier=_required_decimal(raw.get("write_5m"), where, f"{key}.write_5m"),
        write_1h_multiplier=_decimal(raw.get("write_1h"), where, f"{key}.write_1h", optional=True),
        read_multiplier=_required_decimal(raw.get("read"), where, f"{key}.read"),
    )


def _rule(caching: CacheRules | None, name: Literal["read", "write_5m", "write_1h"]) -> Decimal | None:
    if caching is None:
        return None
    return {
        "read": caching.read_multiplier,
        "write_5m": caching.write_5m_multiplier,
        "write_1h": caching.write_1h_multiplier,
    }[name]


def _derived(explicit: Any, base: Decimal, multiplier: Decimal | None, where: str, key: str) -> Decimal | None:
    """An explicit cache price, else base input x the caching multiplier (None when there is no multiplier)."""
    if explicit is not None:
        return _decimal(explicit, where, key)
    return None if multiplier is None else base * multiplier


def _parse_tier(raw: Any, caching: CacheRules | None, where: str, key: str) -> ContextTier:
    raw = _check_keys(raw, _TIER_KEYS, where, key)
    tin = _required_decimal(raw.get("input"), where, f"{key}.input")
    return ContextTier(
        threshold_input_tokens=_int(raw.get("above"), where, f"{key}.above"),
        input_mtok=tin,
        output_mtok=_required_decimal(raw.get("output"), where, f"{key}.output"),
        cache_read_mtok=_derived(raw.get("cache_read"), tin, _rule(caching, "read"), where, key),
        cache_write_5m_mtok=_derived(raw.get("cache_write_5m"), tin, _rule(caching, "write_5m"), where, key),
        cache_write_1h_mtok=_derived(raw.get("cache_write_1h"), tin, _rule(caching, "write_1h"), where, key),
    )


def _multiplier(value: Any, where: str, key: str) -> Decimal | None:
    return _decimal(value, where, key, optional=True)


def _parse_offpeak(raw: Any, where: str, key: str) -> tuple[Decimal | None, tuple[int, ...]]:
    if raw is None:
        return None, ()
    raw = _check_keys(raw, _OFFPEAK_KEYS, where, key)
    hours: list[int] = []
    spans = raw.get("peak_hours_utc")
    if not isinstance(spans, list) or not spans:
        raise _fail(where, f"{key}.peak_hours_utc", 'must be a list of "HH-HH" UTC hour ranges')
    for span in spans:
        match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", str(span))
        if not match or not 0 <= int(match[1]) < int(match[2]) <= 24:
            raise _fail(where, f"{key}.peak_hours_utc", f'bad range {span!r}; use "HH-HH" with start < end <= 24')
        hours.extend(range(int(match[1]), int(match[2])))
    return _decimal(raw.get("multiplier"), where, f"{key}.multiplier"), tuple(sorted(set(hours)))


def _parse_model(model_id: str, raw: Any, provider: str, file_defaults: dict[str, Any], where: str) -> list[ModelPrice]:
    key = f"models.{model_id}"
    raw = _check_keys(raw, _MODEL_KEYS, where, key)
    merged = {**file_defaults, **raw}
    if "caching" in file_defaults and "caching" in raw and isinstance(raw["caching"], dict):
        merged["caching"] = {**file_defaults["caching"], **raw["caching"]}
    family = merged.get("family")
    if family not in _FAMILIES:
        raise _fail(where, f"{key}.family", f"must be one of {', '.join(_FAMILIES)}, got {family!r}")
    caching = _parse_caching(merged.get("caching", {"mode": "none"}), where, f"{key}.caching")
    successor = merged.get("successor")
    if successor is not None:
        successor = _text(successor, where, f"{key}.successor")
    common = {
        "model_id": model_id,
        "provider": provider,
        "batch_multiplier": _multiplier(merged.get("batch"), where, f"{key}.batch"),
        "flex_multiplier": _multiplier(merged.get("flex"), where, f"{key}.flex"),
        "priority_multiplier": _multiplier(merged.get("priority"), where, f"{key}.priority"),
        "caching": caching,
        "family": family,
        "cheaper_candidates": _str_list(merged.get("candidates"), where, f"{key}.candidates"),
        "successor": successor,
        "source": _text(merged.get("source"), where, f"{key}.source"),
        "checked": _date(merged.get("checked"), where, f"{key}.checked"),
        "aliases": _str_list(merged.get("aliases"), where, f"{key}.aliases"),
        "file": where,
    }
    rows = merged.get("prices")
    if not isinstance(rows, list) or not rows:
        raise _fail(where, f"{key}.prices", "must be a non-empty list of dated price rows")
    out = []
    for i, row in enumerate(rows):
        rkey = f"{key}.prices[{i}]"
        row = _check_keys(row, _PRICE_KEYS, where, rkey)
        base = _required_decimal(row.get("input"), where, f"{rkey}.input")
        # A row's own `offpeak` (or `offpeak: null`) wins over the model's: schedules change with the prices.
        offpeak_raw = row["offpeak"] if "offpeak" in row else merged.get("offpeak")
        offpeak, peak_hours = _parse_offpeak(offpeak_raw, where, f"{rkey}.offpeak")
        tiers_raw = row.get("tiers") or []
        if not isinstance(tiers_raw, list):
            raise _fail(where, f"{rkey}.tiers", "must be a list")
        tiers = tuple(
            sorted(
                (_parse_tier(t, caching, where, f"{rkey}.tiers[{j}]") for j, t in enumerate(tiers_raw)),
                key=lambda t: t.threshold_input_tokens,
            )
        )
        out.append(
            ModelPrice(
                effective_from=_date(row.get("effective_from"), where, f"{rkey}.effective_from"),
                input_mtok=base,
                output_mtok=_required_decimal(row.get("output"), where, f"{rkey}.output"),
                cache_read_mtok=_derived(
                    row.get("cache_read"), base, _rule(caching, "read"), where, f"{rkey}.cache_read"
                ),
                cache_write_5m_mtok=_derived(
                    row.get("cache_write_5m"),
                    base,
                    _rule(caching, "write_5m"),
                    where,
                    f"{rkey}.cache_write_5m",
                ),
                cache_write_1h_mtok=_derived(
                    row.get("cache_write_1h"),
                    base,
                    _rule(caching, "write_1h"),
                    where,
                    f"{rkey}.cache_write_1h",
                ),
                tiers=tiers,
                offpeak_multiplier=offpeak,
                peak_hours_utc=peak_hours,
                **common,
            )
        )
    dates = [p.effective_from for p in out]
    if len(set(dates)) != len(dates):
        raise _fail(where, f"{key}.prices", "two rows share an effective_from date")
    return sorted(out, key=lambda p: p.effective_from)


def parse_table(raw: Any, where: str) -> list[ModelPrice]:
    """One provider file -> its dated price rows. `where` names the file in error messages."""
    raw = _check_keys(raw, _TOP_KEYS, where, "")
    provider = _text(raw.get("provider"), where, "provider")
    defaults = _check_keys(raw.get("defaults") or {}, _DEFAULT_KEYS, where, "defaults")
    file_defaults = {"source": raw.get("source"), "checked": raw.get("checked"), **defaults}
    models = raw.get("models")
    if not isinstance(models, dict) or not models:
        raise _fail(where, "models", "must be a non-empty mapping of model id to its entry")
    rows: list[ModelPrice] = []
    for model_id, entry in models.items():
        if not isinstance(model_id, str):
            raise _fail(where, f"models.{model_id}", "model ids must be strings")
        rows.extend(_parse_model(model_id, entry, provider, file_defaults, where))
    return rows


def _table_files(tables_dir: Path | None) -> list[tuple[str, str]]:
    """(file name, text) of every *.yaml table: `tables_dir`, else the package auditor.pricing_data
    (the repo's pricing/ inside the wheel), else the repo's pricing/ in a source checkout."""
    if tables_dir is None:
        return [(p.name, p.read_text(encoding="utf-8")) for p in data_files(TABLES_PACKAGE, ".yaml")]
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(tables_dir.glob("*.yaml"))]


def _read_tables(tables_dir: Path | None) -> list[ModelPrice]:
    import yaml

    files = _table_files(tables_dir)
    if not files:
        raise PricingError(f"{tables_dir or TABLES_PACKAGE}: no *.yaml price tables found")
    rows: list[ModelPrice] = []
    for name, text in files:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PricingError(f"pricing/{name}: not valid YAML ({exc})") from exc
        rows.extend(parse_table(raw, f"pricing/{name}"))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Overrides: negotiated discounts and custom / fine-tuned models (llm-audit.yaml `pricing:`)


def _custom_models(raw: Any, by_id: Mapping[str, list[ModelPrice]], where: str) -> list[ModelPrice]:
    if not isinstance(raw, dict):
        raise _fail(where, "pricing.models", "must be a mapping of model name to prices")
    out = []
    for name, spec in raw.items():
        key = f"pricing.models.{name}"
        spec = _check_keys(spec, _CUSTOM_KEYS, where, key)
        base_rows: list[ModelPrice] = []
        if spec.get("base") is not None:
            base_rows = by_id.get(str(spec["base"]), [])
            if not base_rows:
                raise _fail(where, f"{key}.base", f"unknown model {spec['base']!r}")
        base = base_rows[-1] if base_rows else None
        caching = base.caching if base else None
        provider = spec.get("provider") or (base.provider if base else None)
        inp = _required_decimal(spec.get("input_mtok"), where, f"{key}.input_mtok")
        family = spec.get("family") or (base.family if base else "mid")
        if family not in _FAMILIES:
            raise _fail(where, f"{key}.family", f"must be one of {', '.join(_FAMILIES)}")
        out.append(
            ModelPrice(
                model_id=str(name),
                provider=_text(provider, where, f"{key}.provider"),
                effective_from=_date(spec.get("effective_from", "1970-01-01"), where, f"{key}.effective_from"),
                input_mtok=inp,
                output_mtok=_required_decimal(spec.get("output_mtok"), where, f"{key}.output_mtok"),
                cache_read_mtok=_derived(spec.get("cache_read_mtok"), inp, _rule(caching, "read"), where, key),
                cache_write_5m_mtok=_derived(
                    spec.get("cache_write_5m_mtok"), inp, _rule(caching, "write_5m"), where, key
                ),
                cache_write_1h_mtok=_derived(
                    spec.get("cache_write_1h_mtok"), inp, _rule(caching, "write_1h"), where, key
                ),
                batch_multiplier=base.batch_multiplier if base else None,
                flex_multiplier=base.flex_multiplier if base else None,
                priority_multiplier=base.priority_multiplier if base else None,
                caching=caching,
                family=family,
                source=f"{where} pricing.models",
                aliases=_str_list(spec.get("aliases"), where, f"{key}.aliases"),
                custom=True,
                file=where,
            )
        )
    return out


def _discounts(raw: Any, where: str) -> list[tuple[str | None, str | None, Decimal]]:
    if not isinstance(raw, list):
        raise _fail(where, "pricing.discounts", "must be a list of {provider|model, percent}")
    out = []
    for i, item in enumerate(raw):
        key = f"pricing.discounts[{i}]"
        item = _check_keys(item, _DISCOUNT_KEYS, where, key)
        percent = _required_decimal(item.get("percent"), where, f"{key}.percent")
        if percent > 100:
            raise _fail(where, f"{key}.percent", "must be between 0 and 100")
        provider, model = item.get("provider"), item.get("model")
        if (provider is None) == (model is None):
            raise _fail(where, key, "give exactly one of provider or model")
        out.append((provider, model, percent))
    return out


def _scale(value: Decimal | None, factor: Decimal) -> Decimal | None:
    return None if value is None else value * factor


def _apply_discount(row: ModelPrice, percent: Decimal) -> ModelPrice:
    f = (Decimal(100) - percent) / Decimal(100)
    tiers = tuple(
        ContextTier(
            t.threshold_input_tokens,
            t.input_mtok * f,
            t.output_mtok * f,
            _scale(t.cache_read_mtok, f),
            _scale(t.cache_write_5m_mtok, f),
            _scale(t.cache_write_1h_mtok, f),
        )
        for t in row.tiers
    )
    return replace(
        row,
        input_mtok=row.input_mtok * f,
        output_mtok=row.output_mtok * f,
        cache_read_mtok=_scale(row.cache_read_mtok, f),
        cache_write_5m_mtok=_scale(row.cache_write_5m_mtok, f),
        cache_write_1h_mtok=_scale(row.cache_write_1h_mtok, f),
        tiers=tiers,
        discount_percent=percent,
    )


# ---------------------------------------------------------------------------------------------------------------
# Name resolution

_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|au|jp|ca|in|us-gov)\.(?=[a-z]+\.)")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|20\d{6})$")


def _name_variants(name: str) -> list[str]:
    """Lower-cased spellings of a logged model name to try in order (exact first).

    Fine-tuned OpenAI names (ft:BASE:org:suffix:id) are never reduced to their base, whose prices differ:
    they resolve to the table's own "ft:BASE" entry (fine-tuned inference prices) or stay unpriced.
    """
    name = name.strip().lower()
    variants = [name]
    if name.startswith("ft:"):
        base = name.split(":")[1]
        return [*variants, f"ft:{base}", f"ft:{_DATE_SUFFIX.sub('', base)}"]
    if ":ft-" in name or not name:
        return variants
    if "/" in name:  # models/gemini-…, openai/gpt-4o, publishers/google/models/…, Bedrock ARNs
        name = name.rsplit("/", 1)[1]
        variants.append(name)
    if "@" in name:  # Vertex: claude-sonnet-4-5@20250929
        variants.append(name.split("@", 1)[0].replace("@", ""))
        variants.append(name.replace("@", "-"))
    stripped = _BEDROCK_REGION.sub("", name)
    for candidate in (name, stripped):
        without_version = _BEDROCK_VERSION.sub("", candidate)
        variants.extend([candidate, without_version, _DATE_SUFFIX.sub("", without_version)])
    seen: dict[str, None] = {}
    for v in variants:
        seen.setdefault(v, None)
    return list(seen)


def normalize_provider(provider: str | None) -> str | None:
    if provider is None:
        return None
    p = provider.strip().lower()
    return PROVIDER_SYNONYMS.get(p, p)


# ---------------------------------------------------------------------------------------------------------------
# The price book


class PriceBook:
    """Dated price rows for every known model, name resolution, and bulk cost math."""

    def __init__(self, rows: Iterable[ModelPrice], overrides: Mapping[str, Any] | None = None) -> None:
        by_id: dict[str, list[ModelPrice]] = {}
        for row in rows:
            by_id.setdefault(row.model_id, []).append(row)
        self._history: dict[str, tuple[ModelPrice, ...]] = {
            k: tuple(sorted(v, key=lambda p: p.effective_from)) for k, v in sorted(by_id.items())
        }
        self.overrides: dict[str, Any] = dict(overrides or {})
        self._aliases: dict[str, list[str]] = {}
        for model_id, history in self._history.items():
            for name in (model_id, *history[-1].aliases):
                ids = self._aliases.setdefault(name.lower(), [])
                if model_id not in ids:
                    ids.append(model_id)
        self._resolved: dict[tuple[str, str | None], str | None] = {}
        self._frame: pl.DataFrame | None = None

    # -- construction -------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, *, tables_dir: Path | None = None) -> PriceBook:
        """Read the shipped tables (or every *.yaml in `tables_dir`) and apply `pricing:` overrides."""
        rows = _read_tables(tables_dir)
        where = "llm-audit.yaml"
        if not overrides:
            return cls(rows)
        raw = _check_keys(dict(overrides), _OVERRIDE_KEYS, where, "pricing")
        by_id: dict[str, list[ModelPrice]] = {}
        for row in rows:
            by_id.setdefault(row.model_id, []).append(row)
        custom = _custom_models(raw.get("models") or {}, by_id, where)
        clash = sorted({c.model_id for c in custom} & set(by_id))
        if clash:
            raise _fail(where, f"pricing.models.{clash[0]}", "already in the price tables; use a discount instead")
        rows = rows + custom
        discounts = _discounts(raw.get("discounts") or [], where)
        known_models = {r.model_id for r in rows}
        for provider, model, _ in discounts:
            if model is not None and model not in known_models:
                raise _fail(where, "pricing.discounts", f"unknown model {model!r}")
            if provider is not None and provider not in {r.provider for r in rows}:
                raise _fail(where, "pricing.discounts", f"unknown provider {provider!r}")
        # A model's own discount wins over its provider's (they do not stack).
        by_model = {m: p for _, m, p in discounts if m is not None}
        by_provider = {pr: p for pr, _, p in discounts if pr is not None}
        priced = []
        for row in rows:
            percent = by_model.get(row.model_id, by_provider.get(row.provider))
            priced.append(_apply_discount(row, percent) if percent else row)
        return cls(priced, overrides)

    # -- lookups ------------------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        return list(self._history)

    def history(self, model_id: str) -> tuple[ModelPrice, ...]:
        """Every dated price row of a model, oldest first (KeyError for unknown ids)."""
        return self._history[model_id]

    def alias_index(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._aliases.items()}

    def table_date(self) -> date:
        """The newest `checked` date across the tables: what 'current prices' means for this release."""
        return max((h[-1].checked or h[-1].effective_from) for h in self._history.values())

    def resolve(self, model: str, provider: str | None = None) -> str | None:
        key = (model, provider)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(model, normalize_provider(provider))
        return self._resolved[key]

    def _resolve(self, model: str, provider: str | None) -> str | None:
        for variant in _name_variants(model):
            ids = self._aliases.get(variant)
            if not ids:
                continue
            if provider is not None:
                same = [i for i in ids if self._history[i][-1].provider == provider]
                if same:
                    return same[0]
            native = [i for i in ids if self._history[i][-1].provider not in HOST_PROVIDERS]
            return (native or ids)[0]
        return None

    def model(self, model_id: str, on: date) -> ModelPrice:
        """The row in force on `on`; the oldest row also prices any earlier date."""
        history = self._history.get(model_id)
        if history is None:
            raise PricingError(f"unknown model_id {model_id!r}")
        current = history[0]
        for row in history:
            if row.effective_from <= on:
                current = row
        return current

    # -- bulk cost math -----------------------------------------------------------------------------------------

    def price_frame(self) -> pl.DataFrame:
        """One row per (model_id, price row) with [valid_from, valid_to) and every price as Decimal."""
        if self._frame is None:
            self._frame = _price_frame(self._history)
        return self._frame

    def add_costs(self, frame: pl.DataFrame, price_date: date | None = None) -> pl.DataFrame:
        """The frame plus model_id, price_date, unpriced, cost_usd (same rows, same order)."""
        # Categorical keys (a spilled scan's stubs, spill.write_part) stay Categorical: no string per row
        keys = frame.select(
            pl.col(c) if frame.schema[c] == pl.Categorical else pl.col(c).cast(pl.String) for c in ("model", "provider")
        )
        pairs = keys.unique(maintain_order=True)
        resolved = [self.resolve(m, p) if m is not None else None for m, p in pairs.iter_rows()]
        id_type = pl.Categorical() if keys.schema["model"] == pl.Categorical else pl.String()
        lookup = pairs.with_columns(pl.Series("model_id", resolved, dtype=pl.String).cast(id_type))
        base = frame.drop([c for c in ("model_id", "price_date", "unpriced", "cost_usd") if c in frame.columns])
        # Joined on the key columns alone: a join copies every column it carries, the frame's are only shared.
        model_id = keys.join(
            lookup, on=["model", "provider"], how="left", nulls_equal=True, maintain_order="left"
        ).get_column("model_id")
        del keys
        keyed = base.with_columns(model_id)
        cost = self.cost(keyed, price_date)
        day = self._price_dates(keyed, price_date)
        return keyed.with_columns(
            day.alias("price_date"),
            cost.is_null().alias("unpriced"),
            cost.alias("cost_usd"),
        )

    def _price_dates(self, frame: pl.DataFrame, price_date: date | None) -> pl.Series:
        if price_date is not None:
            return pl.Series("price_date", [price_date] * frame.height, dtype=pl.Date)
        return frame.select(pl.col("timestamp").dt.date().fill_null(self.table_date()).alias("price_date")).to_series()

    def cost(self, frame: pl.DataFrame, price_date: date | None = None) -> pl.Series:
        """Cost of each row (MONEY), from model_id, timestamp, token columns, batch and service_tier."""
        prices = self.price_frame()
        pieces = [
            _cost(part, prices, self._price_dates(part, price_date)).alias("cost_usd") for part in row_slices(frame)
        ]
        return pl.concat(pieces, rechunk=True) if len(pieces) > 1 else pieces[0]

    def cache_costs(
        self,
        frame: pl.DataFrame,
        variants: Mapping[str, tuple[pl.Expr, pl.Expr, pl.Expr]],
        price_date: date | None = None,
    ) -> pl.DataFrame:
        """Per variant name, a MONEY column: the cost of each row with its cache token columns replaced by the
        variant's (cache_read, cache_write_5m, cache_write_1h) expressions over `frame`, exactly what `cost`
        gives for that modified copy, from one price join for all variants (the join is most of the cost)."""
        prices = self.price_frame()
        pieces = [_costs(part, prices, self._price_dates(part, price_date), variants) for part in row_slices(frame)]
        return pl.concat(pieces, rechunk=True) if len(pieces) > 1 else pieces[0]


def row_slices(frame: pl.DataFrame, rows: int | None = None) -> list[pl.DataFrame]:
    """The frame in slices of `rows` rows, PRICE_SLICE_ROWS by default (views, no copy; at least one, maybe
    empty): pricing is row-local, and the price join puts every price column on every row it prices (~0.4 KB a
    row), so at 10M requests it is made one slice at a time. Levers that build a modified copy of a large group
    before pricing it slice smaller."""
    rows = PRICE_SLICE_ROWS if rows is None else rows  # read at call time: tests set it small
    if frame.height <= rows:
        return [frame]
    return [frame.slice(start, rows) for start in range(0, frame.height, rows)]


def _price_frame(history: Mapping[str, tuple[ModelPrice, ...]]) -> pl.DataFrame:
    max_tiers = max((len(r.tiers) for rows in history.values() for r in rows), default=0)
    records: list[dict[str, Any]] = []
    for model_id, rows in history.items():
        for i, row in enumerate(rows):
            rec: dict[str, Any] = {
                "model_id": model_id,
                "valid_from": date(1, 1, 1) if i == 0 else row.effective_from,
                "valid_to": rows[i + 1].effective_from if i + 1 < len(rows) else date(9999, 12, 31),
                "p_in": row.input_mtok,
                "p_out": row.output_mtok,
                "p_read": row.cache_read_mtok,
                "p_w5": row.cache_write_5m_mtok,
                "p_w1": row.cache_write_1h_mtok,
                "m_batch": row.batch_multiplier,
                "m_flex": row.flex_multiplier,
                "m_priority": row.priority_multiplier,
                "m_offpeak": row.offpeak_multiplier,
                "peak_mask": sum(1 << h for h in row.peak_hours_utc),
            }
            for k in range(max_tiers):
                tier = row.tiers[k] if k < len(row.tiers) else None
                rec[f"t{k}_above"] = tier.threshold_input_tokens if tier else None
                rec[f"t{k}_in"] = tier.input_mtok if tier else None
                rec[f"t{k}_out"] = tier.output_mtok if tier else None
                rec[f"t{k}_read"] = tier.cache_read_mtok if tier else None
                rec[f"t{k}_w5"] = tier.cache_write_5m_mtok if tier else None
                rec[f"t{k}_w1"] = tier.cache_write_1h_mtok if tier else None
            records.append(rec)
    schema: dict[str, pl.DataType] = {
        "model_id": pl.String(),
        "valid_from": pl.Date(),
        "valid_to": pl.Date(),
        **{c: PRICE for c in ("p_in", "p_out", "p_read", "p_w5", "p_w1")},
        **{c: PRICE for c in ("m_batch", "m_flex", "m_priority", "m_offpeak")},
        "peak_mask": pl.Int64(),
    }
    for k in range(max_tiers):
        schema[f"t{k}_above"] = pl.Int64()
        for c in ("in", "out", "read", "w5", "w1"):
            schema[f"t{k}_{c}"] = PRICE
    frame = pl.DataFrame(records, schema=schema, orient="row") if records else pl.DataFrame(schema=schema)
    return frame


def _tokens(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Decimal(38, 0))


_CACHE_COLUMNS = ("cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")


def _cost(frame: pl.DataFrame, prices: pl.DataFrame, days: pl.Series) -> pl.Series:
    read, w5, w1 = (pl.col(c) if c in frame.columns else pl.lit(None) for c in _CACHE_COLUMNS)
    return _costs(frame, prices, days, {"cost_usd": (read, w5, w1)}).to_series()


def _costs(
    frame: pl.DataFrame,
    prices: pl.DataFrame,
    days: pl.Series,
    variants: Mapping[str, tuple[pl.Expr, pl.Expr, pl.Expr]],
) -> pl.DataFrame:
    """One MONEY column per variant: the rows priced with the variant's cache token expressions."""
    tier_count = sum(1 for c in prices.columns if c.endswith("_above"))
    cols = ["model_id", "timestamp", "input_tokens", "output_tokens", "batch", "service_tier", "status"]
    present = [pl.col(c) if c in frame.columns else pl.lit(None).alias(c) for c in cols]
    # variant i's cache token columns, evaluated on the frame, as __c{i}_0 / _1 / _2
    cache = [expr.alias(f"__c{i}_{j}") for i, exprs in enumerate(variants.values()) for j, expr in enumerate(exprs)]
    work = frame.select(*present, *cache).with_columns(
        days.alias("__day"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__i"),
        pl.col("model_id").cast(pl.String),
        pl.col("service_tier").cast(pl.String),
        pl.col("status").cast(pl.String),
    )
    in_force = (pl.col("__day") >= pl.col("valid_from")) & (pl.col("__day") < pl.col("valid_to"))
    joined = work.join(prices, on="model_id", how="left", maintain_order="left").filter(
        pl.col("valid_from").is_null() | in_force
    )
    if joined.height != work.height:  # price rows partition time, so every row matches exactly once
        raise AssertionError("price rows overlap or leave gaps")  # pragma: no cover

    total_in = pl.col("input_tokens").fill_null(0)

    # Pick the highest tier whose threshold the request's total input exceeds (cliff: whole request repriced).
    def pick(base: str, tier_col: str) -> pl.Expr:
        expr = pl.col(base)
        for k in range(tier_count):
            above = pl.col(f"t{k}_above")
            expr = pl.when(above.is_not_null() & (total_in > above)).then(pl.col(f"t{k}_{tier_col}")).otherwise(expr)
        return expr

    p_in = pick("p_in", "in")
    p_out = pick("p_out", "out")
    p_read = pick("p_read", "read").fill_null(p_in)  # no cache price: cached tokens cost full input
    p_w5 = pick("p_w5", "w5").fill_null(p_in)
    p_w1 = pick("p_w1", "w1").fill_null(p_w5)  # no 1-hour option: bill as the provider's only write

    one = pl.lit(Decimal(1), dtype=PRICE)
    tier = pl.col("service_tier").str.to_lowercase()
    service = (
        pl.when(pl.col("batch").fill_null(False) | (tier == "batch")).then(pl.col("m_batch").fill_null(one))
        .when(tier == "flex").then(pl.col("m_flex").fill_null(one))
        .when(tier == "priority").then(pl.col("m_priority").fill_null(one))
        .otherwise(one)
    )  # fmt: skip
    hour = pl.col("timestamp").dt.hour().cast(pl.Int64)
    in_peak = ((pl.col("peak_mask") // pl.lit(2, dtype=pl.Int64).pow(hour)) % 2) == 1
    offpeak = (
        pl.when(pl.col("m_offpeak").is_not_null() & hour.is_not_null() & ~in_peak)
        .then(pl.col("m_offpeak"))
        .otherwise(one)
    )
    # The row's prices and multipliers once (not once per variant), on a narrow frame back in the input order.
    rates = joined.select(
        "__i",
        "input_tokens",
        "output_tokens",
        "status",
        *(c for c in joined.columns if c.startswith("__c")),
        p_in.alias("__in"),
        p_out.alias("__out"),
        p_read.alias("__read"),
        p_w5.alias("__w5"),
        p_w1.alias("__w1"),
        service.alias("__service"),
        offpeak.alias("__offpeak"),
        pl.col("p_in").is_null().alias("__unknown"),
    ).sort("__i")

    inp = _tokens("input_tokens").fill_null(0)
    out = _tokens("output_tokens").fill_null(0)

    def per_mtok(i: int) -> pl.Expr:
        read, w5, w1 = (_tokens(f"__c{i}_{j}").fill_null(0) for j in range(3))
        uncached = inp - read - w5 - w1
        uncached = pl.when(uncached < 0).then(pl.lit(0, dtype=pl.Decimal(38, 0))).otherwise(uncached)
        p_in, p_read, p_w5, p_w1, p_out = (pl.col(c) for c in ("__in", "__read", "__w5", "__w1", "__out"))
        return uncached * p_in + read * p_read + w5 * p_w5 + w1 * p_w1 + out * p_out

    no_tokens = pl.col("input_tokens").is_null() & pl.col("output_tokens").is_null()

    def cost(i: int) -> pl.Expr:
        return (
            pl.when(no_tokens & (pl.col("status") == "error"))
            .then(pl.lit(Decimal(0), dtype=MONEY))  # failed requests without usage are not billed
            .when(no_tokens | pl.col("__unknown"))
            .then(pl.lit(None, dtype=MONEY))  # unknown tokens or unknown model: unknown cost, never 0
            .otherwise((per_mtok(i) * pl.col("__service") * pl.col("__offpeak") / MTOK).cast(MONEY))
        )

    return rates.select(cost(i).alias(name) for i, name in enumerate(variants))


# ---------------------------------------------------------------------------------------------------------------
# Summaries used by the report


def unpriced_models(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Models whose requests could not be priced: model, requests, input_tokens, output_tokens (most first)."""
    if frame.height == 0 or "unpriced" not in frame.columns:
        return []
    rows = (
        frame.filter(pl.col("unpriced").fill_null(False))
        .group_by(pl.col("model").fill_null("(unknown)"))
        .agg(
            pl.len().alias("requests"),
            pl.col("input_tokens").sum(),
            pl.col("output_tokens").sum(),
        )
        .sort(["requests", "model"], descending=[True, False])
    )
    return [
        {
            "model": r["model"],
            "requests": int(r["requests"]),
            "input_tokens": int(r["input_tokens"] or 0),
            "output_tokens": int(r["output_tokens"] or 0),
        }
        for r in rows.iter_rows(named=True)
    ]


def compare_logged(frame: pl.DataFrame, tolerance_pct: float = 1.0) -> list[dict[str, Any]]:
    """Per model, the cost the source logged vs our recomputation, over rows that have both."""
    if frame.height == 0 or "logged_cost_usd" not in frame.columns:
        return []
    both = frame.filter(pl.col("logged_cost_usd").is_not_null() & pl.col("cost_usd").is_not_null())
    if both.height == 0:
        return []
    grouped = (
        both.group_by(pl.col("model").fill_null("(unknown)"))
        .agg(
            pl.len().alias("requests"),
            pl.col("logged_cost_usd").cast(pl.Decimal(38, 12)).sum().alias("logged"),
            pl.col("cost_usd").sum().alias("recomputed"),
        )
        .sort("model")
    )
    out = []
    for r in grouped.iter_rows(named=True):
        logged, recomputed = Decimal(r["logged"]), Decimal(r["recomputed"])
        if recomputed:
            diff_pct: float | None = float((logged - recomputed) / recomputed * 100)
        else:
            diff_pct = None if logged else 0.0
        out.append(
            {
                "model": r["model"],
                "requests": int(r["requests"]),
                "logged_cost_usd": float(logged),
                "recomputed_cost_usd": float(recomputed),
                "difference_pct": None if diff_pct is None else round(diff_pct, 4),
                "flagged": diff_pct is None or abs(diff_pct) > tolerance_pct,
            }
        )
    return out
