"""Per-record format detection and the registry of format parsers.

Detection looks at the record's own keys, so one file may mix formats (e.g. a proxy that logs both envelopes
and LiteLLM payloads). Order matters: the most specific shapes are tested first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from auditor.ingest import anthropic_batch, canonical, claude_code, codex, envelope, litellm, openai_batch, shape
from auditor.ingest.context import Parsed, RecordContext, Row

Parser = Callable[[Mapping[str, Any], RecordContext], Parsed]
Finisher = Callable[[dict[str, Any]], tuple[list[Row], dict[str, int]]]

FORMATS: dict[str, str] = {
    canonical.NAME: canonical.DESCRIPTION,
    envelope.NAME: envelope.DESCRIPTION,
    openai_batch.NAME: openai_batch.DESCRIPTION,
    anthropic_batch.NAME: anthropic_batch.DESCRIPTION,
    litellm.PAYLOAD: litellm.DESCRIPTION_PAYLOAD,
    litellm.SPENDLOGS: litellm.DESCRIPTION_SPENDLOGS,
    claude_code.NAME: claude_code.DESCRIPTION,
    codex.NAME: codex.DESCRIPTION,
}

PARSERS: dict[str, Parser] = {
    canonical.NAME: canonical.parse,
    envelope.NAME: envelope.parse,
    openai_batch.NAME: openai_batch.parse,
    anthropic_batch.NAME: anthropic_batch.parse,
    litellm.PAYLOAD: litellm.parse,
    litellm.SPENDLOGS: litellm.parse,
    "litellm": litellm.parse,  # alias for --input-format
    claude_code.NAME: claude_code.parse,
    codex.NAME: codex.parse,
}

FINISHERS: tuple[Finisher, ...] = (openai_batch.finish, claude_code.finish)


# Keys without which none of the formats tested before the envelope can match (batch, LiteLLM, Codex, Claude Code
# need one of them; canonical rows are told by their key set alone).
_SPECIFIC_KEYS = frozenset({"custom_id", "standard_logging_object", "spend", "call_type", "type"})
_ENVELOPE_ONLY: dict[tuple[Any, ...], bool] = {}  # key tuple -> only the envelope tests can match (bounded below)


def detect(obj: Mapping[str, Any]) -> str | None:
    """The format name of one JSON record, or None when it matches no known format."""
    keys = tuple(obj)
    envelope_only = _ENVELOPE_ONLY.get(keys)
    if envelope_only is None:
        envelope_only = _SPECIFIC_KEYS.isdisjoint(keys) and not canonical.is_canonical(keys)
        if len(_ENVELOPE_ONLY) >= 1024:
            _ENVELOPE_ONLY.clear()
        _ENVELOPE_ONLY[keys] = envelope_only
    return _envelope(obj) if envelope_only else _detect(obj)


def _detect(obj: Mapping[str, Any]) -> str | None:
    if "custom_id" in obj:
        if openai_batch.is_input(obj) or openai_batch.is_output(obj):
            return openai_batch.NAME
        if anthropic_batch.is_result(obj):
            return anthropic_batch.NAME
    inner = litellm.unwrap(obj)
    if litellm.is_spendlogs(inner):
        return litellm.SPENDLOGS
    if litellm.is_payload(inner):
        return litellm.PAYLOAD
    if codex.is_event(obj):
        return codex.NAME
    if claude_code.is_event(obj):
        return claude_code.NAME
    if canonical.is_canonical(obj):
        return canonical.NAME
    return _envelope(obj)


def _envelope(obj: Mapping[str, Any]) -> str | None:
    if isinstance(obj.get("request"), Mapping | str) or isinstance(obj.get("response"), Mapping | str):
        return envelope.NAME
    if "request" in obj and ("error" in obj or "status" in obj):
        return envelope.NAME  # an error record without a response
    if shape.response_kind(obj) is not None or obj.get("type") == "error":
        return envelope.NAME  # a bare response (or error) body
    return None


def unknown_reason(obj: Mapping[str, Any]) -> str:
    keys = ", ".join(sorted(str(k) for k in obj)[:8]) or "no keys"
    return f"record of no known format (keys: {keys}); see `llm-audit formats`, or force one with --input-format"
