"""Request / response bodies of the provider APIs -> canonical request-shape and outcome columns.

Provider bodies are told apart by shape: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini.
The rendered `prompt_text` follows the provider's cache order (tools -> system -> messages) so that prefix-based
levers can compare prompts; its exact layout is documented in docs/canonical-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from auditor.ingest.values import (
    as_dict,
    as_list,
    compact_json,
    finish_reason,
    get,
    integer,
    number,
    short_hash,
    text,
)

Row = dict[str, Any]

CHAT, RESPONSES, ANTHROPIC, GEMINI = "openai_chat", "openai_responses", "anthropic", "gemini"
PROVIDER = {CHAT: "openai", RESPONSES: "openai", ANTHROPIC: "anthropic", GEMINI: "google"}

_TEXT_TYPES = ("text", "input_text", "output_text")
_ANTHROPIC_BLOCKS = ("tool_use", "tool_result", "thinking", "redacted_thinking", "document")


def response_kind(resp: Mapping[str, Any]) -> str | None:
    obj = resp.get("object")
    if obj == "chat.completion" or obj == "chat.completion.chunk" or "choices" in resp:
        return CHAT
    if obj == "response" or ("output" in resp and isinstance(resp.get("output"), list)):
        return RESPONSES
    if resp.get("type") == "message" or ("stop_reason" in resp and "content" in resp):
        return ANTHROPIC
    if "candidates" in resp or "usageMetadata" in resp or "usage_metadata" in resp:
        return GEMINI
    return None


def request_kind(req: Mapping[str, Any]) -> str | None:
    if "contents" in req or "generationConfig" in req or "systemInstruction" in req:
        return GEMINI
    if "input" in req or "instructions" in req or "max_output_tokens" in req:
        return RESPONSES
    messages = req.get("messages")
    if not isinstance(messages, list):
        return None
    if "system" in req or "stop_sequences" in req or "thinking" in req or "output_config" in req:
        return ANTHROPIC
    for message in messages:
        role = get(message, "role")
        if role in ("system", "developer", "tool", "function"):
            return CHAT
        content = get(message, "content")
        if isinstance(content, list):
            for part in content:
                kind = get(part, "type")
                if kind in _ANTHROPIC_BLOCKS or (kind == "image" and "source" in part):
                    return ANTHROPIC
                if kind in ("image_url", "input_audio", "file"):
                    return CHAT
    model = text(req.get("model")) or ""
    return ANTHROPIC if model.lower().startswith("claude") else CHAT


# --- prompt rendering --------------------------------------------------------------------------------------


def part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict):
        value = part.get("text")
        kind = part.get("type")
        if isinstance(value, str) and (kind in _TEXT_TYPES or (kind is None and not part.get("thought"))):
            return value
    return compact_json(part)


def content_text(content: Any) -> str:
    """String content as is; a list of parts: text parts' text, other parts as compact JSON, joined by newlines."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part_text(p) for p in content)
    return compact_json(content)


def message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return content_text(message)
    if "role" not in message and "content" not in message and "parts" not in message:
        return compact_json(message)  # a Responses input item such as function_call / function_call_output
    pieces = []
    body = content_text(message.get("content") if "parts" not in message else message.get("parts"))
    if body:
        pieces.append(body)
    for extra in ("tool_calls", "function_call"):
        value = message.get(extra)
        if isinstance(value, list):
            pieces.extend(compact_json(v) for v in value)
        elif value is not None:
            pieces.append(compact_json(value))
    return "\n".join(pieces)


def message_role(message: Any) -> str:
    if isinstance(message, dict):
        role = message.get("role") or message.get("type")
        if isinstance(role, str):
            return role
    return "unknown"


def _system_from_blocks(system: Any) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    if isinstance(system, dict) and "parts" in system:  # Gemini systemInstruction
        system = system.get("parts")
    if isinstance(system, list):
        return "\n".join(part_text(b) for b in system)
    return compact_json(system)


def request_fields(req: Mapping[str, Any], kind: str | None) -> Row:
    """Canonical request-shape columns of one API request body."""
    kind = kind or request_kind(req) or CHAT
    messages: list[Any]
    system_text: str | None = None
    leading_system = False
    if kind == RESPONSES:
        raw_input = req.get("input")
        messages = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input or [])
        system_text = text(req.get("instructions"))
    elif kind == GEMINI:
        messages = list(req.get("contents") or [])
        system_text = _system_from_blocks(req.get("systemInstruction") or req.get("system_instruction"))
    else:
        messages = list(req.get("messages") or [])
        if kind == ANTHROPIC:
            system_text = _system_from_blocks(req.get("system"))
        else:
            leading = []
            for message in messages:
                if message_role(message) not in ("system", "developer"):
                    break
                leading.append(message_text(message))
            system_text = "\n".join(leading) if leading else None
            leading_system = bool(leading)
    tools = req.get("tools")
    parts: list[str] = []
    if isinstance(tools, list) and tools:
        parts.append("[tools]\n" + compact_json(tools) + "\n")
    if system_text is not None and not leading_system:
        parts.append("[system]\n" + system_text + "\n")
    last_user: str | None = None
    for message in messages:
        role = message_role(message)
        body = message_text(message)
        parts.append(f"[{role}]\n{body}\n")
        if role == "user":
            last_user = body
    prompt_text = "".join(parts) if parts else None
    config = req.get("generationConfig") if kind == GEMINI else None
    return {
        "system_text": system_text,
        "prompt_text": prompt_text,
        "last_user_text": last_user,
        "messages_count": len(messages),
        "prompt_hash": short_hash(prompt_text),
        "system_hash": short_hash(system_text),
        "max_tokens": _max_tokens(req, config),
        "temperature": number(get(config, "temperature") if config else req.get("temperature"), "temperature"),
        "response_format": _response_format(req, config),
        "tools_count": len(tools) if isinstance(tools, list) else 0,
        "stream": bool(req.get("stream")) if isinstance(req.get("stream"), bool) else False,
    }


def _max_tokens(req: Mapping[str, Any], config: Any) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        if req.get(key) is not None:
            return integer(req.get(key), key)
    if isinstance(config, dict) and config.get("maxOutputTokens") is not None:
        return integer(config.get("maxOutputTokens"), "generationConfig.maxOutputTokens")
    return None


def _response_format(req: Mapping[str, Any], config: Any) -> str | None:
    for value in (get(req, "response_format", "type"), get(req, "text", "format", "type")):
        if isinstance(value, str):
            return value
    if isinstance(req.get("response_format"), str):  # LiteLLM sometimes logs "json_object" directly
        return str(req["response_format"])
    if get(req, "output_config", "format") is not None or get(req, "output_format") is not None:
        return "json_schema"
    if isinstance(config, dict):
        if config.get("responseSchema") is not None or config.get("responseJsonSchema") is not None:
            return "json_schema"
        if config.get("responseMimeType") == "application/json":
            return "json_object"
    return None


# --- response parsing ----------------------------------------------------------------------------------------


def response_fields(resp: Mapping[str, Any], kind: str) -> Row:
    """model, output_text, finish_reason (normalised) and the service tier the response reports."""
    row: Row = {"model": text(resp.get("model") or resp.get("modelVersion"))}
    if kind == CHAT:
        choice = (resp.get("choices") or [None])[0]
        message = get(choice, "message") or get(choice, "delta") or {}
        pieces = [content_text(get(message, "content"))] if get(message, "content") else []
        if isinstance(get(message, "refusal"), str):
            pieces.append(str(get(message, "refusal")))
        row["output_text"] = "\n".join(pieces) if pieces else None
        row["finish_reason"] = finish_reason(get(choice, "finish_reason"))
        row["service_tier"] = resp.get("service_tier")
    elif kind == ANTHROPIC:
        content = resp.get("content")
        blocks: list[Any] = content if isinstance(content, list) else []
        texts = [str(b.get("text")) for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        row["output_text"] = "".join(texts) if texts else None
        row["finish_reason"] = finish_reason(resp.get("stop_reason"))
        row["service_tier"] = get(resp, "usage", "service_tier")
    elif kind == RESPONSES:
        texts, tool_call = [], False
        for item in resp.get("output") or []:
            if get(item, "type") in ("function_call", "custom_tool_call"):
                tool_call = True
            for part in get(item, "content") or []:
                if get(part, "type") == "output_text" and isinstance(get(part, "text"), str):
                    texts.append(str(get(part, "text")))
        row["output_text"] = "".join(texts) if texts else None
        reason = get(resp, "incomplete_details", "reason")
        status = resp.get("status")
        if reason is not None:
            row["finish_reason"] = finish_reason(reason)
        elif status == "completed":
            row["finish_reason"] = "tool_calls" if tool_call else "stop"
        row["service_tier"] = resp.get("service_tier")
    elif kind == GEMINI:
        candidate = (resp.get("candidates") or [None])[0]
        parts = get(candidate, "content", "parts") or []
        texts = [str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p and not p.get("thought")]
        row["output_text"] = "".join(texts) if texts else None
        row["finish_reason"] = finish_reason(get(candidate, "finishReason") or get(candidate, "finish_reason"))
        usage = resp.get("usageMetadata") or resp.get("usage_metadata") or {}
        row["service_tier"] = get(usage, "trafficType") or resp.get("serviceTier")
    return row


# --- attribution ---------------------------------------------------------------------------------------------


def attribute(
    lookups: Sequence[Mapping[str, Any] | None],
    tag_maps: Sequence[Mapping[str, Any] | None],
    attribution: Mapping[str, Sequence[str]],
    fallbacks: Mapping[str, Any] | None = None,
) -> Row:
    """feature / tenant / user / session_id from the first map (in order) holding a configured key, then tags.

    `lookups` are searched in order (top level first); `tag_maps` are the metadata maps whose remaining
    string values (those not used for attribution) become `tags`. `fallbacks` fill what nothing else named.
    """
    row: Row = {}
    used: set[tuple[int, str]] = set()
    for column, keys in attribution.items():
        row[column] = None
        for source in lookups:
            if not isinstance(source, dict):
                continue
            for key in keys:
                if key not in source:
                    continue
                value = text(source[key])
                if value is not None:
                    row[column] = value
                    used.add((id(source), key))
                    break
            if row[column] is not None:
                break
        if row[column] is None and fallbacks:
            row[column] = text(fallbacks.get(column))
    tags: dict[str, str] = {}
    for source in tag_maps:
        if not isinstance(source, dict):
            continue
        for key, value in source.items():
            if isinstance(value, str) and value.strip() and (id(source), key) not in used and key not in tags:
                tags[str(key)] = value
    row["tags"] = json.dumps(tags, sort_keys=True, ensure_ascii=False) if tags else None
    return row


def tag_list_map(value: Any) -> dict[str, str] | None:
    """LiteLLM request_tags ["feature:search", "prod"] -> {"feature": "search", "prod": "true"}."""
    items = as_list(value)
    if items is None or not items:
        return as_dict(value)
    result: dict[str, str] = {}
    for item in items:
        if isinstance(item, str) and item.strip():
            key, sep, val = item.partition(":")
            result[key.strip()] = val.strip() if sep else "true"
    return result or None
