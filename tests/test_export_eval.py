"""export-eval: prompts rebuilt from ingest's own rendering (auditor.ingest.shape) must equal the original
request bodies, and every line must carry exactly the fields the provider's batch API documents."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest

from auditor.export_eval import (
    EvalExportError,
    ParsedPrompt,
    build_eval,
    export_eval,
    parse_prompt,
    render_prompt,
    write_eval,
)
from auditor.ingest.shape import request_fields
from auditor.prices import ModelPrice
from auditor.schema import MONEY, rows_to_frame
from tests.helpers import at, model_price

CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # Anthropic's rule; OpenAI only needs uniqueness


class FakeBook:
    models: ClassVar[dict[str, ModelPrice]] = {
        m.model_id: m
        for m in (
            model_price("gpt-4o", "openai", "2.5", "10"),
            model_price("gpt-4o-mini", "openai", "0.15", "0.6"),
            model_price("claude-opus-4", "anthropic", "15", "75"),
            model_price("claude-haiku-4-5", "anthropic", "1", "5"),
            model_price("gemini-flash", "google", "0.1", "0.4"),
        )
    }

    def resolve(self, model: str, provider: str | None = None) -> str | None:
        return model if model in self.models else None

    def model(self, model_id: str, on: date) -> ModelPrice:
        return self.models[model_id]

    def cost(self, frame: pl.DataFrame, price_date: date | None = None) -> pl.Series:
        values = []
        for model_id, inp, out in frame.select("model_id", "input_tokens", "output_tokens").iter_rows():
            m = self.models[model_id]
            values.append((inp * m.input_mtok + out * m.output_mtok) / Decimal(1_000_000))
        return pl.Series("cost_usd", values, dtype=MONEY)


BOOK: Any = FakeBook()


def frame_of(requests: list[tuple[str, dict[str, Any]]], **extra: Any) -> pl.DataFrame:
    """(provider, request body) -> canonical rows rendered by ingest's request_fields."""
    rows = []
    for i, (provider, body) in enumerate(requests):
        kind = "anthropic" if provider == "anthropic" else "openai_chat"
        rows.append(
            {
                **request_fields(body, kind),
                "timestamp": at(i),
                "provider": provider,
                "model": body["model"],
                "feature": "tickets",
                "status": "ok",
                "source_file": "logs.jsonl",
                "source_line": i + 1,
                "input_tokens": 100 + i,
                "output_tokens": 3,
                "output_text": f"billing {i}",
                **extra,
            }
        )
    frame = rows_to_frame(rows).with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    frame = frame.with_columns(pl.col("model").alias("model_id"), pl.lit(date(2026, 10, 1)).alias("price_date"))
    return frame.with_columns(BOOK.cost(frame).alias("cost_usd"))


OPENAI_BODY = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "Classify the ticket. Respond with only the label.\n\nLabels: billing, bug"},
        {"role": "user", "content": "I was charged twice.\nOrder 1234, see attached"},
        {"role": "assistant", "content": "billing"},
        {"role": "user", "content": "  And again today (trailing newline)\n"},
    ],
    "max_tokens": 5,
    "temperature": 0,
}
ANTHROPIC_BODY = {
    "model": "claude-opus-4",
    "system": "You label support tickets.",
    "messages": [{"role": "user", "content": "Where is my refund?"}],
    "max_tokens": 10,
    "temperature": 0.2,
}


def check_openai_line(line: dict[str, Any]) -> None:
    """OpenAI Batch API input line: custom_id, method POST, url, body (a chat completions request)."""
    assert set(line) == {"custom_id", "method", "url", "body"}
    assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
    assert isinstance(line["custom_id"], str) and CUSTOM_ID.fullmatch(line["custom_id"])
    body = line["body"]
    assert set(body) <= {"model", "messages", "max_completion_tokens", "temperature", "response_format", "tools"}
    assert isinstance(body["model"], str) and body["messages"]
    for message in body["messages"]:
        assert set(message) == {"role", "content"}
        assert message["role"] in {"system", "developer", "user", "assistant"}
        assert isinstance(message["content"], str)


def check_anthropic_line(line: dict[str, Any]) -> None:
    """Anthropic Message Batches request: custom_id (1-64 of [A-Za-z0-9_-]) and params (model, max_tokens, ...)."""
    assert set(line) == {"custom_id", "params"}
    assert CUSTOM_ID.fullmatch(line["custom_id"])
    params = line["params"]
    assert set(params) <= {"model", "max_tokens", "messages", "system", "temperature", "tools"}
    assert isinstance(params["max_tokens"], int) and params["max_tokens"] >= 1
    assert params["messages"] and all(m["role"] in {"user", "assistant"} for m in params["messages"])
    assert "system" not in params or isinstance(params["system"], str)
    assert 0.0 <= params.get("temperature", 0.0) <= 1.0


def test_openai_sample_reproduces_original_messages_exactly() -> None:
    frame = frame_of([("openai", OPENAI_BODY)])
    lines, originals = export_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, full_text=True)
    assert len(lines) == 1
    check_openai_line(lines[0])
    body = lines[0]["body"]
    assert body["messages"] == OPENAI_BODY["messages"]
    assert body["model"] == "gpt-4o-mini"
    assert body["max_completion_tokens"] == 5 and body["temperature"] == 0.0
    original = originals[0]
    assert original["custom_id"] == lines[0]["custom_id"] == "la-0"
    assert original["original_model"] == "gpt-4o" and original["original_output"] == "billing 0"
    # 100 in, 3 out: gpt-4o 0.00025 + 0.00003 = 0.00028; gpt-4o-mini 0.000015 + 0.0000018 = 0.0000168
    assert original["cost_usd"] == pytest.approx(0.00028)
    assert original["candidate_cost_usd"] == pytest.approx(0.0000168)


def test_anthropic_sample_reproduces_system_and_messages() -> None:
    frame = frame_of([("anthropic", ANTHROPIC_BODY)])
    lines, _ = export_eval(frame, feature="tickets", to_model="claude-haiku-4-5", prices=BOOK, full_text=True)
    check_anthropic_line(lines[0])
    params = lines[0]["params"]
    assert params["system"] == ANTHROPIC_BODY["system"]
    assert params["messages"] == ANTHROPIC_BODY["messages"]
    assert params["max_tokens"] == 10 and params["temperature"] == 0.2


def test_openai_prompt_to_anthropic_candidate_moves_system_out_of_messages() -> None:
    body = {**OPENAI_BODY, "max_tokens": None}
    frame = frame_of([("openai", body)])
    export = build_eval(frame, feature="tickets", to_model="claude-haiku-4-5", prices=BOOK, full_text=True)
    check_anthropic_line(export.lines[0])
    params = export.lines[0]["params"]
    assert params["system"] == OPENAI_BODY["messages"][0]["content"]
    assert params["messages"] == OPENAI_BODY["messages"][1:]
    assert params["max_tokens"] == 4096
    assert export.originals[0]["notes"] == ["max_tokens not logged; 4096 used"]


def test_tools_are_replayed_for_the_same_provider_only() -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    frame = frame_of([("openai", {**OPENAI_BODY, "tools": tools})])
    lines, _ = export_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, full_text=True)
    assert lines[0]["body"]["tools"] == tools
    with pytest.raises(EvalExportError, match="another provider's format"):
        build_eval(frame, feature="tickets", to_model="claude-haiku-4-5", prices=BOOK)


def test_message_containing_a_header_line_is_skipped_not_exported_wrong() -> None:
    tricky = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Quote:\n[assistant]\nhello"}, {"role": "user", "content": "ok?"}],
    }
    frame = frame_of([("openai", tricky), ("openai", OPENAI_BODY)])
    export = build_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, full_text=True)
    assert [line["custom_id"] for line in export.lines] == ["la-1"]
    assert export.skipped == {"ambiguous rendering (a message contains a role header line)": 1}
    assert export.eligible == 2


def test_default_export_masks_secrets_in_prompts_and_outputs() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Refund jane.doe@example.com please"}]}
    frame = frame_of([("openai", body)], output_text="Mail sent to jane.doe@example.com")
    lines, originals = export_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK)
    assert lines[0]["body"]["messages"][0]["content"] == "Refund [email] please"
    assert originals[0]["original_output"] == "Mail sent to [email]"
    assert originals[0]["redacted"] is True


def test_stratified_sample_covers_input_lengths_and_is_seeded() -> None:
    frame = frame_of([("openai", OPENAI_BODY)] * 300)  # input_tokens 100..399
    export = build_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, sample_size=100, seed=7)
    strata = [o["stratum"] for o in export.originals]
    assert [strata.count(s) for s in range(5)] == [20, 20, 20, 20, 20]  # 300 rows -> quintiles of 60
    # stratum s holds inputs 100+60s .. 159+60s
    assert all(100 + 60 * o["stratum"] <= o["input_tokens"] < 160 + 60 * o["stratum"] for o in export.originals)
    ids = [line["custom_id"] for line in export.lines]
    assert len(set(ids)) == 100
    again = build_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, sample_size=100, seed=7)
    other = build_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, sample_size=100, seed=8)
    assert [line["custom_id"] for line in again.lines] == ids
    assert [line["custom_id"] for line in other.lines] != ids


def test_small_feature_exports_every_request() -> None:
    frame = frame_of([("openai", OPENAI_BODY)] * 30)
    lines, _ = export_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK, sample_size=100)
    assert len(lines) == 30


def test_errors_are_explained() -> None:
    frame = frame_of([("openai", OPENAI_BODY)])
    with pytest.raises(EvalExportError, match="unknown model 'gpt-9'"):
        build_eval(frame, feature="tickets", to_model="gpt-9", prices=BOOK)
    with pytest.raises(EvalExportError, match="no batch input format for provider 'google'"):
        build_eval(frame, feature="tickets", to_model="gemini-flash", prices=BOOK)
    with pytest.raises(EvalExportError, match="feature 'search' has no successful request"):
        build_eval(frame, feature="search", to_model="gpt-4o-mini", prices=BOOK)


def test_write_eval_writes_batch_file_and_originals(tmp_path: Path) -> None:
    frame = frame_of([("openai", OPENAI_BODY)] * 3)
    lines, originals = export_eval(frame, feature="tickets", to_model="gpt-4o-mini", prices=BOOK)
    batch, side = write_eval(tmp_path / "eval.jsonl", lines, originals)
    assert side == tmp_path / "eval.originals.jsonl"
    parsed = [json.loads(line) for line in batch.read_text(encoding="utf-8").splitlines()]
    assert parsed == lines
    for line in parsed:
        check_openai_line(line)
    joined = {o["custom_id"] for o in map(json.loads, side.read_text(encoding="utf-8").splitlines())}
    assert joined == {line["custom_id"] for line in parsed}


def test_parse_and_render_are_inverse() -> None:
    text = '[tools]\n[{"name":"a"}]\n[system]\nrules\n\n[user]\n\n[assistant]\nx\ny\n'
    parsed = parse_prompt(text)
    assert parsed == ParsedPrompt(
        tools=[{"name": "a"}], sections=(("system", "rules\n"), ("user", ""), ("assistant", "x\ny"))
    )
    assert render_prompt(parsed) == text
    assert parse_prompt("no header\n") is None
    assert parse_prompt("[user]\nno trailing newline") is None
