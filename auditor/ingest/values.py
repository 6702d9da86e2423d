"""Typed field access and value normalisation shared by every source format.

Readers call these helpers on untrusted JSON; a value of the wrong type raises RecordError with the field path,
so the record is skipped with a clear reason instead of producing a wrong number.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any


class RecordError(ValueError):
    """A user-data problem in one record; the message is the reason shown to the user."""


def get(obj: Any, *path: str) -> Any:
    """obj[path[0]][path[1]]... or None when any step is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def as_dict(value: Any) -> dict[str, Any] | None:
    """A mapping, or a JSON string holding one (LiteLLM SpendLogs store JSON columns as strings)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return dict(value) if isinstance(value, dict) else None


def as_list(value: Any) -> list[Any] | None:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return list(value) if isinstance(value, list) else None


def token_count(value: Any, field: str) -> int | None:
    """A token count: None when missing; a non-negative integer otherwise, else RecordError."""
    if type(value) is int and value >= 0:  # the usual case, first (bool is not `int` by type)
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} is {value!r}, expected a non-negative integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # CSV/Parquet exports sometimes stringify numbers
    if not isinstance(value, int):
        raise RecordError(f"{field} is {value!r}, expected a non-negative integer")
    if value < 0:
        raise RecordError(f"{field} is {value}, token counts cannot be negative")
    return value


def number(value: Any, field: str) -> float | None:
    kind = type(value)
    if kind is float or kind is int:  # the usual case, first (bool is not `int` by type)
        result = float(value)
        if not math.isfinite(result):
            raise RecordError(f"{field} is {value!r}, expected a finite number")
        return result
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} is {value!r}, expected a number")
    if isinstance(value, int | float | Decimal):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            raise RecordError(f"{field} is {value!r}, expected a number") from None
    else:
        raise RecordError(f"{field} is {value!r}, expected a number")
    if not math.isfinite(result):
        raise RecordError(f"{field} is {value!r}, expected a finite number")
    return result


def integer(value: Any, field: str) -> int | None:
    result = number(value, field)
    if result is None:
        return None
    if not result.is_integer():
        raise RecordError(f"{field} is {value!r}, expected an integer")
    return int(result)


def text(value: Any) -> str | None:
    """A non-empty string (numbers become strings); None for missing or empty."""
    if type(value) is str:  # the usual case, first; isspace() = "strip() leaves nothing", without a copy
        return value if value and not value.isspace() else None
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value if value and not value.isspace() else None
    return None


def flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def timestamp(value: Any, field: str) -> datetime | None:
    """ISO-8601 (naive = UTC), or unix seconds / milliseconds / nanoseconds -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # Parquet timestamp columns
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str):
        stripped = value.strip()
        if ":" not in stripped:  # float() never accepts a colon: ISO times with a clock skip the attempt
            try:
                return _from_unix(float(stripped), field)
            except ValueError:
                pass
        try:
            parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        except ValueError:
            raise RecordError(f"{field} is {value!r}, expected an ISO-8601 time or unix seconds") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_unix(float(value), field)
    raise RecordError(f"{field} is {value!r}, expected an ISO-8601 time or unix seconds")


def _from_unix(seconds: float, field: str) -> datetime:
    if not math.isfinite(seconds) or seconds < 0:
        raise RecordError(f"{field} is {seconds!r}, expected a unix time")
    if seconds > 1e17:  # nanoseconds (OTLP)
        seconds /= 1e9
    elif seconds > 1e11:  # milliseconds: 1e11 s would be the year 5138
        seconds /= 1e3
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise RecordError(f"{field} is {seconds!r}, out of range for a unix time") from None


def short_hash(value: str | None) -> str | None:
    return None if value is None else hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=256)  # bounded: distinct system prompts are few, and each entry holds its text
def short_hash_cached(value: str) -> str:
    """short_hash of a text that repeats across records (system prompts): hashed once per distinct text."""
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


@lru_cache(maxsize=256)
def _head_state(role: str, body: str) -> Any:
    return hashlib.blake2b(f"[{role}]\n{body}\n".encode(), digest_size=8)


def short_hash_after(role: str, body: str, rest: str) -> str:
    """short_hash(f"[{role}]\\n{body}\\n" + rest): a prompt whose head is a system prompt that repeats across
    records. The hash state after the head is kept per distinct head, so only `rest` is hashed per record."""
    state = _head_state(role, body).copy()
    state.update(rest.encode())
    return str(state.hexdigest())


# What json.dumps(value, ensure_ascii=False, separators=(",", ":")) builds on every call; it keeps no state.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def compact_json(value: Any) -> str:
    return _COMPACT.encode(value)


# --- normalised vocabularies ---------------------------------------------------------------------------------

_TIERS = {
    "default": "standard",
    "auto": "standard",
    "standard": "standard",
    "standard_only": "standard",
    "scale": "standard",
    "on_demand": "standard",
    "flex": "flex",
    "on_demand_flex": "flex",
    "priority": "priority",
    "fast": "priority",
    "on_demand_priority": "priority",
    "batch": "batch",
}


def service_tier(value: Any) -> str | None:
    raw = text(value)
    if raw is None:
        return None
    key = raw.strip().lower()
    return _TIERS.get(key, key)


_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "completed": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
}


def finish_reason(value: Any) -> str | None:
    raw = text(value)
    if raw is None:
        return None
    return _FINISH.get(raw.strip().lower(), "other")


_ERROR_WORDS = (  # substring of a provider error type/code/message -> canonical error_type, first match wins
    ("rate_limit", "rate_limit"),
    ("ratelimit", "rate_limit"),
    ("quota", "rate_limit"),
    ("overloaded", "overloaded"),
    ("timeout", "timeout"),
    ("timed out", "timeout"),
    ("content_filter", "content_filter"),
    ("content_policy", "content_filter"),
    ("authentication", "auth"),
    ("permission", "auth"),
    ("unauthorized", "auth"),
    ("invalid_api_key", "auth"),
    ("billing", "auth"),
    ("not_found", "not_found"),
    ("notfound", "not_found"),
    ("invalid_request", "invalid_request"),
    ("badrequest", "invalid_request"),
    ("bad_request", "invalid_request"),
    ("context_length", "invalid_request"),
    ("api_error", "server_error"),
    ("server_error", "server_error"),
    ("internal", "server_error"),
    ("serviceunavailable", "server_error"),
    ("service_unavailable", "server_error"),
    ("expired", "other"),
)


def error_type(http_status: int | None, *words: Any) -> str:
    """Canonical error_type from an HTTP status and/or provider error type/code strings."""
    if http_status is not None:
        if http_status == 429:
            return "rate_limit"
        if http_status == 529:
            return "overloaded"
        if http_status in (408, 504):
            return "timeout"
        if http_status in (400, 422):
            return "invalid_request"
        if http_status in (401, 403):
            return "auth"
        if http_status == 404:
            return "not_found"
        if 500 <= http_status <= 599:
            return "server_error"
    for word in words:
        raw = text(word)
        if raw is None:
            continue
        lowered = raw.lower().replace(" ", "_").replace("-", "_")
        for needle, kind in _ERROR_WORDS:
            if needle.replace(" ", "_") in lowered:
                return kind
    return "other"


def provider_from_model(model: str | None) -> str | None:
    """Best-effort provider for a bare model name (used only when the shape says nothing)."""
    if not model:
        return None
    name = model.lower().split("/")[-1]
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith(("gpt", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci", "codex")):
        return "openai"
    if name.startswith("gemini"):
        return "google"
    if name.startswith(("mistral", "mixtral", "codestral", "magistral")):
        return "mistral"
    if name.startswith("deepseek"):
        return "deepseek"
    if name.startswith("grok"):
        return "xai"
    return None
