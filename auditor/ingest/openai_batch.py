"""OpenAI Batch API input and output files, joined by `custom_id`.

Output lines ({id, custom_id, response: {status_code, request_id, body}, error}) are the billed calls, at batch
prices; they are not in input order. Input lines ({custom_id, method, url, body}) only add the request shape
(prompt, max_tokens, ...) to the matching output line; alone they are not billed and are counted as ignored.
Outputs are held until the end of the run because the input file may come after the output file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.ingest import shape
from auditor.ingest.context import DEFERRED, Parsed, RecordContext, Row
from auditor.ingest.envelope import api_row, user_fallback
from auditor.ingest.outcome import body_error, outcome
from auditor.ingest.values import RecordError, as_dict, get, text

NAME = "openai_batch"
DESCRIPTION = "OpenAI Batch API output files (+ input files, joined by custom_id); billed at batch prices"


@dataclass
class _Input:
    fields: Row
    attribution: Row
    model: str | None
    duplicate: bool = False


@dataclass
class BatchJoin:
    inputs: dict[str, _Input] = field(default_factory=dict)
    input_count: int = 0
    outputs: list[tuple[str | None, Row]] = field(default_factory=list)


def is_input(obj: Mapping[str, Any]) -> bool:
    return "custom_id" in obj and isinstance(obj.get("body"), dict) and ("url" in obj or "method" in obj)


def is_output(obj: Mapping[str, Any]) -> bool:
    if "custom_id" not in obj or "result" in obj:
        return False
    response = obj.get("response")
    return (isinstance(response, dict) and ("body" in response or "status_code" in response)) or (
        "response" in obj and response is None and "error" in obj
    )


def _state(ctx: RecordContext) -> BatchJoin:
    state = ctx.state.setdefault(NAME, BatchJoin())
    assert isinstance(state, BatchJoin)
    return state


def parse(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    if is_input(obj):
        return _parse_input(obj, ctx)
    if is_output(obj):
        return _parse_output(obj, ctx)
    raise RecordError("not an OpenAI Batch input line ({custom_id, method, url, body}) or output line")


def _parse_input(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    custom_id = text(obj.get("custom_id"))
    if custom_id is None:
        raise RecordError("custom_id is missing or empty")
    body = dict(obj["body"])
    fields = shape.request_fields(body, shape.request_kind(body))
    meta = as_dict(body.get("metadata"))
    attribution = shape.attribute([meta], [meta], ctx.attribution, {"user": user_fallback(body)})
    state = _state(ctx)
    state.input_count += 1
    if custom_id in state.inputs:
        # Two batches reusing a custom_id: joining either would be a guess, so join neither.
        state.inputs[custom_id].duplicate = True
    else:
        state.inputs[custom_id] = _Input(fields, attribution, text(body.get("model")))
    return DEFERRED


def _parse_output(obj: Mapping[str, Any], ctx: RecordContext) -> Parsed:
    response = obj.get("response") if isinstance(obj.get("response"), dict) else None
    body = as_dict(get(response, "body"))
    status = get(response, "status_code")
    error = obj.get("error") or body_error(body)
    row = api_row(ctx, NAME, None, body if body_error(body) is None else None, prefix="response.body")
    row.update(outcome(status, error, failed=response is None))
    row["request_id"] = text(get(response, "request_id")) or text(obj.get("custom_id")) or text(obj.get("id"))
    row["request_id"] = row["request_id"] or ctx.fallback_id
    row["batch"] = True
    row["service_tier"] = "batch"
    _state(ctx).outputs.append((text(obj.get("custom_id")), row))
    return DEFERRED


def finish(state: dict[str, Any]) -> tuple[list[Row], dict[str, int]]:
    join = state.get(NAME)
    if not isinstance(join, BatchJoin):
        return [], {}
    rows: list[Row] = []
    matched: set[str] = set()
    for custom_id, row in join.outputs:
        source = join.inputs.get(custom_id) if custom_id else None
        if source is not None and not source.duplicate:
            matched.add(str(custom_id))
            for column in shape.REQUEST_COLUMNS:
                row[column] = source.fields.get(column)
            for column, value in source.attribution.items():
                row[column] = row.get(column) or value
            row["model"] = row.get("model") or source.model
            if row.get("provider") is None and source.model:
                row["provider"] = "openai"
        row["provider"] = row.get("provider") or "openai"
        rows.append(row)
    ignored: dict[str, int] = {}
    joined = len(matched)
    unmatched = join.input_count - joined
    if joined:
        ignored["openai_batch_input_joined"] = joined
    if unmatched:
        ignored["openai_batch_input_unmatched"] = unmatched
    return rows, ignored
