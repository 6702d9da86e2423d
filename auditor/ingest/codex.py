"""OpenAI Codex CLI session rollouts (~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl).

Each `event_msg` of type `token_count` reports one model call: `last_token_usage` is that call, and
`total_token_usage` is cumulative per session. Codex often writes the same event twice in a row, so an event
whose cumulative total did not change is a duplicate. When `last_token_usage` is missing the call is the
difference of the cumulative totals. The model comes from the latest `turn_context`. Usage is OpenAI-shaped:
input includes cached input, output includes reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest import shape
from auditor.ingest.context import Parsed, RecordContext
from auditor.ingest.outcome import outcome
from auditor.ingest.usage import inclusive
from auditor.ingest.values import RecordError, provider_from_model, text, timestamp, token_count

NAME = "codex"
DESCRIPTION = "OpenAI Codex CLI session rollouts (~/.codex/sessions/**/rollout-*.jsonl), one row per model call"

LINE_TYPES = {"session_meta", "turn_context", "response_item", "event_msg", "compacted"}
_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "output_tokens",
    "reasoning_output_tokens",
)


def is_event(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("type")
    return isinstance(kind, str) and kind in LINE_TYPES and isinstance(obj.get("payload"), dict)


def _counts(usage: Any, where: str) -> dict[str, int | None]:
    if not isinstance(usage, dict):
        raise RecordError(f"{where} is not an object")
    return {key: token_count(usage.get(key), f"{where}.{key}") for key in _FIELDS}


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    payload = obj["payload"]
    state = ctx.file_state
    kind = obj.get("type")
    if kind == "session_meta":
        state["session_id"] = text(payload.get("id"))
        state["provider"] = text(payload.get("model_provider"))
        return "codex_event"
    if kind == "turn_context":
        state["model"] = text(payload.get("model")) or state.get("model")
        return "codex_event"
    if kind != "event_msg" or payload.get("type") != "token_count":
        return "codex_event"
    info = payload.get("info")
    if not isinstance(info, dict):
        return "codex_event"  # rate-limit-only update, no usage
    raw_total = info.get("total_token_usage")
    total = None if raw_total is None else _counts(raw_total, "payload.info.total_token_usage")
    previous = state.get("total")
    if total is not None and total == previous:
        return "codex_duplicate_token_count"
    if isinstance(info.get("last_token_usage"), dict):
        call = _counts(info["last_token_usage"], "payload.info.last_token_usage")
    elif total is not None:
        before = previous or {}
        call = {}
        for key in _FIELDS:
            now, was = total[key], before.get(key)
            call[key] = None if now is None else max(now - (was or 0), 0)
    else:
        raise RecordError("token_count event has neither last_token_usage nor total_token_usage")
    if total is not None:
        state["total"] = total
    row = ctx.base(NAME)
    row.update(
        inclusive(
            call["input_tokens"],
            call["cached_input_tokens"],
            call["cache_write_input_tokens"],
            None if call["cache_write_input_tokens"] is None else 0,
            call["output_tokens"],
            call["reasoning_output_tokens"],
        )
    )
    row["model"] = state.get("model")
    row["provider"] = state.get("provider") or provider_from_model(row["model"]) or "openai"
    row["timestamp"] = timestamp(obj.get("timestamp"), "timestamp")
    row.update(outcome(None, None))
    session = state.get("session_id")
    row["request_id"] = f"{session}:{ctx.line}" if session else ctx.fallback_id
    row.update(shape.attribute([], [], ctx.attribution, {"session_id": session}))
    return row
