"""Vectorised fast path for JSONL envelopes (issue 7): polars parses blocks of lines, expressions build the rows.

The per-record parser (envelope.py, shape.py, usage.py, outcome.py, values.py) is the specification. A line takes
this path only when it is one of the common shapes whose result is provably the same: an envelope whose request
is OpenAI Chat Completions / OpenAI Responses / Anthropic Messages with plain string message contents, and whose
response is null or a success body of one of those three APIs. Everything else -- other formats, unusual shapes,
malformed JSON -- is handed back as raw lines for the per-record path, so rows and skip messages stay identical.

How a block is judged:
- polars reads it with an explicit, strict schema: a value of the wrong JSON type makes the read fail, and the
  block is bisected down to the offending lines (which go the slow way).
- A `pl.String` field takes any JSON value (objects as their JSON text, numbers as digits), and a null is the
  same as a missing key. Where the slow path cares about the difference, `_SUSPECT` finds it in the raw bytes
  (`"key": null`, `"key": 12`, `"key": "[...`) and those lines go the slow way.
- The remaining per-row conditions are the `_fast` expression; rows failing it go the slow way.
Status: rows proven identical (tests/test_ingest_fast.py, benchmark data), but at 100K lines still slower than the
per-record path (18 s vs 14 s on a loaded 2-core box): the polars read itself is ~0.4 s per 12K lines, the suspect
regex, per-distinct attribution in Python and prompt hashing add ~1.5 s per block. Hence ENABLED = False.
Known limit: a JSON object with duplicate keys (RFC 8259 leaves the meaning open) keeps polars' first value.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa

from auditor.ingest import envelope, shape
from auditor.ingest.outcome import outcome
from auditor.ingest.values import as_dict, finish_reason, service_tier, short_hash, text
from auditor.schema import INGEST_SCHEMA

ENABLED = False  # off until it beats the per-record path (see the module docstring); tests switch it on

BLOCK_BYTES = 64 << 20  # ~12K envelope lines of 5.5 KB
MIN_FAST_SHARE = 0.5  # a file whose first block is mostly slow lines is read the per-record way

S = pl.String()
I64 = pl.Int64()
F64 = pl.Float64()

# Keys whose *presence* the per-record path tests (`"key" in obj`): a null value is not the same as no key.
_PRESENCE = (
    "custom_id|spend|call_type|choices|stop_reason|candidates|usageMetadata|usage_metadata|contents|"
    "generationConfig|systemInstruction|input|instructions|max_output_tokens|system|stop_sequences|thinking|"
    "output_config|role|parts|prompt_tokens|completion_tokens|content|delta|message"
)
# String fields whose JSON type matters (a number, bool, or a string starting like a container is ambiguous).
_TYPED = (
    "model|content|text|role|type|system|instructions|object|finish_reason|stop_reason|service_tier|reason|"
    "metadata|timestamp|request_id|id|user|safety_identifier|refusal|tools|tool_calls|function_call"
)
_MARKERS = "custom_id|standard_logging_object|spend|call_type|payload|duration_ms|tags"
_SUSPECT_PARTS = (
    rf'"(?:{_PRESENCE})"\s*:\s*null',
    rf'"(?:{_MARKERS})"\s*:',
    r'"error"\s*:\s*\{\s*\}',
    r"\\u[dD][89a-fA-F]",  # surrogate escapes: polars does not decode lone surrogates like Python
    r"\x00",
    r"\x{feff}",
)


def _suspect_pattern(attribution_keys: Sequence[str]) -> str:
    typed = "|".join([_TYPED, *(re.escape(k) for k in attribution_keys)])
    return "|".join([*_SUSPECT_PARTS, rf'"(?:{typed})"\s*:\s*(?:true|false|[-0-9]|"[\[{{]|"\\u)'])


_BLANK = r"(?:^|\n)[ \t\r\x0b\x0c]*(?:\n|$)"

_TEXT_PARTS = pl.List(pl.Struct({"type": S, "text": S}))
_MESSAGES = pl.List(
    pl.Struct({"role": S, "content": S, "parts": S, "tool_calls": S, "function_call": S}),
)
_REQUEST = pl.Struct(
    {
        "model": S,
        "messages": _MESSAGES,
        "input": _MESSAGES,
        "instructions": S,
        "system": S,
        "contents": S,
        "generationConfig": S,
        "systemInstruction": S,
        "max_output_tokens": I64,
        "max_tokens": I64,
        "max_completion_tokens": I64,
        "stop_sequences": S,
        "thinking": S,
        "output_config": S,
        "output_format": S,
        "response_format": S,
        "text": S,
        "temperature": F64,
        "tools": S,
        "stream": pl.Boolean(),
        "service_tier": S,
        "user": S,
        "safety_identifier": S,
        "metadata": S,
    }
)
_DETAILS = pl.Struct({"cached_tokens": I64, "cache_write_tokens": I64})
_OUT_DETAILS = pl.Struct({"reasoning_tokens": I64, "thinking_tokens": I64})
_USAGE = pl.Struct(
    {
        "prompt_tokens": I64,
        "completion_tokens": I64,
        "input_tokens": I64,
        "output_tokens": I64,
        "prompt_tokens_details": _DETAILS,
        "input_tokens_details": _DETAILS,
        "completion_tokens_details": _OUT_DETAILS,
        "output_tokens_details": _OUT_DETAILS,
        "cache_read_input_tokens": I64,
        "cache_creation_input_tokens": I64,
        "cache_creation": pl.Struct({"ephemeral_5m_input_tokens": I64, "ephemeral_1h_input_tokens": I64}),
        "service_tier": S,
    }
)
_RESPONSE = pl.Struct(
    {
        "id": S,
        "responseId": S,
        "object": S,
        "type": S,
        "model": S,
        "modelVersion": S,
        "created": F64,
        "created_at": F64,
        "completed_at": F64,
        "createTime": S,
        "status": S,
        "error": S,
        "choices": pl.List(
            pl.Struct(
                {"message": pl.Struct({"content": S, "refusal": S}), "delta": S, "finish_reason": S},
            )
        ),
        "output": pl.List(pl.Struct({"type": S, "content": _TEXT_PARTS})),
        "content": _TEXT_PARTS,
        "stop_reason": S,
        "incomplete_details": pl.Struct({"reason": S}),
        "service_tier": S,
        "candidates": S,
        "usageMetadata": S,
        "usage_metadata": S,
        "usage": _USAGE,
    }
)
_WORDS = {"type": S, "code": S, "error_class": S, "message": S}
_ERROR = pl.Struct({**_WORDS, "error": pl.Struct(_WORDS)})
_TOP: dict[str, pl.DataType] = {
    "timestamp": S,
    "request": _REQUEST,
    "response": _RESPONSE,
    "latency_ms": F64,
    "status": S,
    "error": _ERROR,
    "metadata": S,
    "request_id": S,
    "id": S,
    **{name: S for name in _MARKERS.split("|")},
}

_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?(?:Z|\+00:00)$"
_NONBLANK = r"[^\s\x1c-\x1f]"  # a character both Python's str.strip() and polars keep


@dataclass
class Plan:
    """What one read_paths call needs to run the fast path (built once per attribution mapping)."""

    attribution: Mapping[str, Sequence[str]]
    schema: dict[str, pl.DataType]
    suspect: str
    top_keys: list[str]
    suspect_re: re.Pattern[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.suspect_re = re.compile(self.suspect.replace(r"\x{feff}", "\ufeff").encode())


def plan_for(attribution: Mapping[str, Sequence[str]]) -> Plan | None:
    """The fast-path plan, or None when it cannot apply (switched off, or attribution keys clash with its schema)."""
    if not ENABLED:
        return None
    keys = sorted({key for keys in attribution.values() for key in keys})
    if any(key in _TOP for key in keys):
        return None
    schema = {**_TOP, **{key: S for key in keys}}
    return Plan(attribution, schema, _suspect_pattern(keys), keys)


@dataclass
class BlockResult:
    frame: pl.DataFrame | None  # INGEST_SCHEMA rows of the lines the fast path took
    slow: list[tuple[int, bytes]]  # (line number, raw line) for the per-record path, in order
    fast_rows: int


def parse_block(block: bytes, first_line: int, file: str, plan: Plan) -> BlockResult:
    """Lines first_line.. of `block` (complete lines, no trailing newline needed) -> fast rows + slow lines."""
    body = block[:-1] if block.endswith(b"\n") else block
    clean = False
    try:
        whole = pl.Series([body], dtype=pl.Binary()).cast(S)
        clean = not bool(whole.str.contains(plan.suspect + "|" + _BLANK).any())
    except pl.exceptions.PolarsError:
        pass
    if clean:
        count = body.count(b"\n") + 1
        frame, bad = _try_parse(body, list(range(first_line, first_line + count)), file, plan)
        if frame is not None:
            if not bad:
                return BlockResult(frame, [], frame.height)
            lines = body.split(b"\n")
            slow = [(n, lines[n - first_line]) for n in bad]
            return BlockResult(frame, slow, frame.height)
    return _careful(body.split(b"\n"), first_line, file, plan)


def _careful(lines: list[bytes], first_line: int, file: str, plan: Plan) -> BlockResult:
    """Line by line: blank lines vanish, suspect lines go slow, the rest is parsed in bisected runs."""
    slow: list[tuple[int, bytes]] = []
    candidates: list[tuple[int, bytes]] = []
    for offset, raw in enumerate(lines):
        number = first_line + offset
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith(b"{") or plan.suspect_re.search(raw) or _not_utf8(raw):
            slow.append((number, raw))
        else:
            candidates.append((number, stripped))
    frames: list[pl.DataFrame] = []
    _bisect(candidates, file, plan, frames, slow)
    slow.sort(key=lambda item: item[0])
    frame = pl.concat(frames) if frames else None
    return BlockResult(frame, slow, 0 if frame is None else frame.height)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _bisect(
    lines: list[tuple[int, bytes]],
    file: str,
    plan: Plan,
    frames: list[pl.DataFrame],
    slow: list[tuple[int, bytes]],
) -> None:
    if not lines:
        return
    frame, bad = _try_parse(b"\n".join(raw for _, raw in lines), [n for n, _ in lines], file, plan)
    if frame is None:
        if len(lines) <= 4:
            slow.extend(lines)
            return
        half = len(lines) // 2
        _bisect(lines[:half], file, plan, frames, slow)
        _bisect(lines[half:], file, plan, frames, slow)
        return
    frames.append(frame)
    if bad:
        wanted = set(bad)
        slow.extend(item for item in lines if item[0] in wanted)


def _try_parse(data: bytes, numbers: list[int], file: str, plan: Plan) -> tuple[pl.DataFrame | None, list[int]]:
    """(fast rows, line numbers of rows left to the slow path); frame None when polars cannot read the lines."""
    try:
        parsed = pl.read_ndjson(data, schema=plan.schema)
    except (pl.exceptions.PolarsError, ValueError, OverflowError):
        return None, []
    if parsed.height != len(numbers):
        return None, []
    parsed = parsed.rename({key: f"__top_{key}" for key in plan.top_keys}).with_columns(
        pl.Series("source_line", numbers, dtype=I64)
    )
    rows = _rows(parsed, file, plan)
    rows = _map_distinct(
        rows.with_columns(pl.when(pl.col("__system_list")).then(_f(req, "system")).alias("__system_raw")),
        ["__system_raw"],
        _system_blocks,
        {"__system_blocks": S, "__system_ok": pl.Boolean()},
    ).with_columns(
        pl.coalesce("__system_blocks", "__system").alias("system_text"),
        pl.col("__fast") & pl.col("__system_ok"),
    )
    fast = rows.filter(pl.col("__fast"))
    bad = rows.filter(~pl.col("__fast"))["source_line"].to_list()
    return _finish(fast, plan), bad


# --- row building ----------------------------------------------------------------------------------------------

req = pl.col("request")
resp = pl.col("response")


def _f(struct: pl.Expr, *path: str) -> pl.Expr:
    for name in path:
        struct = struct.struct.field(name)
    return struct


def _nonblank(expr: pl.Expr) -> pl.Expr:
    return expr.str.contains(_NONBLANK)


def _text_ok(expr: pl.Expr) -> pl.Expr:
    """null, or a string whose blankness Python and polars judge alike."""
    return expr.is_null() | _nonblank(expr) | (expr.str.len_bytes() == 0)


def _rows(parsed: pl.DataFrame, file: str, plan: Plan) -> pl.DataFrame:
    """Columns of the fast rows (strings still to be finished in Python over distinct values), and `__fast`."""
    messages_chat = _f(req, "messages")
    has_input = _f(req, "input").is_not_null() | _f(req, "instructions").is_not_null()
    responses_req = has_input | _f(req, "max_output_tokens").is_not_null()
    anthropic_keys = (
        _f(req, "system").is_not_null()
        | _f(req, "stop_sequences").is_not_null()
        | _f(req, "thinking").is_not_null()
        | _f(req, "output_config").is_not_null()
    )
    chat_roles = messages_chat.list.eval(
        pl.element().struct.field("role").is_in(["system", "developer", "tool", "function"])
    ).list.any()
    claude = _f(req, "model").str.to_lowercase().str.starts_with("claude").fill_null(False)
    req_kind = (
        pl.when(responses_req)
        .then(pl.lit(shape.RESPONSES))
        .when(messages_chat.is_null())
        .then(pl.lit(None, S))
        .when(anthropic_keys)
        .then(pl.lit(shape.ANTHROPIC))
        .when(chat_roles)
        .then(pl.lit(shape.CHAT))
        .when(claude)
        .then(pl.lit(shape.ANTHROPIC))
        .otherwise(pl.lit(shape.CHAT))
    )
    resp_kind = (
        pl.when(resp.is_null())
        .then(pl.lit(None, S))
        .when((_f(resp, "object") == "chat.completion") & _f(resp, "choices").is_not_null())
        .then(pl.lit(shape.CHAT))
        .when((_f(resp, "object") == "response") & _f(resp, "output").is_not_null() & _f(resp, "choices").is_null())
        .then(pl.lit(shape.RESPONSES))
        .when(
            (_f(resp, "type") == "message")
            & _f(resp, "content").is_not_null()
            & _f(resp, "stop_reason").is_not_null()
            & _f(resp, "choices").is_null()
            & _f(resp, "output").is_null()
            & _f(resp, "object").is_null()
        )
        .then(pl.lit(shape.ANTHROPIC))
        .otherwise(pl.lit("?"))
    )
    frame = parsed.with_columns(req_kind.alias("__req0"), resp_kind.alias("__resp"))
    frame = frame.with_columns(
        pl.when(
            pl.col("__resp").is_in([shape.CHAT, shape.ANTHROPIC])
            & pl.col("__req0").is_in([shape.CHAT, shape.ANTHROPIC])
        )
        .then(pl.col("__resp"))
        .otherwise(pl.col("__req0"))
        .alias("__req")
    )
    kind_req = pl.col("__req")
    kind_resp = pl.col("__resp")

    # --- request rendering (plain string contents only) ---
    msgs = pl.when(kind_req == shape.RESPONSES).then(_f(req, "input")).otherwise(messages_chat)
    frame = frame.with_columns(msgs.alias("__msgs"))
    m = pl.col("__msgs")
    role_ok = m.list.eval(
        pl.element().struct.field("role").is_not_null()
        & (pl.element().struct.field("role").str.len_bytes() > 0)
        & pl.element().struct.field("parts").is_null()
        & pl.element().struct.field("tool_calls").is_null()
        & pl.element().struct.field("function_call").is_null()
        & ~pl.element().struct.field("content").str.starts_with("[").fill_null(False)
        & ~pl.element().struct.field("content").str.starts_with("{").fill_null(False)
    ).list.all()
    rendered = m.list.eval(
        pl.concat_str(
            [
                pl.lit("["),
                pl.element().struct.field("role"),
                pl.lit("]\n"),
                pl.element().struct.field("content").fill_null(""),
                pl.lit("\n"),
            ]
        )
    ).list.join("")
    lead = m.list.eval(
        pl.element().struct.field("role").is_in(["system", "developer"]).cum_min()
    )  # leading system/developer messages
    lead_text = (
        m.list.gather(lead.list.eval(pl.element().arg_true()))
        .list.eval(pl.element().struct.field("content").fill_null(""))
        .list.join("\n")
    )
    lead_any = lead.list.first().fill_null(False)
    users = m.list.eval(
        pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content").fill_null("")
    )
    system_raw = _f(req, "system")
    system_is_list = system_raw.str.starts_with("[").fill_null(False)
    frame = frame.with_columns(
        role_ok.fill_null(True).alias("__roles_ok"),
        rendered.alias("__rendered"),
        pl.when(kind_req == shape.CHAT)
        .then(pl.when(lead_any).then(lead_text))
        .when(kind_req == shape.RESPONSES)
        .then(pl.when(_nonblank(_f(req, "instructions"))).then(_f(req, "instructions")))
        .when(system_is_list)
        .then(pl.lit(None, S))
        .otherwise(system_raw)
        .alias("__system"),
        ((kind_req == shape.ANTHROPIC) & system_is_list).alias("__system_list"),
        users.list.last().alias("last_user_text"),
        m.list.len().cast(I64).alias("messages_count"),
    )
    # --- outcome / usage / response ---
    usage = _f(resp, "usage")
    chat_usage = _f(usage, "prompt_tokens").is_not_null() | _f(usage, "completion_tokens").is_not_null()
    fast = (
        req.is_not_null()
        & pl.col("timestamp").str.contains(_ISO).fill_null(False)
        & kind_req.is_in([shape.CHAT, shape.RESPONSES, shape.ANTHROPIC])
        & (kind_resp != "?").fill_null(True)
        & pl.col("__roles_ok")
        & _f(req, "contents").is_null()
        & _f(req, "generationConfig").is_null()
        & _f(req, "systemInstruction").is_null()
        & _f(req, "output_config").is_null()
        & _f(req, "output_format").is_null()
        & _f(req, "response_format").is_null()
        & _f(req, "text").is_null()
        & (_f(req, "tools").is_null() | (_f(req, "tools") == "[]"))
        & ((kind_req != shape.RESPONSES) | _f(req, "messages").is_null())
        & ((kind_req == shape.ANTHROPIC) | system_raw.is_null())
        & (_f(req, "system").is_null() | ~_f(req, "system").str.starts_with("{"))
        & _text_ok(_f(req, "instructions"))
        & _f(resp, "modelVersion").is_null()
        & _f(resp, "createTime").is_null()
        & _f(resp, "error").is_null()
        & _f(resp, "candidates").is_null()
        & _f(resp, "usageMetadata").is_null()
        & _f(resp, "usage_metadata").is_null()
        & (_f(resp, "status") != "failed").fill_null(True)
        & (_f(resp, "type") != "error").fill_null(True)
        & _created_ok()
        & _tokens_ok(usage)
        & ((kind_resp != shape.CHAT) | _chat_message_ok()).fill_null(True)
        & ((kind_resp != shape.ANTHROPIC) | _anthropic_texts_ok()).fill_null(True)
        & ((kind_resp != shape.RESPONSES) | _responses_texts_ok()).fill_null(True)
        & (pl.col("status").is_null() | pl.col("status").str.contains(r"^(?:[0-9]{1,9}|[A-Za-z_]+)$"))
        & _error_ok()
        & _text_ok(pl.col("request_id"))
        & _text_ok(pl.col("id"))
        & _text_ok(_f(resp, "id"))
        & _f(resp, "responseId").is_null()
        & _text_ok(_f(resp, "model"))
        & _text_ok(_f(req, "model"))
    )
    for marker in _MARKERS.split("|"):
        fast = fast & pl.col(marker).is_null()
    tokens = _tokens(usage, chat_usage)
    frame = frame.with_columns(fast.fill_null(False).alias("__fast"), *tokens)
    return frame.with_columns(
        pl.lit(file).alias("source_file"),
        _output_text().alias("output_text"),
        _finish_raw().alias("__finish_raw"),
        pl.when(kind_resp == shape.ANTHROPIC)
        .then(_f(usage, "service_tier"))
        .otherwise(_f(resp, "service_tier"))
        .alias("__tier_resp"),
        _max_tokens().alias("max_tokens"),
        _f(req, "temperature").alias("temperature"),
        pl.lit(0, I64).alias("tools_count"),  # tools are null or [] on fast rows
        _f(req, "stream").fill_null(False).alias("stream"),
        _latency().alias("latency_ms"),
    )


def _created_ok() -> pl.Expr:
    """The response's `created` must be a valid unix time for the slow path too (it is parsed even when unused)."""
    created = _f(resp, "created")
    chosen = pl.when(created.is_not_null() & (created != 0)).then(created).otherwise(_f(resp, "created_at"))
    return (chosen.is_null() | (chosen == 0) | ((chosen > 0) & (chosen < 1e11))).fill_null(True)


def _tokens_ok(usage: pl.Expr) -> pl.Expr:
    fields = [
        _f(usage, "prompt_tokens"),
        _f(usage, "completion_tokens"),
        _f(usage, "input_tokens"),
        _f(usage, "output_tokens"),
        _f(usage, "prompt_tokens_details", "cached_tokens"),
        _f(usage, "prompt_tokens_details", "cache_write_tokens"),
        _f(usage, "input_tokens_details", "cached_tokens"),
        _f(usage, "input_tokens_details", "cache_write_tokens"),
        _f(usage, "completion_tokens_details", "reasoning_tokens"),
        _f(usage, "output_tokens_details", "reasoning_tokens"),
        _f(usage, "output_tokens_details", "thinking_tokens"),
        _f(usage, "cache_read_input_tokens"),
        _f(usage, "cache_creation_input_tokens"),
        _f(usage, "cache_creation", "ephemeral_5m_input_tokens"),
        _f(usage, "cache_creation", "ephemeral_1h_input_tokens"),
    ]
    ok = pl.lit(True)
    for value in fields:
        ok = ok & (value >= 0).fill_null(True)
    return ok


def _chat_message_ok() -> pl.Expr:
    choice = _f(resp, "choices").list.first()
    content = _f(choice.struct.field("message"), "content")
    refusal = _f(choice.struct.field("message"), "refusal")
    container = r"^[\[{]"
    return (
        choice.struct.field("delta").is_null()
        & ~content.str.contains(container).fill_null(False)
        & ~refusal.str.contains(container).fill_null(False)
    )


def _anthropic_texts_ok() -> pl.Expr:
    blocks = _f(resp, "content")
    return blocks.list.eval(
        (pl.element().struct.field("type") != "text") | pl.element().struct.field("text").is_not_null()
    ).list.all()


def _responses_texts_ok() -> pl.Expr:
    return pl.lit(True)


def _error_ok() -> pl.Expr:
    """An error object must show at least one declared field (an all-null struct may be {} or unknown keys)."""
    error = pl.col("error")
    words = [_f(error, name) for name in _WORDS] + [_f(error, "error")]
    seen = pl.any_horizontal([w.is_not_null() for w in words])
    return error.is_null() | seen


def _tokens(usage: pl.Expr, chat_usage: pl.Expr) -> list[pl.Expr]:
    kind = pl.col("__resp")
    # OpenAI (chat or responses keys), usage.openai_usage + inclusive
    in_key = pl.when(chat_usage).then(_f(usage, "prompt_tokens")).otherwise(_f(usage, "input_tokens"))
    out_key = pl.when(chat_usage).then(_f(usage, "completion_tokens")).otherwise(_f(usage, "output_tokens"))
    in_det = pl.when(chat_usage).then(_f(usage, "prompt_tokens_details")).otherwise(_f(usage, "input_tokens_details"))
    out_det = (
        pl.when(chat_usage).then(_f(usage, "completion_tokens_details")).otherwise(_f(usage, "output_tokens_details"))
    )
    read = pl.coalesce(_f(in_det, "cached_tokens"), _f(usage, "cache_read_input_tokens"))
    write = pl.coalesce(_f(in_det, "cache_write_tokens"), _f(usage, "cache_creation_input_tokens"))
    reasoning = _f(out_det, "reasoning_tokens")
    cached = read.fill_null(0) + write.fill_null(0)
    o_input = pl.when(in_key.is_not_null() & (cached > in_key)).then(in_key + cached).otherwise(in_key)
    o_w1 = pl.when(write.is_not_null()).then(pl.lit(0, I64))
    # Anthropic, usage.anthropic_usage
    a_raw = _f(usage, "input_tokens")
    a_read = _f(usage, "cache_read_input_tokens")
    a_created = _f(usage, "cache_creation_input_tokens")
    s5 = _f(usage, "cache_creation", "ephemeral_5m_input_tokens")
    s1 = _f(usage, "cache_creation", "ephemeral_1h_input_tokens")
    no_split = s5.is_null() & s1.is_null()
    a_w5 = pl.when(no_split).then(a_created).otherwise(s5.fill_null(0))
    a_w1 = pl.when(no_split).then(pl.when(a_created.is_not_null()).then(pl.lit(0, I64))).otherwise(s1.fill_null(0))
    a_input = a_raw + a_read.fill_null(0) + a_w5.fill_null(0) + a_w1.fill_null(0)
    anthropic = kind == shape.ANTHROPIC
    openai = kind.is_in([shape.CHAT, shape.RESPONSES])

    def pick(a: pl.Expr, o: pl.Expr, name: str) -> pl.Expr:
        return pl.when(anthropic).then(a).when(openai).then(o).otherwise(pl.lit(None, I64)).cast(I64).alias(name)

    return [
        pick(a_input, o_input, "input_tokens"),
        pick(a_read, read, "cache_read_tokens"),
        pick(a_w5, write, "cache_write_5m_tokens"),
        pick(a_w1, o_w1, "cache_write_1h_tokens"),
        pick(_f(usage, "output_tokens"), out_key, "output_tokens"),
        pick(_f(usage, "output_tokens_details", "thinking_tokens"), reasoning, "reasoning_tokens"),
    ]


def _output_text() -> pl.Expr:
    kind = pl.col("__resp")
    message = _f(resp, "choices").list.first().struct.field("message")
    content = _f(message, "content")
    refusal = _f(message, "refusal")
    has_content = content.is_not_null() & (content.str.len_bytes() > 0)
    chat = (
        pl.when(has_content & refusal.is_not_null())
        .then(pl.concat_str([content, pl.lit("\n"), refusal]))
        .when(has_content)
        .then(content)
        .otherwise(refusal)
    )
    blocks = _f(resp, "content")
    a_texts = blocks.list.eval(pl.element().filter(pl.element().struct.field("type") == "text").struct.field("text"))
    anthropic = pl.when(a_texts.list.len() > 0).then(a_texts.list.join(""))
    r_texts = (
        _f(resp, "output")
        .list.eval(pl.element().struct.field("content").list.explode(keep_nulls=False, empty_as_null=False))
        .list.eval(
            pl.element()
            .filter(
                (pl.element().struct.field("type") == "output_text") & pl.element().struct.field("text").is_not_null()
            )
            .struct.field("text")
        )
    )
    responses = pl.when(r_texts.list.len() > 0).then(r_texts.list.join(""))
    return (
        pl.when(kind == shape.CHAT)
        .then(chat)
        .when(kind == shape.ANTHROPIC)
        .then(anthropic)
        .when(kind == shape.RESPONSES)
        .then(responses)
        .otherwise(pl.lit(None, S))
    )


def _finish_raw() -> pl.Expr:
    """The raw finish value, prefixed with how to read it (normalised in Python over distinct values)."""
    kind = pl.col("__resp")
    tool_call = (
        _f(resp, "output")
        .list.eval(pl.element().struct.field("type").is_in(["function_call", "custom_tool_call"]))
        .list.any()
    )
    reason = _f(resp, "incomplete_details", "reason")
    responses = (
        pl.when(reason.is_not_null())
        .then(pl.concat_str([pl.lit("n:"), reason]))
        .when(_f(resp, "status") == "completed")
        .then(pl.when(tool_call.fill_null(False)).then(pl.lit("=tool_calls")).otherwise(pl.lit("=stop")))
    )
    return (
        pl.when(kind == shape.CHAT)
        .then(pl.concat_str([pl.lit("n:"), _f(resp, "choices").list.first().struct.field("finish_reason")]))
        .when(kind == shape.ANTHROPIC)
        .then(pl.concat_str([pl.lit("n:"), _f(resp, "stop_reason")]))
        .when(kind == shape.RESPONSES)
        .then(responses)
        .otherwise(pl.lit(None, S))
    )


def _max_tokens() -> pl.Expr:
    return pl.coalesce(_f(req, "max_completion_tokens"), _f(req, "max_tokens"), _f(req, "max_output_tokens"))


def _latency() -> pl.Expr:
    created = _f(resp, "created")
    start = pl.when(created.is_not_null() & (created != 0)).then(created).otherwise(_f(resp, "created_at"))
    end = _f(resp, "completed_at")
    derived = pl.when(
        (pl.col("__resp") == shape.RESPONSES) & start.is_not_null() & end.is_not_null() & (end >= start)
    ).then((end - start) * 1000.0)
    return pl.coalesce(pl.col("latency_ms"), derived)


# --- finishing in Python over distinct values --------------------------------------------------------------------


def _map_distinct(
    frame: pl.DataFrame, columns: list[str], func: Callable[..., tuple[Any, ...]], out: dict[str, pl.DataType]
) -> pl.DataFrame:
    """frame + `out` columns computed by `func(*values)` once per distinct combination of `columns`."""
    keys = frame.select(columns).unique(maintain_order=True)
    results = [func(*row) for row in keys.iter_rows()]
    table = keys.hstack(
        pl.DataFrame(
            [list(col) for col in zip(*results, strict=True)] if results else [[] for _ in out],
            schema=out,
            orient="col",
        )
    )
    return frame.join(table, on=columns, how="left", nulls_equal=True, maintain_order="left")


def _finish(fast: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    if fast.is_empty():
        return pl.DataFrame(schema=INGEST_SCHEMA)
    frame = fast.with_columns(
        _f(req, "model").alias("__req_model"),
        _f(resp, "model").alias("__resp_model"),
        _f(req, "service_tier").alias("__tier_req"),
        _f(req, "user").alias("__req_user"),
        _f(req, "safety_identifier").alias("__req_safety"),
        _f(req, "metadata").alias("__req_meta"),
        pl.when(pl.col("error").is_not_null()).then(pl.col("error").struct.json_encode()).alias("__error_json"),
        pl.coalesce(
            _keep_nonblank(pl.col("request_id")),
            _keep_nonblank(pl.col("id")),
            pl.when(pl.col("__resp").is_not_null()).then(_keep_nonblank(_f(resp, "id"))),
            pl.concat_str([pl.lit(os.path.basename(fast["source_file"][0]) + ":"), pl.col("source_line").cast(S)]),
        ).alias("request_id"),
        pl.col("timestamp")
        .str.replace(r"\+00:00$", "Z")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC")
        .alias("timestamp"),
    ).drop("request", "response", *_MARKERS.split("|"))
    frame = _map_distinct(
        frame,
        ["__resp_model", "__req_model", "__resp", "__req", "__tier_resp", "__tier_req"],
        _model_tier,
        {"model": S, "provider": S, "service_tier": S},
    )
    frame = _map_distinct(frame, ["__finish_raw"], _finish_reason, {"finish_reason": S})
    frame = _map_distinct(
        frame, ["status", "__error_json"], _outcome, {"__status": S, "http_status": I64, "error_type": S}
    )
    attribution = plan.attribution
    top = plan.top_keys

    def attribute(metadata: Any, req_user: Any, req_safety: Any, req_meta: Any, *top_values: Any) -> tuple[Any, ...]:
        obj = {k: v for k, v in zip(top, top_values, strict=True) if v is not None}
        meta = as_dict(metadata)
        rmeta = as_dict(req_meta)
        request: dict[str, Any] = {"user": req_user, "safety_identifier": req_safety}
        if isinstance(req_meta, str) and req_meta.startswith("{"):
            request["metadata"] = rmeta
        row = shape.attribute(
            [obj, meta, None, rmeta],
            [meta, None, rmeta],
            attribution,
            {"user": envelope.user_fallback(request)},
        )
        return (*(row[c] for c in attribution), row["tags"])

    frame = _map_distinct(
        frame,
        ["metadata", "__req_user", "__req_safety", "__req_meta", *(f"__top_{key}" for key in top)],
        attribute,
        {**{c: S for c in attribution}, "tags": S},
    )
    system = pl.col("system_text")
    prompt = pl.concat_str(
        [
            pl.when(system.is_not_null() & (pl.col("__req") != shape.CHAT))
            .then(pl.concat_str([pl.lit("[system]\n"), system, pl.lit("\n")]))
            .otherwise(pl.lit("")),
            pl.col("__rendered").fill_null(""),
        ]
    )
    frame = frame.with_columns(
        pl.when(system.is_not_null() | (pl.col("messages_count") > 0)).then(prompt).alias("prompt_text"),
    )
    frame = _map_distinct(frame, ["system_text"], lambda value: (short_hash(value),), {"system_hash": S})
    frame = frame.with_columns(
        hashes(frame["prompt_text"]).alias("prompt_hash"),
        pl.lit("envelope").alias("source_format"),
        pl.lit(False).alias("tokens_estimated"),
        (pl.col("service_tier") == "batch").fill_null(False).alias("batch"),
        pl.col("__status").alias("status"),
        pl.lit(None, F64).alias("logged_cost_usd"),
        pl.lit(None, S).alias("response_format"),
        pl.col("messages_count").fill_null(0),
    )
    return frame.select(
        [
            pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in INGEST_SCHEMA.items()
        ]
    )


def _keep_nonblank(expr: pl.Expr) -> pl.Expr:
    return pl.when(_nonblank(expr)).then(expr)


def _system_blocks(raw: Any) -> tuple[Any, ...]:
    """Anthropic `system` as a list of blocks (polars gives its JSON text): joined text blocks, or not fast."""
    if raw is None:
        return None, True
    try:
        blocks = json.loads(raw)
    except ValueError:
        return None, False
    if not isinstance(blocks, list):
        return None, False
    for block in blocks:
        if isinstance(block, str):
            continue
        if not (isinstance(block, dict) and isinstance(block.get("text"), str) and block.get("type") in _TEXT_TYPES):
            return None, False
    return "\n".join(shape.part_text(b) for b in blocks), True


_TEXT_TYPES = ("text", "input_text", "output_text")


def _model_tier(
    resp_model: Any, req_model: Any, resp_kind: Any, req_kind: Any, tier_resp: Any, tier_req: Any
) -> tuple[Any, ...]:
    model = text(resp_model) or text(req_model)
    kind = resp_kind or req_kind
    provider = shape.PROVIDER.get(kind or "")
    return model, provider, service_tier(tier_resp or tier_req)


def _finish_reason(raw: Any) -> tuple[Any, ...]:
    if raw is None:
        return (None,)
    if raw.startswith("="):
        return (raw[1:],)
    return (finish_reason(raw[2:]),)


def _outcome(status: Any, error_json: Any) -> tuple[Any, ...]:
    error = _error_dict(json.loads(error_json)) if error_json is not None else None
    status_value: Any = int(status) if status is not None and status.isdigit() else status
    result = outcome(status_value, error)
    return result["status"], result["http_status"], result["error_type"]


def _error_dict(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: _error_dict(v) for k, v in value.items() if v is not None}


def hashes(values: pl.Series) -> pl.Series:
    """blake2b-64 hex of each string (values.short_hash), threads over the Arrow buffer (hashlib frees the GIL)."""
    array = values.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    _, offsets_buf, data_buf = array.buffers()
    offsets = memoryview(offsets_buf).cast("q") if offsets_buf is not None else memoryview(b"").cast("q")
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    start = array.offset
    valid = array.is_valid().to_pylist()
    size = len(array)

    def run(lo: int, hi: int) -> list[str | None]:
        blake = hashlib.blake2b
        return [
            blake(data[offsets[start + i] : offsets[start + i + 1]], digest_size=8).hexdigest() if valid[i] else None
            for i in range(lo, hi)
        ]

    half = size // 2
    if size < 2000:
        out = run(0, size)
    else:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.submit(run, 0, half), pool.submit(run, half, size)
            out = first.result() + second.result()
    return pl.Series(values.name, out, dtype=S)
