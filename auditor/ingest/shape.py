"""Request / response bodies of the provider APIs -> canonical request-shape and outcome columns.

Provider bodies are told apart by shape: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini.
The rendered `prompt_text` follows the provider's cache order (tools -> system -> messages) so that prefix-based
levers can compare prompts; its exact layout is documented in docs/canonical-format.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring as _json_string
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
    short_hash_after,
    short_hash_cached,
    text,
)

Row = dict[str, Any]

CHAT, RESPONSES, ANTHROPIC, GEMINI = "openai_chat", "openai_responses", "anthropic", "gemini"
PROVIDER = {CHAT: "openai", RESPONSES: "openai", ANTHROPIC: "anthropic", GEMINI: "google"}

_TEXT_TYPES = ("text", "input_text", "output_text")
_ANTHROPIC_BLOCKS = ("tool_use", "tool_result", "thinking", "redacted_thinking", "document")
_CHAT_ROLES = ("system", "developer", "tool", "function")
_SYSTEM_ROLES = ("system", "developer")
_EXACT_INT = 2**53  # integers up to this size survive integer()'s float round trip unchanged


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
        if not isinstance(message, dict):
            continue
        if message.get("role") in _CHAT_ROLES:
            return CHAT
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
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
    return _dict_message_text(message)


def _dict_message_text(message: dict[str, Any]) -> str:
    if "parts" in message:
        body = content_text(message.get("parts"))
    elif "role" in message or "content" in message:
        content = message.get("content")
        body = content if type(content) is str else content_text(content)  # plain text, the usual case, as is
    else:
        return compact_json(message)  # a Responses input item such as function_call / function_call_output
    if "tool_calls" not in message and "function_call" not in message:
        return body  # the usual message: its content only (skips building a list of pieces)
    pieces = [body] if body else []
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


def _rendered(message: Any) -> tuple[str, str]:
    """(message_role, message_text) of one message, looked at once."""
    if not isinstance(message, dict):
        return "unknown", content_text(message)
    role = message.get("role") or message.get("type")
    return (role if isinstance(role, str) else "unknown"), _dict_message_text(message)


def _system_from_blocks(system: Any) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    if isinstance(system, dict) and "parts" in system:  # Gemini systemInstruction
        system = system.get("parts")
    if isinstance(system, list):
        return "\n".join([part_text(b) for b in system])
    return compact_json(system)


REQUEST_COLUMNS = (
    "system_text",
    "prompt_text",
    "last_user_text",
    "messages_count",
    "prompt_hash",
    "system_hash",
    "max_tokens",
    "temperature",
    "response_format",
    "tools_count",
    "stream",
)

# Each may be None: a row without a request body has none of them.
RequestValues = tuple[
    str | None,
    str | None,
    str | None,
    int | None,
    str | None,
    str | None,
    int | None,
    float | None,
    str | None,
    int | None,
    bool | None,
]


def request_fields(req: Mapping[str, Any], kind: str | None) -> Row:
    """Canonical request-shape columns (REQUEST_COLUMNS) of one API request body."""
    return dict(zip(REQUEST_COLUMNS, request_values(req, kind), strict=True))


def request_values(req: Mapping[str, Any], kind: str | None) -> RequestValues:
    """request_fields' values in REQUEST_COLUMNS order (the envelope parser takes them without a dict)."""
    kind = kind or request_kind(req) or CHAT
    messages: list[Any]
    system_text: str | None = None
    leading: list[tuple[str, str]] = []  # (role, text) of OpenAI's leading system/developer messages
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
            for message in messages:
                role = message_role(message)
                if role not in _SYSTEM_ROLES:
                    break
                leading.append((role, message_text(message)))
            system_text = "\n".join(body for _, body in leading) if leading else None
    tools = req.get("tools")
    parts: list[str] = []
    if isinstance(tools, list) and tools:
        parts.append("[tools]\n" + compact_json(tools) + "\n")
    if system_text is not None and not leading:
        parts.append(f"[system]\n{system_text}\n")  # one copy of a long text, not two
    last_user: str | None = None
    for role, body in leading:  # rendered above already; a system/developer message is never the user's
        parts.append(f"[{role}]\n{body}\n")
    for message in messages[len(leading) :] if leading else messages:
        role, body = _rendered(message)
        parts.append(f"[{role}]\n{body}\n")
        if role == "user":
            last_user = body
    prompt_text = "".join(parts) if parts else None
    config = req.get("generationConfig") if kind == GEMINI else None
    return (
        system_text,
        prompt_text,
        last_user,
        len(messages),
        _prompt_hash(prompt_text, parts, system_text, leading, tools),
        # the same system prompt comes back on most requests of an app: hash each distinct text once
        None if system_text is None else short_hash_cached(system_text),
        _max_tokens(req, config),
        number(get(config, "temperature") if config else req.get("temperature"), "temperature"),
        _response_format(req, config),
        len(tools) if isinstance(tools, list) else 0,
        req.get("stream") is True,  # a logged boolean; anything else counts as not streamed
    )


def _prompt_hash(
    prompt_text: str | None, parts: list[str], system_text: str | None, leading: list[tuple[str, str]], tools: Any
) -> str | None:
    """short_hash(prompt_text). A prompt that starts with its system prompt (no tools before it) hashes only what
    follows: the hash state after the system part is kept per distinct system prompt (most of a prompt's bytes)."""
    if system_text is None or (isinstance(tools, list) and tools) or len(leading) > 1:
        return short_hash(prompt_text)
    role, body = leading[0] if leading else ("system", system_text)
    return short_hash_after(role, body, "".join(parts[1:]))  # parts[0] is f"[{role}]\n{body}\n"


def _max_tokens(req: Mapping[str, Any], config: Any) -> int | None:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = req.get(key)
        if value is not None:
            if type(value) is int and -_EXACT_INT <= value <= _EXACT_INT:
                return value  # what integer() returns for it, without the float round trip
            return integer(value, key)
    if isinstance(config, dict) and config.get("maxOutputTokens") is not None:
        return integer(config.get("maxOutputTokens"), "generationConfig.maxOutputTokens")
    return None


def _response_format(req: Mapping[str, Any], config: Any) -> str | None:
    declared = req.get("response_format")
    declared_type = declared.get("type") if isinstance(declared, dict) else None
    if isinstance(declared_type, str):
        return declared_type
    text_options = req.get("text")
    if isinstance(text_options, dict):
        value = get(text_options, "format", "type")
        if isinstance(value, str):
            return value
    if isinstance(declared, str):  # LiteLLM sometimes logs "json_object" directly
        return declared
    if get(req, "output_config", "format") is not None or req.get("output_format") is not None:
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
        if not isinstance(choice, dict):
            choice = {}
        message = choice.get("message") or choice.get("delta")
        if not isinstance(message, dict):
            message = {}
        content = message.get("content")
        pieces = [content_text(content)] if content else []
        refusal = message.get("refusal")
        if isinstance(refusal, str):
            pieces.append(str(refusal))
        row["output_text"] = "\n".join(pieces) if pieces else None
        row["finish_reason"] = finish_reason(choice.get("finish_reason"))
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
            if not isinstance(item, dict):
                continue
            if item.get("type") in ("function_call", "custom_tool_call"):
                tool_call = True
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(str(part["text"]))
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


def attribution_keys(attribution: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every key any attribution column looks for (see RecordContext.attribution_keys, which keeps it)."""
    return frozenset(key for keys in attribution.values() for key in keys)


def attribute(
    lookups: Sequence[Mapping[str, Any] | None],
    tag_maps: Sequence[Mapping[str, Any] | None],
    attribution: Mapping[str, Sequence[str]],
    fallbacks: Mapping[str, Any] | None = None,
    keys: frozenset[str] | None = None,
) -> Row:
    """feature / tenant / user / session_id from the first map (in order) holding a configured key, then tags.

    `lookups` are searched in order (top level first); `tag_maps` are the metadata maps whose remaining
    string values (those not used for attribution) become `tags`. `fallbacks` fill what nothing else named.
    `keys` is attribution_keys(attribution), when the caller keeps it.
    """
    if keys is None:
        keys = attribution_keys(attribution)
    # The attribution keys each map holds with a text value: one C-level intersection per map finds the (usually
    # zero to four) candidates, instead of probing every configured key in every map for every column.
    named: list[tuple[Mapping[str, Any], dict[str, str]]] = []
    for source in lookups:
        if isinstance(source, dict):
            hits = keys.intersection(source)
            if hits:
                values: dict[str, str] = {}
                for key in hits:
                    value = text(source[key])
                    if value is not None:
                        values[key] = value
                if values:
                    named.append((source, values))
    row: Row = {}
    used: dict[int, set[str]] = {}  # id(map) -> its keys that named a column (they are not tags)
    for column, column_keys in attribution.items():
        found: str | None = None
        for source, values in named:
            for key in column_keys:
                found = values.get(key)
                if found is not None:
                    taken = used.get(id(source))
                    if taken is None:
                        used[id(source)] = {key}
                    else:
                        taken.add(key)
                    break
            if found is not None:
                break
        if found is None and fallbacks:
            found = text(fallbacks.get(column))
        row[column] = found
    tags: dict[str, str] = {}
    for source in tag_maps:
        if not isinstance(source, dict):
            continue
        skip = used.get(id(source), ())
        if len(skip) == len(source):
            continue  # every key of this map named a column
        for key, value in source.items():
            if isinstance(value, str) and value and not value.isspace() and key not in skip and key not in tags:
                tags[str(key)] = value
    row["tags"] = _tags_json(tags) if tags else None
    return row


def _tags_json(tags: dict[str, str]) -> str:
    """json.dumps(tags, sort_keys=True, ensure_ascii=False), written out for a map of strings: the same text
    (same escaping function, same default separators), without building a JSONEncoder per row."""
    items = [_json_string(key) + ": " + _json_string(value) for key, value in sorted(tags.items())]
    return "{" + ", ".join(items) + "}"


def tag_list_map(value: Any) -> dict[str, str] | None:
    """LiteLLM request_tags ["feature:search", "prod"] -> {"feature": "search", "prod": "true"}."""
    if value is None:
        return None
    items = as_list(value)
    if items is None or not items:
        return as_dict(value)
    result: dict[str, str] = {}
    for item in items:
        if isinstance(item, str) and item.strip():
            key, sep, val = item.partition(":")
            result[key.strip()] = val.strip() if sep else "true"
    return result or None
