"""Provider usage objects -> canonical token columns (one meaning whatever the source).

Canonical: input_tokens = uncached + cache read + cache write; cache columns are subsets of it;
output_tokens includes reasoning; reasoning_tokens is a subset. Missing counts stay None (unknown), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.ingest.values import token_count

Tokens = dict[str, int | None]

EMPTY: Tokens = {
    "input_tokens": None,
    "cache_read_tokens": None,
    "cache_write_5m_tokens": None,
    "cache_write_1h_tokens": None,
    "output_tokens": None,
    "reasoning_tokens": None,
}


def _total(*values: int | None) -> int:
    total = 0
    for value in values:
        if value is not None:
            total += value
    return total


def inclusive(
    raw_input: int | None,
    cache_read: int | None,
    write_5m: int | None,
    write_1h: int | None,
    output: int | None,
    reasoning: int | None,
) -> Tokens:
    """Counts from a source whose input already includes cache reads/writes (OpenAI, OTel, LiteLLM).

    Defensive rule: if read + write exceed the raw input, the source cannot have been inclusive, so the raw
    input is treated as the uncached part (as for Anthropic).
    """
    cached = _total(cache_read, write_5m, write_1h)
    if raw_input is not None and cached > raw_input:
        raw_input += cached
    return {
        "input_tokens": raw_input,
        "cache_read_tokens": cache_read,
        "cache_write_5m_tokens": write_5m,
        "cache_write_1h_tokens": write_1h,
        "output_tokens": output,
        "reasoning_tokens": reasoning,
    }


def _count(usage: Mapping[str, Any], key: str, prefix: str) -> int | None:
    """token_count(usage[key]) whose field name is only built for the error message (most counts are plain ints)."""
    value = usage.get(key)
    if value is None or (type(value) is int and value >= 0):
        return value
    return token_count(value, f"{prefix}.{key}")


def _detail(usage: Mapping[str, Any], details: str, key: str, prefix: str) -> int | None:
    """token_count(usage[details][key]), the field named `prefix.details.key`."""
    inner = usage.get(details)
    return _count(inner, key, f"{prefix}.{details}") if isinstance(inner, dict) else None


def openai_usage(usage: Mapping[str, Any], prefix: str = "usage") -> Tokens:
    """Chat Completions (`prompt_tokens`...) or Responses (`input_tokens`...) usage; cached tokens are inside.

    LiteLLM's OpenAI-shaped Usage may also carry Anthropic-style `cache_read_input_tokens` /
    `cache_creation_input_tokens` at the top level; they are used when the details are missing.
    """
    chat = "prompt_tokens" in usage or "completion_tokens" in usage
    in_key, out_key = ("prompt_tokens", "completion_tokens") if chat else ("input_tokens", "output_tokens")
    in_details = "prompt_tokens_details" if chat else "input_tokens_details"
    out_details = "completion_tokens_details" if chat else "output_tokens_details"
    raw_input = _count(usage, in_key, prefix)
    output = _count(usage, out_key, prefix)
    read = _detail(usage, in_details, "cached_tokens", prefix)
    write = _detail(usage, in_details, "cache_write_tokens", prefix)
    if read is None:
        read = _count(usage, "cache_read_input_tokens", prefix)
    if write is None:
        write = _count(usage, "cache_creation_input_tokens", prefix)
    reasoning = _detail(usage, out_details, "reasoning_tokens", prefix)
    return inclusive(raw_input, read, write, None if write is None else 0, output, reasoning)


def anthropic_usage(usage: Mapping[str, Any], prefix: str = "usage") -> Tokens:
    """Anthropic Messages usage: `input_tokens` EXCLUDES cache reads and writes; writes split 5m / 1h."""
    raw_input = _count(usage, "input_tokens", prefix)
    read = _count(usage, "cache_read_input_tokens", prefix)
    created = _count(usage, "cache_creation_input_tokens", prefix)
    split = usage.get("cache_creation")
    w5 = w1 = None
    if isinstance(split, dict):
        w5 = _count(split, "ephemeral_5m_input_tokens", f"{prefix}.cache_creation")
        w1 = _count(split, "ephemeral_1h_input_tokens", f"{prefix}.cache_creation")
    if w5 is None and w1 is None and created is not None:
        w5, w1 = created, 0  # no breakdown: the API's only cache was the 5-minute one
    elif w5 is not None or w1 is not None:
        w5, w1 = w5 or 0, w1 or 0
    output = _count(usage, "output_tokens", prefix)
    details = usage.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    if thinking is not None and (type(thinking) is not int or thinking < 0):
        thinking = token_count(thinking, f"{prefix}.output_tokens_details")
    total_input = None if raw_input is None else raw_input + _total(read, w5, w1)
    return {
        "input_tokens": total_input,
        "cache_read_tokens": read,
        "cache_write_5m_tokens": w5,
        "cache_write_1h_tokens": w1,
        "output_tokens": output,
        "reasoning_tokens": thinking,
    }


def gemini_usage(usage: Mapping[str, Any], prefix: str = "usageMetadata") -> Tokens:
    """Gemini usageMetadata (camelCase REST or snake_case SDK): thoughts and tool-use prompt are ON TOP."""

    def pick(camel: str, snake: str) -> int | None:
        key = camel if camel in usage else snake
        return token_count(usage.get(key), f"{prefix}.{key}")

    prompt = pick("promptTokenCount", "prompt_token_count")
    tool_prompt = pick("toolUsePromptTokenCount", "tool_use_prompt_token_count")
    cached = pick("cachedContentTokenCount", "cached_content_token_count")
    candidates = pick("candidatesTokenCount", "candidates_token_count")
    thoughts = pick("thoughtsTokenCount", "thoughts_token_count")
    raw_input = None if prompt is None else prompt + (tool_prompt or 0)
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return inclusive(raw_input, cached, None, None, output, thoughts)


def is_anthropic_usage(usage: Mapping[str, Any]) -> bool:
    return "input_tokens" in usage and (
        "cache_creation_input_tokens" in usage or "cache_read_input_tokens" in usage or "cache_creation" in usage
    )


def is_gemini_usage(usage: Mapping[str, Any]) -> bool:
    return any(k in usage for k in ("promptTokenCount", "prompt_token_count", "candidatesTokenCount"))
