"""Claude Code session transcripts (~/.claude/projects/<cwd>/<session>.jsonl).

Only `assistant` lines carry usage. Claude Code writes one line per content block of a single API response,
each repeating the response's usage (early streaming snapshots may carry a smaller output count), and resumed
sessions copy history into new files. So lines are de-duplicated across the whole run by
(message.id, requestId), keeping the line with the largest usage total (ties: the first line read), as ccusage
does. `<synthetic>` messages are generated locally and never billed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.ingest import shape
from auditor.ingest.context import DEFERRED, Parsed, RecordContext, Row
from auditor.ingest.outcome import outcome
from auditor.ingest.usage import anthropic_usage
from auditor.ingest.values import finish_reason, get, service_tier, text, timestamp, token_count

NAME = "claude_code"
DESCRIPTION = "Claude Code session transcripts (~/.claude/projects/**/*.jsonl), de-duplicated per API response"

EVENT_TYPES = {
    "user",
    "assistant",
    "system",
    "summary",
    "file-history-snapshot",
    "attachment",
    "progress",
    "mode",
    "permission-mode",
    "ai-title",
    "last-prompt",
    "queue-operation",
}


def is_event(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("type")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        return False
    if "payload" in obj or "request" in obj or "response" in obj:
        return False
    return "sessionId" in obj or "uuid" in obj or "messageId" in obj or "leafUuid" in obj


@dataclass
class _Dedupe:
    rows: dict[tuple[str, str], tuple[int, Row]] = field(default_factory=dict)
    duplicates: int = 0


def _score(usage: Mapping[str, Any]) -> int:
    keys = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(token_count(usage.get(k), f"message.usage.{k}") or 0 for k in keys)


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    message = obj.get("message")
    usage = get(message, "usage")
    if obj.get("type") != "assistant" or not isinstance(usage, dict):
        return "claude_code_event"
    model = text(get(message, "model"))
    if model == "<synthetic>":
        return "claude_code_synthetic"
    row = ctx.base(NAME)
    row.update(anthropic_usage(usage, "message.usage"))
    row.update(shape.response_fields(message, shape.ANTHROPIC) if isinstance(message, dict) else {})
    row["model"] = model
    row["provider"] = "anthropic"
    row["timestamp"] = timestamp(obj.get("timestamp"), "timestamp")
    speed = text(usage.get("speed"))
    row["service_tier"] = "priority" if speed == "fast" else service_tier(usage.get("service_tier"))
    row["finish_reason"] = finish_reason(get(message, "stop_reason"))
    row.update(outcome(None, "api_error" if obj.get("isApiErrorMessage") else None))
    message_id = text(get(message, "id"))
    request_id = text(obj.get("requestId"))
    row["request_id"] = request_id or message_id or ctx.fallback_id
    tags = {"cwd": obj.get("cwd"), "git_branch": obj.get("gitBranch"), "claude_code_version": obj.get("version")}
    row.update(shape.attribute([], [tags], ctx.attribution, {"session_id": text(obj.get("sessionId"))}))
    if message_id is None:
        return row
    state = ctx.state.setdefault(NAME, _Dedupe())
    assert isinstance(state, _Dedupe)
    key = (message_id, request_id or "")
    score = _score(usage)
    held = state.rows.get(key)
    if held is not None:
        state.duplicates += 1
        kept = row if score > held[0] else held[1]
        texts = [t for t in (held[1].get("output_text"), row.get("output_text")) if t]
        kept["output_text"] = "".join(texts) if texts else None  # each line holds one content block
        state.rows[key] = (max(score, held[0]), kept)
    else:
        state.rows[key] = (score, row)
    return DEFERRED


def finish(state: dict[str, Any]) -> tuple[list[Row], dict[str, int]]:
    dedupe = state.get(NAME)
    if not isinstance(dedupe, _Dedupe):
        return [], {}
    rows = [row for _, row in dedupe.rows.values()]
    return rows, ({"claude_code_duplicate": dedupe.duplicates} if dedupe.duplicates else {})
