"""Seeded generator of realistic LLM request logs at any size, streamed to disk in constant memory.

    python benchmarks/generate.py --requests 1000000 --out benchmarks/data/n1000000 --format both
    python benchmarks/generate.py --requests 1000000 --out benchmarks/data/n1000000-split8 --files 8
    python benchmarks/generate.py --requests 10000000 --out benchmarks/data/n10000000 --files 10 --format jsonl \
        --compress zstd

Writes OUT/jsonl/part-KK-of-NN.jsonl (request/response envelopes, full prompts, ~5 KB a line) and/or
OUT/parquet/part-KK-of-NN.parquet (the same requests as llm-audit canonical rows, auditor.schema.INGEST_SCHEMA,
made by llm-audit's own envelope parser so both formats describe identical requests).

Traffic: 30 features, each with its own model, API shape (OpenAI Chat Completions, OpenAI Responses, Anthropic
Messages), system prompt (~150 to ~3,000 tokens, shared by every request of the feature), output cap and
conversation length. Conversations resend their whole history every turn. About 3 % of attempts fail (429/5xx)
and are retried a few seconds later. Usage is consistent with the text at ~4 characters per token, with provider
prompt caching where the provider would apply it (Anthropic features that mark their system prompt; OpenAI
prompts over 1,024 tokens whose prefix was seen within 5 minutes).

Only a bounded pool of open conversations is held in memory, so any N streams; the same seed gives the same
requests whatever --files is (a request's file is its position in time: rotated logs), with strictly increasing
timestamps, so split and unsplit logs sort identically.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import TextSource, prose_sentences

T0 = datetime(2026, 10, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0_US = (T0 - EPOCH) // timedelta(microseconds=1)
OPEN_SESSIONS = 200  # conversations in flight at any time (bounds memory)
ERROR_RATE = 0.03
CACHE_TTL_US = 300_000_000
CHARS_PER_TOKEN = 4
PARQUET_ROWS = 20_000  # canonical rows per Parquet row group

# (provider, requested model, logged response model, API shape)
MODELS = [
    ("openai", "gpt-4.1", "gpt-4.1-2025-04-14", "chat"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "chat"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chat"),
    ("openai", "gpt-5-mini", "gpt-5-mini-2025-08-07", "responses"),
    ("openai", "gpt-4.1", "gpt-4.1-2025-04-14", "responses"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "messages"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "messages"),
    ("anthropic", "claude-opus-4-1", "claude-opus-4-1-20250805", "messages"),
]
FEATURE_NAMES = [
    "support_chat",
    "ticket_triage",
    "email_draft",
    "doc_summary",
    "code_review",
    "sql_assistant",
    "search_rerank",
    "invoice_extract",
    "contract_qa",
    "onboarding_bot",
    "release_notes",
    "sentiment_tag",
    "translation",
    "meeting_notes",
    "sales_outreach",
    "kb_answer",
    "log_explainer",
    "policy_check",
    "product_copy",
    "faq_bot",
    "churn_signals",
    "spam_filter",
    "title_suggest",
    "report_writer",
    "agent_planner",
    "data_cleaner",
    "hr_helpdesk",
    "legal_redline",
    "survey_coder",
    "changelog_bot",
]
TENANTS = ["acme-corp", "globex", "initech", "umbrella-health", "stark-logistics", "wayne-media"]
SYSTEM_CHARS = [500] * 14 + [2_000] * 12 + [10_000] * 4  # ~125, ~500 and ~2,500 tokens
ERRORS = [
    (429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    (500, "api_error", "server_error", "The server had an error while processing your request."),
    (529, "overloaded_error", "server_error", "The service is temporarily overloaded."),
]


@dataclass
class Feature:
    name: str
    provider: str
    model: str
    response_model: str
    api: str
    system: str
    max_turns: int
    user_chars: int
    answer_chars: int
    max_tokens: int
    cache_marked: bool  # Anthropic: system prompt carries cache_control
    last_seen_us: int = -(10**15)


@dataclass(order=True)
class Session:
    next_us: int
    sid: int
    feature: Feature = field(compare=False)
    tenant: str = field(compare=False)
    user: str = field(compare=False)
    turns_left: int = field(compare=False)
    history: list[tuple[str, str]] = field(default_factory=list, compare=False)
    pending: str | None = field(default=None, compare=False)  # user message of a failed attempt, to retry


def make_features(rng: random.Random, text: TextSource) -> list[Feature]:
    sizes = SYSTEM_CHARS[:]
    rng.shuffle(sizes)
    features = []
    for i, name in enumerate(FEATURE_NAMES):
        provider, model, response_model, api = MODELS[rng.randrange(len(MODELS))]
        chat = i % 3 == 0  # a third are conversational; the rest are mostly single-shot tasks
        system = f"You are the {name.replace('_', ' ')} assistant. " + text.text(sizes[i])
        features.append(
            Feature(
                name=name,
                provider=provider,
                model=model,
                response_model=response_model,
                api=api,
                system=system,
                max_turns=rng.randint(3, 6) if chat else rng.randint(1, 2),
                user_chars=rng.choice([150, 300, 500, 900]),
                answer_chars=rng.choice([100, 250, 600, 1_000]),
                max_tokens=rng.choice([256, 512, 1_024, 4_096, 16_384]),
                cache_marked=provider == "anthropic" and rng.random() < 0.5,
            )
        )
    return features


def iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds").replace("+00:00", "Z")


def tokens(chars: int) -> int:
    return max(1, chars // CHARS_PER_TOKEN)


class Generator:
    """Yields envelope dicts in time order; holds only OPEN_SESSIONS conversations."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.text = TextSource(self.rng, prose_sentences())
        self.seed = seed
        self.features = make_features(self.rng, self.text)
        self.weights = [self.rng.uniform(0.2, 3.0) for _ in self.features]
        self.next_sid = 0
        self.last_us = T0_US
        self.heap: list[Session] = [self._session(T0_US) for _ in range(OPEN_SESSIONS)]
        heapq.heapify(self.heap)

    def _session(self, after_us: int) -> Session:
        rng = self.rng
        feature = rng.choices(self.features, self.weights)[0]
        tenant = TENANTS[min(int(rng.expovariate(0.6)), len(TENANTS) - 1)]  # a few big tenants
        self.next_sid += 1
        return Session(
            next_us=after_us + int(rng.expovariate(1 / 40.0) * 1e6),
            sid=self.next_sid,
            feature=feature,
            tenant=tenant,
            user=f"u_{tenant}_{rng.randrange(300):03d}",
            turns_left=rng.randint(1, feature.max_turns),
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        index = 0
        while True:
            session = heapq.heappop(self.heap)
            now = self.last_us = max(session.next_us, self.last_us + 1)  # strictly increasing timestamps
            record = self._attempt(session, now, index)
            index += 1
            if session.pending is not None:  # failed: retry soon
                session.next_us = now + int(self.rng.uniform(0.5, 4.0) * 1e6)
                heapq.heappush(self.heap, session)
            elif session.turns_left > 0:
                long_pause = self.rng.random() < 0.1  # one gap in ten outlives a 5-minute cache
                session.next_us = now + int(self.rng.expovariate(1 / 40.0) * (12 if long_pause else 1) * 1e6)
                heapq.heappush(self.heap, session)
            else:
                heapq.heappush(self.heap, self._session(now))
            yield record

    def _attempt(self, session: Session, now: int, index: int) -> dict[str, Any]:
        rng, feature = self.rng, session.feature
        user_text = session.pending or self.text.text(int(feature.user_chars * rng.uniform(0.3, 1.7)))
        messages = [*session.history, ("user", user_text)]
        request = self._request(feature, messages, session.user)
        envelope: dict[str, Any] = {
            "timestamp": iso(now),
            "request": request,
            "latency_ms": None,
            "metadata": {
                "feature": feature.name,
                "tenant": session.tenant,
                "user": session.user,
                "session_id": f"s{self.seed}-{session.sid:08d}",
            },
        }
        if rng.random() < ERROR_RATE:
            status, anthropic_type, openai_code, message = ERRORS[rng.randrange(len(ERRORS))]
            error = (
                {"type": "error", "error": {"type": anthropic_type, "message": message}}
                if feature.provider == "anthropic"
                else {"error": {"message": message, "type": openai_code, "param": None, "code": openai_code}}
            )
            envelope.update(
                request_id=f"req_{self.seed}_{index:010d}",
                status=status,
                error=error,
                response=None,
                latency_ms=round(rng.uniform(50, 900), 1),
            )
            session.pending = user_text
            return envelope
        session.pending = None
        answer = self.text.text(int(feature.answer_chars * rng.uniform(0.2, 1.8)))
        finish = "stop"
        if tokens(len(answer)) > feature.max_tokens:
            answer, finish = answer[: feature.max_tokens * CHARS_PER_TOKEN], "length"
        prompt_chars = len(feature.system) + sum(len(text) for _, text in messages)
        cached = self._cached_tokens(feature, now)
        usage_in = tokens(prompt_chars) + 3 * (len(messages) + 1)
        usage_out = tokens(len(answer))
        envelope.update(
            status=200,
            latency_ms=round(300 + usage_out * rng.uniform(8, 25), 1),
            response=self._response(feature, index, now, answer, finish, usage_in, usage_out, cached),
        )
        session.history = [*messages, ("assistant", answer)]
        session.turns_left -= 1
        return envelope

    def _cached_tokens(self, feature: Feature, now: int) -> int:
        """Prompt-cache reads the provider would report: the system prompt, when warm (written within 5 min)."""
        warm = now - feature.last_seen_us < CACHE_TTL_US
        feature.last_seen_us = now
        system_tokens = tokens(len(feature.system))
        if feature.provider == "anthropic":
            if not feature.cache_marked:
                return 0
            return system_tokens if warm else -system_tokens  # negative = written this time
        if system_tokens < 1024 or not warm:
            return 0
        return system_tokens // 128 * 128  # OpenAI caches in 128-token steps past the first 1,024

    def _request(self, feature: Feature, messages: list[tuple[str, str]], user: str) -> dict[str, Any]:
        turns = [{"role": role, "content": text} for role, text in messages]
        if feature.api == "messages":
            system: Any = feature.system
            if feature.cache_marked:
                system = [{"type": "text", "text": feature.system, "cache_control": {"type": "ephemeral"}}]
            return {
                "model": feature.model,
                "max_tokens": feature.max_tokens,
                "system": system,
                "messages": turns,
                "temperature": 0.3,
                "metadata": {"user_id": user},
            }
        if feature.api == "responses":
            return {
                "model": feature.model,
                "instructions": feature.system,
                "input": turns,
                "max_output_tokens": feature.max_tokens,
                "user": user,
            }
        return {
            "model": feature.model,
            "messages": [{"role": "system", "content": feature.system}, *turns],
            "max_completion_tokens": feature.max_tokens,
            "temperature": 0.3,
            "user": user,
        }

    def _response(
        self,
        feature: Feature,
        index: int,
        now: int,
        answer: str,
        finish: str,
        usage_in: int,
        usage_out: int,
        cached: int,
    ) -> dict[str, Any]:
        created = now // 1_000_000
        rid = f"{self.seed}x{index:010d}"
        if feature.api == "messages":
            read, write = max(cached, 0), max(-cached, 0)
            return {
                "id": f"msg_{rid}",
                "type": "message",
                "role": "assistant",
                "model": feature.response_model,
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn" if finish == "stop" else "max_tokens",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": usage_in - read - write,  # Anthropic: uncached input only
                    "cache_creation_input_tokens": write,
                    "cache_read_input_tokens": read,
                    "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
                    "output_tokens": usage_out,
                    "service_tier": "standard",
                },
            }
        if feature.api == "responses":
            reasoning = usage_out // 2 if feature.model.startswith("gpt-5") else 0
            return {
                "id": f"resp_{rid}",
                "object": "response",
                "created_at": created,
                "completed_at": created + 2,
                "status": "completed",
                "model": feature.response_model,
                "output": [
                    {
                        "type": "message",
                        "id": f"msg_{rid}",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": answer, "annotations": []}],
                    }
                ],
                "max_output_tokens": feature.max_tokens,
                "incomplete_details": None if finish == "stop" else {"reason": "max_output_tokens"},
                "error": None,
                "usage": {
                    "input_tokens": usage_in,
                    "input_tokens_details": {"cached_tokens": cached},
                    "output_tokens": usage_out + reasoning,
                    "output_tokens_details": {"reasoning_tokens": reasoning},
                    "total_tokens": usage_in + usage_out + reasoning,
                },
            }
        return {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion",
            "created": created,
            "model": feature.response_model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": usage_in,
                "completion_tokens": usage_out,
                "total_tokens": usage_in + usage_out,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "service_tier": "default",
        }


class ParquetSink:
    """Canonical rows (via llm-audit's envelope parser) written one row group at a time."""

    def __init__(self, path: Path) -> None:
        from auditor.config import DEFAULT_ATTRIBUTION
        from auditor.ingest import envelope
        from auditor.ingest.context import RecordContext

        self._parse = envelope.parse
        self._ctx = RecordContext(file=path.name, line=0, attribution=DEFAULT_ATTRIBUTION)
        self._path = path
        self._rows: list[dict[str, Any]] = []
        self._writer: Any = None

    def add(self, record: dict[str, Any]) -> None:
        self._ctx.line += 1
        row = self._parse(record, self._ctx)
        assert isinstance(row, dict)
        self._rows.append(row)
        if len(self._rows) >= PARQUET_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow.parquet as pq

        from auditor.schema import rows_to_frame

        if not self._rows:
            return
        table = rows_to_frame(self._rows).to_arrow()
        self._rows = []
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._path, table.schema, compression="zstd")
        self._writer.write_table(table)

    def close(self) -> None:
        self.flush()
        if self._writer is not None:
            self._writer.close()


def part_name(k: int, files: int, suffix: str) -> str:
    return f"part-{k:02d}-of-{files:02d}.{suffix}"


def open_jsonl(path: Path, compress: str | None) -> TextIO:
    """A text stream to `path`, zstd-compressed on the fly when asked (10M requests are 55 GB plain, ~5 GB zstd)."""
    if compress is None:
        return path.open("w", encoding="utf-8")
    import io

    import pyarrow as pa

    raw = pa.output_stream(str(path) + ".zst", compression="zstd")
    return io.TextIOWrapper(raw, encoding="utf-8")


def generate(
    n: int, out: Path, files: int, formats: list[str], seed: int, compress: str | None = None
) -> dict[str, int]:
    """Write n requests split over `files` files per format; returns bytes written per format."""
    for fmt in formats:
        (out / fmt).mkdir(parents=True, exist_ok=True)
    jsonl: TextIO | None = None
    parquet: ParquetSink | None = None
    current = -1
    written = {fmt: 0 for fmt in formats}
    started = time.perf_counter()
    for i, record in zip(range(n), Generator(seed), strict=False):
        k = i * files // n  # contiguous ranges: a rotated log
        if k != current:
            if jsonl is not None:
                jsonl.close()
            if parquet is not None:
                parquet.close()
            current = k
            if "jsonl" in formats:
                jsonl = open_jsonl(out / "jsonl" / part_name(k, files, "jsonl"), compress)
            if "parquet" in formats:
                parquet = ParquetSink(out / "parquet" / part_name(k, files, "parquet"))
        if jsonl is not None:
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            jsonl.write(line)
            jsonl.write("\n")
            written["jsonl"] += len(line) + 1
        if parquet is not None:
            parquet.add(record)
        if (i + 1) % 100_000 == 0:
            print(f"  {i + 1:,} requests, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if jsonl is not None:
        jsonl.close()
    if parquet is not None:
        parquet.close()
    for fmt in formats:
        written[fmt] = sum(p.stat().st_size for p in (out / fmt).iterdir())
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--format", choices=["jsonl", "parquet", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compress", choices=["zstd"], help="write the JSONL parts zstd-compressed (.jsonl.zst)")
    args = parser.parse_args()
    if args.requests < 1 or not 1 <= args.files <= args.requests:
        parser.error("need --requests >= 1 and 1 <= --files <= --requests")
    formats = ["jsonl", "parquet"] if args.format == "both" else [args.format]
    started = time.perf_counter()
    written = generate(args.requests, args.out, args.files, formats, args.seed, args.compress)
    elapsed = time.perf_counter() - started
    sizes = ", ".join(
        f"{fmt} {size / 1e6:,.0f} MB ({size / args.requests:,.0f} B/request)" for fmt, size in written.items()
    )
    print(f"{args.requests:,} requests -> {args.out} in {elapsed:.0f} s: {sizes}", file=sys.stderr)


if __name__ == "__main__":
    main()
