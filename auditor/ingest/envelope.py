"""Request/response envelopes (one API call per line) and bare provider response objects.

Envelope: {"timestamp", "request": <API request body>, "response": <API response body>, "latency_ms"?,
"status"?, "error"?, "metadata"?: {...}, "tags"?: {...}} plus attribution keys at the top level. The bodies are
OpenAI Chat Completions, OpenAI Responses, Anthropic Messages or Gemini, told apart by shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest import shape
from auditor.ingest.context import Parsed, RecordContext, Row
from auditor.ingest.outcome import body_error, outcome
from auditor.ingest.usage import (
    EMPTY,
    anthropic_usage,
    gemini_usage,
    is_anthropic_usage,
    is_gemini_usage,
    openai_usage,
)
from auditor.ingest.values import (
    RecordError,
    as_dict,
    get,
    number,
    provider_from_model,
    service_tier,
    text,
    timestamp,
)

NAME = "envelope"
DESCRIPTION = (
    "request/response envelope per line ({timestamp, request, response, latency_ms, status, error, metadata}) "
    "or a bare response; OpenAI Chat/Responses, Anthropic Messages, Gemini bodies"
)

_CHAT_KINDS = (shape.CHAT, shape.ANTHROPIC)


def usage_tokens(usage: Any, kind: str | None, prefix: str) -> dict[str, int | None]:
    if not isinstance(usage, dict):
        if usage is not None:
            raise RecordError(f"{prefix} is {type(usage).__name__}, expected an object")
        return {}
    if kind == shape.ANTHROPIC or (kind is None and is_anthropic_usage(usage)):
        return anthropic_usage(usage, prefix)
    if kind == shape.GEMINI or (kind is None and is_gemini_usage(usage)):
        return gemini_usage(usage, prefix)
    return openai_usage(usage, prefix)


# Unix seconds that timestamp() always accepts (the year 5138; above it, it tries milliseconds).
_SURE_UNIX = 100_000_000_000

# shape.request_values of a call whose request body was not logged: every request column unknown.
_NO_REQUEST: shape.RequestValues = (None, None, None, None, None, None, None, None, None, None, None)


def api_row(
    ctx: RecordContext,
    source_format: str,
    request: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
    *,
    prefix: str = "response",
    timed: bool = False,
) -> Row:
    """Canonical row for one API call from its request and/or (successful) response body.

    The row holds every INGEST_SCHEMA column (None when unknown), so that rows_to_frame can take it whole.
    `timed`: the caller has the request's time already, so the response's creation time is only checked.
    """
    resp_kind = shape.response_kind(response) if response else None
    req_kind = shape.request_kind(request) if request else None
    if resp_kind in _CHAT_KINDS and req_kind in _CHAT_KINDS:
        req_kind = resp_kind  # `messages` is ambiguous between OpenAI and Anthropic; the response is not
    request_values = shape.request_values(request, req_kind) if request else _NO_REQUEST
    fields: Row = {}
    tokens: Mapping[str, int | None] = EMPTY
    request_id = when = latency = None
    if response and resp_kind:
        fields = shape.response_fields(response, resp_kind)
        usage = response.get("usageMetadata") or response.get("usage_metadata") or response.get("usage")
        usage_prefix = f"{prefix}.usageMetadata" if resp_kind == shape.GEMINI else f"{prefix}.usage"
        tokens = usage_tokens(usage, resp_kind, usage_prefix)
        request_id = text(response.get("id") or response.get("responseId"))
        created = response.get("created") or response.get("created_at") or response.get("createTime")
        if not (timed and type(created) is int and 0 <= created <= _SURE_UNIX):
            when = timestamp(created, f"{prefix}.created")
        if resp_kind == shape.RESPONSES:
            start, end = number(created, "created_at"), number(response.get("completed_at"), "completed_at")
            if start is not None and end is not None and end >= start:
                latency = (end - start) * 1000.0
    kind = resp_kind or req_kind
    model = fields.get("model") or text(get(request, "model"))
    tier = service_tier(fields.get("service_tier") or get(request, "service_tier"))
    (
        system_text,
        prompt_text,
        last_user,
        messages,
        prompt_hash,
        system_hash,
        max_tokens,
        temperature,
        response_format,
        tools,
        stream,
    ) = request_values
    return {
        "request_id": request_id,
        "timestamp": when,
        "latency_ms": latency,
        "provider": shape.PROVIDER.get(kind or "") or provider_from_model(model),
        "model": model,
        "source_format": source_format,
        "source_file": ctx.file,
        "source_line": ctx.line,
        "feature": None,
        "tenant": None,
        "user": None,
        "session_id": None,
        "tags": None,
        "input_tokens": tokens.get("input_tokens"),
        "cache_read_tokens": tokens.get("cache_read_tokens"),
        "cache_write_5m_tokens": tokens.get("cache_write_5m_tokens"),
        "cache_write_1h_tokens": tokens.get("cache_write_1h_tokens"),
        "output_tokens": tokens.get("output_tokens"),
        "reasoning_tokens": tokens.get("reasoning_tokens"),
        "tokens_estimated": False,
        "system_text": system_text,
        "prompt_text": prompt_text,
        "last_user_text": last_user,
        "messages_count": messages,
        "prompt_hash": prompt_hash,
        "system_hash": system_hash,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "response_format": response_format,
        "tools_count": tools,
        "stream": stream,
        "service_tier": tier,
        "batch": tier == "batch",
        "status": None,
        "http_status": None,
        "error_type": None,
        "finish_reason": fields.get("finish_reason"),
        "output_text": fields.get("output_text"),
        "logged_cost_usd": None,
    }


def user_fallback(request: Mapping[str, Any] | None) -> str | None:
    """OpenAI `user` / `safety_identifier`, Anthropic `metadata.user_id`."""
    if not isinstance(request, dict):
        return None
    value = text(request.get("user"))
    if value is None:
        value = text(request.get("safety_identifier"))
    if value is None:
        metadata = request.get("metadata")
        value = text(metadata.get("user_id")) if isinstance(metadata, dict) else None
    return value


def _body(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value  # read only, so not copied (as_dict copies)
    body = as_dict(value)
    if body is None:
        raise RecordError(f"{field} is {type(value).__name__}, expected a JSON object")
    return body


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    if "request" not in obj and "response" not in obj:
        return parse_bare(obj, ctx)
    request = _body(obj.get("request"), "request")
    response = _body(obj.get("response"), "response")
    status: Any = obj.get("status")
    if response is not None and isinstance(response.get("body"), dict) and shape.response_kind(response) is None:
        status = response.get("status_code", status)  # raw HTTP capture {status_code, body}
        response = dict(response["body"])
    response_error = body_error(response)
    error = obj.get("error") or response_error
    # The record's own time, read first so api_row can skip converting the response's; a bad one is reported
    # where it was before (after api_row's and outcome's checks), so the reason a record is skipped stays.
    late_error: Exception | None = None
    try:
        when = timestamp(obj.get("timestamp"), "timestamp")
    except Exception as exc:  # any error: raised again below, in its old place
        when, late_error = None, exc
    row = api_row(ctx, NAME, request, response if response_error is None else None, timed=when is not None)
    row.update(outcome(status, error))
    if late_error is not None:
        raise late_error
    row["timestamp"] = when or row.get("timestamp")
    latency = number(obj["latency_ms"] if "latency_ms" in obj else obj.get("duration_ms"), "latency_ms")
    if latency is not None:
        row["latency_ms"] = latency
    row["request_id"] = text(obj.get("request_id")) or text(obj.get("id")) or row.get("request_id") or ctx.fallback_id
    metadata = as_dict(obj.get("metadata"))
    tags = shape.tag_list_map(obj.get("tags"))
    req_meta = as_dict(request.get("metadata")) if request is not None else None
    row.update(
        shape.attribute(
            [obj, metadata, tags, req_meta],
            [metadata, tags, req_meta],
            ctx.attribution,
            {"user": user_fallback(request)},
            ctx.attribution_keys,
        )
    )
    return row


def parse_bare(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    """A provider response object on its own (or an error body)."""
    error = body_error(obj)
    if error is not None:
        row = api_row(ctx, NAME, None, None)
        row.update(outcome(None, error))
    else:
        if shape.response_kind(obj) is None:
            raise RecordError("not a recognised API response body (no choices/output/content/candidates)")
        row = api_row(ctx, NAME, None, obj)
        row.update(outcome(None, None))
    row["request_id"] = row.get("request_id") or text(obj.get("request_id")) or ctx.fallback_id
    row.update(shape.attribute([as_dict(obj.get("metadata"))], [as_dict(obj.get("metadata"))], ctx.attribution))
    return row
