"""Anthropic Message Batches results JSONL: {custom_id, result: {type, message | error}}.

Succeeded results are billed at batch prices (usage.service_tier "batch"). Errored, expired and canceled results
are not billed: they become rows with status "error" and null tokens, so retry analysis still sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest.context import Parsed, RecordContext
from auditor.ingest.envelope import api_row
from auditor.ingest.outcome import outcome
from auditor.ingest.values import RecordError, get, text

NAME = "anthropic_batch"
DESCRIPTION = "Anthropic Message Batches results JSONL ({custom_id, result: {type, message|error}})"


def is_result(obj: Mapping[str, Any]) -> bool:
    return "custom_id" in obj and isinstance(get(obj, "result", "type"), str)


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    if not is_result(obj):
        raise RecordError("not an Anthropic batch result ({custom_id, result: {type, ...}})")
    result = obj["result"]
    kind = result["type"]
    message = result.get("message") if isinstance(result.get("message"), dict) else None
    if kind == "succeeded" and message is not None:
        row = api_row(ctx, NAME, None, message, prefix="result.message")
        row.update(outcome(None, None))
    else:
        row = api_row(ctx, NAME, None, None)
        error = result.get("error") or kind
        row.update(outcome(kind, error, failed=True))
        row["provider"] = "anthropic"
    row["request_id"] = text(get(message, "id")) or text(obj.get("custom_id")) or ctx.fallback_id
    row["provider"] = row.get("provider") or "anthropic"
    row["batch"] = True
    row["service_tier"] = "batch"
    return row
