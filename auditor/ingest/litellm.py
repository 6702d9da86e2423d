"""LiteLLM StandardLoggingPayload (callback / bucket logger JSON) and LiteLLM_SpendLogs rows (DB export).

Both are OpenAI-shaped: `prompt_tokens` includes cached tokens. The detailed usage object (cache reads and
writes, reasoning) lives in `metadata.usage_object`, `hidden_params.usage_object`, `response.usage` or
`metadata.additional_usage_values`. SpendLogs keep JSON columns as strings. `spend` / `response_cost` is kept as
logged_cost_usd. A LiteLLM response-cache hit made no provider call, so it is not a billed row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest import shape
from auditor.ingest.context import Parsed, RecordContext, Row
from auditor.ingest.envelope import usage_tokens
from auditor.ingest.outcome import outcome
from auditor.ingest.values import (
    RecordError,
    as_dict,
    as_list,
    error_type,
    flag,
    get,
    number,
    provider_from_model,
    service_tier,
    text,
    timestamp,
    token_count,
)

PAYLOAD = "litellm_payload"
SPENDLOGS = "litellm_spendlogs"
DESCRIPTION_PAYLOAD = "LiteLLM StandardLoggingPayload JSON/JSONL (callback and bucket loggers)"
DESCRIPTION_SPENDLOGS = "LiteLLM_SpendLogs rows exported as JSONL/JSON/Parquet (metadata may be a JSON string)"

_PROVIDERS = {"vertex_ai": "vertex", "vertex_ai_beta": "vertex", "gemini": "google", "azure_ai": "azure"}


def is_payload(obj: Mapping[str, Any]) -> bool:
    return "call_type" in obj and "id" in obj and ("response_cost" in obj or "hidden_params" in obj)


def is_spendlogs(obj: Mapping[str, Any]) -> bool:
    return "request_id" in obj and "spend" in obj and ("startTime" in obj or "call_type" in obj)


def unwrap(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    inner = obj.get("standard_logging_object")
    return inner if isinstance(inner, dict) else obj


def _usage(obj: Mapping[str, Any], metadata: Mapping[str, Any] | None) -> dict[str, int | None]:
    top = {key: token_count(obj.get(key), key) for key in ("prompt_tokens", "completion_tokens")}
    usage: dict[str, Any] = {}
    prefix = "usage"
    for candidate, where in (
        (get(metadata, "usage_object"), "metadata.usage_object"),
        (get(obj, "hidden_params", "usage_object"), "hidden_params.usage_object"),
        (get(as_dict(obj.get("response")), "usage"), "response.usage"),
    ):
        found = as_dict(candidate)
        if found and ("prompt_tokens" in found or "completion_tokens" in found):
            usage, prefix = dict(found), where
            break
    for key, value in (as_dict(get(metadata, "additional_usage_values")) or {}).items():
        usage.setdefault(key, value)
    for key, value in top.items():
        if usage.get(key) is None and value is not None:
            usage[key] = value
    return usage_tokens(usage, shape.CHAT, prefix) if usage else {}


def _request_fields(obj: Mapping[str, Any]) -> Row:
    messages = obj.get("messages")
    params = as_dict(obj.get("model_parameters")) or {}
    parsed = as_list(messages)
    if parsed is None:
        as_obj = as_dict(messages)
        if as_obj and isinstance(as_obj.get("messages"), list):
            parsed = as_obj["messages"]
        elif isinstance(messages, str) and messages.strip() and messages.strip() not in ("{}", "[]"):
            parsed = [{"role": "user", "content": messages}]
    if not parsed:  # prompt not stored (SpendLogs default): only the logged parameters are known
        fields = shape.request_fields({**params, "messages": []}, shape.CHAT)
        for key in ("prompt_text", "prompt_hash", "messages_count", "last_user_text", "stream"):
            fields[key] = None
        if "tools" not in params:
            fields["tools_count"] = None
        return fields
    return shape.request_fields({**params, "messages": parsed}, shape.CHAT)


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    obj = unwrap(obj)
    spendlogs = is_spendlogs(obj)
    if not spendlogs and not is_payload(obj):
        raise RecordError("not a LiteLLM StandardLoggingPayload or SpendLogs row")
    name = SPENDLOGS if spendlogs else PAYLOAD
    if flag(obj.get("cache_hit")):
        return "litellm_cache_hit"
    metadata = as_dict(obj.get("metadata"))
    row = ctx.base(name)
    row.update(_request_fields(obj))
    response = as_dict(obj.get("response"))
    if response and shape.response_kind(response):
        row.update(shape.response_fields(response, shape.response_kind(response) or shape.CHAT))
    row.update(_usage(obj, metadata))
    row["model"] = text(obj.get("model")) or text(get(obj, "hidden_params", "litellm_model_name")) or row.get("model")
    provider = text(obj.get("custom_llm_provider"))
    row["provider"] = _PROVIDERS.get(provider or "", provider) or provider_from_model(row["model"])
    start = timestamp(obj.get("startTime"), "startTime")
    end = timestamp(obj.get("endTime"), "endTime")
    row["timestamp"] = start
    duration = number(obj.get("request_duration_ms"), "request_duration_ms")
    if duration is None and start is not None and end is not None and end >= start:
        duration = (end - start).total_seconds() * 1000.0
    row["latency_ms"] = duration
    row["logged_cost_usd"] = number(obj.get("spend" if spendlogs else "response_cost"), "spend")
    row["service_tier"] = service_tier(row.get("service_tier"))
    status = obj.get("status") or get(metadata, "status")
    error_info = as_dict(obj.get("error_information")) or as_dict(get(metadata, "error_information"))
    error = obj.get("error_str") or (error_info if text(get(error_info, "error_code")) else None)
    row.update(outcome(get(error_info, "error_code") if error else status, error, failed=status == "failure"))
    if row["status"] == "error" and row["error_type"] == "other":
        row["error_type"] = error_type(
            row["http_status"], get(error_info, "error_class"), get(error_info, "error_message")
        )
    row["request_id"] = text(obj.get("request_id") if spendlogs else obj.get("id")) or ctx.fallback_id
    row["stream"] = flag(obj.get("stream")) if obj.get("stream") is not None else row.get("stream")
    requester = as_dict(get(metadata, "requester_metadata"))
    spend_meta = as_dict(get(metadata, "spend_logs_metadata"))
    tags = shape.tag_list_map(obj.get("request_tags"))
    key_meta = {k: v for k, v in (metadata or {}).items() if "hash" not in k and k != "status"}
    fallbacks = {
        "tenant": text(get(metadata, "user_api_key_team_id")) or text(get(metadata, "user_api_key_org_id")),
        "user": text(get(metadata, "user_api_key_end_user_id")) or text(get(metadata, "user_api_key_user_id")),
        "session_id": text(obj.get("trace_id")),
    }
    row.update(
        shape.attribute(
            [obj, spend_meta, requester, tags, key_meta],
            [spend_meta, requester, tags, key_meta],
            ctx.attribution,
            fallbacks,
        )
    )
    return row
