"""status / http_status / error_type from the many ways logs record a failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest.values import error_type, get, integer, text

Row = dict[str, Any]


def error_words(error: Any) -> list[Any]:
    """Type / code / message strings of an OpenAI `{"error": {...}}`, an Anthropic `{"type": "error", ...}`,
    a flat `{code, message}` or a plain string."""
    if error is None:
        return []
    if isinstance(error, str):
        return [error]
    if isinstance(error, dict):
        nested = error.get("error")
        inner: Mapping[str, Any] = nested if isinstance(nested, dict) else error
        words = [inner.get("type"), inner.get("code"), inner.get("error_class"), inner.get("message")]
        if inner is not error:
            words.append(error.get("type"))
        return [w for w in words if w not in (None, "error")]
    return [str(error)]


def http_code(value: Any, field: str) -> int | None:
    """An HTTP status (int or digit string); None for words such as "ok"/"error"."""
    if type(value) is int and 0 <= value < 1000:  # the usual case; exactly what integer() makes of it
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and not value.strip().isdigit():
        return None
    return integer(value, field)


def outcome(status: Any, error: Any, *, failed: bool = False) -> Row:
    """Canonical outcome columns. `status` may be an HTTP code or a word; `error` any error body."""
    http_status = http_code(status, "status")
    if error is None and not failed and type(status) is int and (http_status is None or http_status < 400):
        return {"status": "ok", "http_status": http_status, "error_type": None}  # the usual success, quickly
    word = (text(status) or "").lower() if isinstance(status, str) else None
    is_error = (
        failed
        or (error is not None and error != "" and error != {})
        or (http_status is not None and http_status >= 400)
        or word in ("error", "failure", "failed", "errored", "expired", "canceled", "cancelled")
    )
    if not is_error:
        return {"status": "ok", "http_status": http_status, "error_type": None}
    return {
        "status": "error",
        "http_status": http_status,
        "error_type": error_type(http_status, *error_words(error), word),
    }


def body_error(body: Any) -> Any:
    """The error object inside a response body, if the body is an error body."""
    if not isinstance(body, dict):
        return None
    if body.get("type") == "error" or (isinstance(body.get("error"), dict) and "choices" not in body):
        return body
    if body.get("status") == "failed":
        return get(body, "error") or "failed"
    return None
