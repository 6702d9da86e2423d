"""`llm-audit export-eval`: a stratified sample of one feature's real requests as a provider batch file.

The team replays the sample on the candidate model at batch prices and compares the answers with the
original outputs (written side by side) before switching models. Prompts are rebuilt from the canonical
`prompt_text`, whose layout (auditor/ingest/shape.py) is one section per part in cache order:

    [tools]\\n<compact JSON>\\n   [system]\\n<text>\\n   [<role>]\\n<text>\\n  (one per message)

Parsing splits on lines that are exactly a known header. A message whose text itself contains such a
line would split in two; every parse is therefore checked against the logged `messages_count`,
`system_text` and `last_user_text`, and a row that disagrees is skipped (counted), never exported wrong.
Rows whose text holds non-text parts (images, files, tool calls rendered as JSON) are skipped too: their
text rendering cannot be replayed as the original request.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from auditor.prices import PriceBook
from auditor.redact import mask_secrets

OPENAI_URL = "/v1/chat/completions"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when the original request logged none
STRATA = 5  # input-length strata (quintiles of input tokens)
BATCH_FORMATS = {"openai": "openai", "azure": "openai", "anthropic": "anthropic"}

_HEADER = re.compile(r"\[(tools|system|developer|user|assistant|model|tool|function)\]")
_SYSTEM_ROLES = ("system", "developer")
_NON_TEXT_TYPES = {
    "image", "image_url", "input_image", "input_audio", "input_file", "file", "document",
    "tool_use", "tool_result", "function_call", "function_call_output", "thinking", "redacted_thinking",
}  # fmt: skip


class EvalExportError(ValueError):
    """The sample cannot be built (unknown model, no provider batch format, no eligible request)."""


@dataclass(frozen=True)
class ParsedPrompt:
    tools: list[Any] | None
    sections: tuple[tuple[str, str], ...]  # (role, text) in order, system sections included


@dataclass
class EvalExport:
    lines: list[dict[str, Any]]  # batch input lines
    originals: list[dict[str, Any]]  # one per line, same order, joined on custom_id
    batch_format: str  # openai | anthropic
    eligible: int  # requests of the feature with a prompt and a successful outcome
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> requests not usable


# ----------------------------------------------------------------------------------------- prompt parsing


def parse_prompt(prompt_text: str) -> ParsedPrompt | None:
    """Sections of a rendered prompt, or None when the text is not in the rendered layout."""
    if not prompt_text.endswith("\n"):
        return None
    lines = prompt_text[:-1].split("\n")
    if not _HEADER.fullmatch(lines[0]):
        return None
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        header = _HEADER.fullmatch(line)
        if header:
            sections.append((header.group(1), []))
        else:
            sections[-1][1].append(line)
    tools: list[Any] | None = None
    if sections[0][0] == "tools":
        try:
            loaded = json.loads("\n".join(sections[0][1]))
        except json.JSONDecodeError:
            return None
        if not isinstance(loaded, list):
            return None
        tools = loaded
        sections = sections[1:]
    if any(role == "tools" for role, _ in sections):
        return None
    return ParsedPrompt(tools=tools, sections=tuple((role, "\n".join(body)) for role, body in sections))


def render_prompt(parsed: ParsedPrompt) -> str:
    """The inverse of parse_prompt: the canonical rendering of tools and sections."""
    parts = []
    if parsed.tools is not None:
        parts.append("[tools]\n" + json.dumps(parsed.tools, ensure_ascii=False, separators=(",", ":")) + "\n")
    parts.extend(f"[{role}]\n{text}\n" for role, text in parsed.sections)
    return "".join(parts)


def _consistent(parsed: ParsedPrompt, row: dict[str, Any]) -> bool:
    """Does the parse agree with what ingest logged next to the rendering? (detects split messages)"""
    sections = parsed.sections
    leading_system = 0
    for role, _ in sections:
        if role not in _SYSTEM_ROLES:
            break
        leading_system += 1
    count = row.get("messages_count")
    # OpenAI chat counts leading system messages as messages; Anthropic/Responses/Gemini render one
    # [system] section from a separate field that is not a message.
    if count is not None and count != len(sections) and not (leading_system == 1 and count == len(sections) - 1):
        return False
    system = row.get("system_text")
    if system is not None and "\n".join(text for _, text in sections[:leading_system]) != system:
        return False
    users = [text for role, text in sections if role == "user"]
    last_user = row.get("last_user_text")
    return last_user is None or (bool(users) and users[-1] == last_user)


def _non_text(parsed: ParsedPrompt) -> bool:
    """A content line that is a rendered non-text part (image, file, tool call) as compact JSON."""
    for _, text in parsed.sections:
        for line in text.split("\n"):
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and (obj.get("type") in _NON_TEXT_TYPES or "function" in obj):
                return True
    return False


# ----------------------------------------------------------------------------------------- batch lines


def _openai_line(custom_id: str, model: str, parsed: ParsedPrompt, row: dict[str, Any], tools: bool) -> dict[str, Any]:
    roles = {"model": "assistant"}  # Gemini names the assistant "model"
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": roles.get(role, role), "content": text} for role, text in parsed.sections],
    }
    if row.get("max_tokens") is not None:
        body["max_completion_tokens"] = row["max_tokens"]  # max_tokens is deprecated and refused by o-series
    if row.get("temperature") is not None:
        body["temperature"] = min(float(row["temperature"]), 2.0)
    if row.get("response_format") == "json_object":
        body["response_format"] = {"type": "json_object"}
    if tools and parsed.tools:
        body["tools"] = parsed.tools
    return {"custom_id": custom_id, "method": "POST", "url": OPENAI_URL, "body": body}


def _anthropic_line(
    custom_id: str, model: str, parsed: ParsedPrompt, row: dict[str, Any], tools: bool
) -> dict[str, Any]:
    system = [text for role, text in parsed.sections if role in _SYSTEM_ROLES]
    roles = {"model": "assistant"}
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": row.get("max_tokens") or DEFAULT_MAX_TOKENS,
        "messages": [
            {"role": roles.get(role, role), "content": text}
            for role, text in parsed.sections
            if role not in _SYSTEM_ROLES
        ],
    }
    if system:
        params["system"] = "\n".join(system)  # the same join ingest uses for leading system messages
    if row.get("temperature") is not None:
        params["temperature"] = min(float(row["temperature"]), 1.0)  # Anthropic accepts 0..1
    if tools and parsed.tools:
        params["tools"] = parsed.tools
    return {"custom_id": custom_id, "params": params}


def _mask(parsed: ParsedPrompt) -> ParsedPrompt:
    return ParsedPrompt(parsed.tools, tuple((role, mask_secrets(text)) for role, text in parsed.sections))


# ----------------------------------------------------------------------------------------- sampling


def _strata(rows: pl.DataFrame) -> pl.DataFrame:
    """Input-length strata by rank (equal-sized quintiles; ties broken by row_id)."""
    n = rows.height
    k = min(STRATA, n)
    length = pl.coalesce(pl.col("input_tokens"), pl.col("prompt_text").str.len_chars() // 4)
    return (
        rows.with_columns(length.alias("_len"))
        .sort("_len", "row_id")
        .with_columns((pl.int_range(pl.len()) * k // n).alias("stratum"))
        .drop("_len")
    )


def _quotas(sizes: list[int], total: int) -> list[int]:
    """Split `total` over strata in proportion to their sizes (largest remainder, ties to lower strata)."""
    n = sum(sizes)
    exact = [total * s / n for s in sizes]
    quotas = [int(e) for e in exact]
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def build_eval(
    frame: pl.DataFrame,
    *,
    feature: str,
    to_model: str,
    prices: PriceBook,
    sample_size: int = 100,
    seed: int = 0,
    full_text: bool = False,
) -> EvalExport:
    """The sample as batch lines for `to_model` plus the originals, with counts of what was skipped."""
    if sample_size < 1:
        raise EvalExportError("sample size must be at least 1 (50-200 requests per feature is the usual range)")
    model_id = prices.resolve(to_model) or to_model
    on = frame.select(pl.col("price_date").max()).item() if "price_date" in frame.columns else None
    try:
        target = prices.model(model_id, on if isinstance(on, date) else date.today())
    except (KeyError, LookupError, ValueError) as exc:
        raise EvalExportError(f"unknown model {to_model!r}: not in the price tables") from exc
    batch_format = BATCH_FORMATS.get(target.provider)
    if batch_format is None:
        raise EvalExportError(
            f"no batch input format for provider {target.provider!r}; export-eval writes OpenAI and Anthropic batches"
        )
    ok = pl.col("status").is_null() | (pl.col("status") == "ok")
    rows = frame.filter((pl.col("feature") == feature) & pl.col("prompt_text").is_not_null() & ok)
    if rows.is_empty():
        raise EvalExportError(f"feature {feature!r} has no successful request with a logged prompt")
    rows = _strata(rows)
    skipped: Counter[str] = Counter()
    chosen: list[tuple[dict[str, Any], ParsedPrompt]] = []
    strata = rows.partition_by("stratum", as_dict=True, maintain_order=True)
    keys = sorted(strata, key=lambda k: int(k[0]))
    quotas = _quotas([strata[k].height for k in keys], min(sample_size, rows.height))
    rng = random.Random(seed)
    for key, quota in zip(keys, quotas, strict=True):
        candidates = strata[key].to_dicts()
        rng.shuffle(candidates)  # seeded: same sample for the same input and seed
        taken = 0
        for row in candidates:
            if taken == quota:
                break
            prepared = _prepare(row, batch_format, target.provider)
            if isinstance(prepared, str):
                skipped[prepared] += 1
                continue
            chosen.append((row, prepared))
            taken += 1
    if not chosen:
        raise EvalExportError(f"no request of feature {feature!r} could be rebuilt: {dict(skipped)}")
    chosen.sort(key=lambda item: (item[0]["stratum"], item[0]["row_id"]))
    lines, originals = _lines(
        rows.drop("stratum"), chosen, to_model, model_id, target.provider, batch_format, prices, full_text
    )
    return EvalExport(lines, originals, batch_format, rows.height, dict(sorted(skipped.items())))


def _prepare(row: dict[str, Any], batch_format: str, to_provider: str) -> str | ParsedPrompt:
    """The parsed prompt, or why this request cannot be replayed."""
    parsed = parse_prompt(row["prompt_text"])
    if parsed is None:
        return "prompt_text not in the rendered layout"
    if not _consistent(parsed, row):
        return "ambiguous rendering (a message contains a role header line)"
    if any(role in ("tool", "function") for role, _ in parsed.sections) or _non_text(parsed):
        return "non-text content (tool results, tool calls, images or files)"
    if parsed.tools and row.get("provider") != to_provider:
        return "tool definitions in another provider's format"
    if batch_format == "anthropic" and all(role in _SYSTEM_ROLES for role, _ in parsed.sections):
        return "no user message"
    return parsed


def _lines(
    rows: pl.DataFrame,
    chosen: list[tuple[dict[str, Any], ParsedPrompt]],
    to_model: str,
    model_id: str,
    to_provider: str,
    batch_format: str,
    prices: PriceBook,
    full_text: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ids = [row["row_id"] for row, _ in chosen]
    # the chosen rows with their original dtypes, in chosen order, repriced on the candidate
    sample = pl.DataFrame({"row_id": ids}, schema={"row_id": pl.Int64}).join(
        rows, on="row_id", how="left", maintain_order="left"
    )
    swapped = sample.with_columns(pl.lit(model_id, dtype=pl.String).alias("model_id"))
    candidate_cost = prices.cost(swapped).to_list()
    lines, originals = [], []
    for (row, parsed), cand_cost in zip(chosen, candidate_cost, strict=True):
        custom_id = f"la-{row['row_id']}"  # Anthropic: 1-64 chars of [A-Za-z0-9_-]
        prompt = parsed if full_text else _mask(parsed)
        tools = row.get("provider") == to_provider
        build = _openai_line if batch_format == "openai" else _anthropic_line
        lines.append(build(custom_id, to_model, prompt, row, tools))
        output = row.get("output_text")
        notes = []
        if row.get("response_format") == "json_schema":
            notes.append("response_format json_schema not replayed: the schema is not in the log")
        if batch_format == "anthropic" and row.get("max_tokens") is None:
            notes.append(f"max_tokens not logged; {DEFAULT_MAX_TOKENS} used")
        originals.append(
            {
                "custom_id": custom_id,
                "row_id": row["row_id"],
                "request_id": row.get("request_id"),
                "source": f"{row.get('source_file')}:{row.get('source_line')}",
                "feature": row.get("feature"),
                "stratum": row["stratum"],
                "original_model": row.get("model"),
                "candidate_model": to_model,
                "input_tokens": row.get("input_tokens"),
                "output_tokens": row.get("output_tokens"),
                "finish_reason": row.get("finish_reason"),
                "original_output": output if full_text or output is None else mask_secrets(output),
                "cost_usd": _money(row.get("cost_usd")),
                "candidate_cost_usd": _money(cand_cost),  # list price, same token counts
                "redacted": not full_text,
                "notes": notes,
            }
        )
    return lines, originals


def _money(value: Any) -> float | None:
    return None if value is None else float(value)


def export_eval(
    frame: pl.DataFrame,
    *,
    feature: str,
    to_model: str,
    prices: PriceBook,
    sample_size: int = 100,
    seed: int = 0,
    full_text: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(batch input lines, originals side by side); see build_eval for the skip counts."""
    export = build_eval(
        frame, feature=feature, to_model=to_model, prices=prices, sample_size=sample_size, seed=seed,
        full_text=full_text,
    )  # fmt: skip
    return export.lines, export.originals


def originals_path(path: Path) -> Path:
    """eval.jsonl -> eval.originals.jsonl (next to it)."""
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(stem + ".originals.jsonl")


def write_eval(path: Path, lines: list[dict[str, Any]], originals: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write the batch input file and the originals next to it; returns both paths."""
    side = originals_path(path)
    for target, records in ((path, lines), (side, originals)):
        with target.open("w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path, side
