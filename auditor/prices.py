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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

Family = Literal["premium", "mid", "small"]


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


class PriceBook:
    """Implemented in the pricing work (issue 3)."""
