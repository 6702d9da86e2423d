"""Generate the sample logs in this directory: seeded, byte-for-byte reproducible.

    python sample_logs/generate.py            # rewrite the files next to this script
    python sample_logs/generate.py --out DIR  # write them somewhere else (tests compare the bytes)

Two weeks (2026-10-01 .. 2026-10-14, UTC) of traffic of a fictional SaaS company, in five formats. Token
usage is consistent with the text: OpenAI prompt/completion tokens are counted with the o200k_base
encoding from auditor.tokens (3 framing tokens + 1 role token per message + 3 reply-priming tokens, as in
OpenAI's cookbook); Anthropic counts use the same o200k counts (x1.0) as an approximation. Provider caching
is simulated in time order: OpenAI's automatic prefix cache (>= 1,024 tokens, 128-token steps, ~7 minutes
idle) and Anthropic's cache_control breakpoints (5-minute or 1-hour TTL, per-model minimum length).
See README.md for what each file contains and where the waste patterns are planted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import corpus as C  # noqa: E402
import polars as pl  # noqa: E402

from auditor.tokens import get_encoding  # noqa: E402

SEED = 20261001
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 14
TENANTS = (("acme-corp", 35), ("globex", 25), ("initech", 20), ("umbrella-health", 12), ("stark-logistics", 8))
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 12, 12, 12, 12, 11, 10, 8, 6, 4, 3, 2, 1, 1)
DAY_WEIGHTS = tuple(0.35 if (START + timedelta(days=d)).weekday() >= 5 else 1.0 for d in range(DAYS))

SNAPSHOTS = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o4-mini": "o4-mini-2025-04-16",
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
}
# (base latency ms, ms per output token)
SPEED = {
    "gpt-4o": (380, 11.0),
    "gpt-4o-mini": (260, 7.0),
    "gpt-4.1": (420, 12.0),
    "gpt-4.1-mini": (300, 8.0),
    "o4-mini": (600, 5.0),
    "gpt-5": (900, 8.0),
    "gpt-5-mini": (550, 5.0),
    "claude-sonnet-4-5-20250929": (750, 14.0),
    "claude-haiku-4-5": (380, 6.0),
    "claude-opus-4-1": (1200, 24.0),
}
# Anthropic minimum cacheable prefix (billing-facts.md §1.2): shorter prefixes are silently not cached.
ANTHROPIC_CACHE_MIN = {"claude-sonnet-4-5-20250929": 1024, "claude-opus-4-1": 1024, "claude-haiku-4-5": 4096}
OPENAI_CACHE_IDLE = timedelta(minutes=7)  # "5 to 10 minutes of inactivity"

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def rid(rng: random.Random, n: int = 24) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def business_time(rng: random.Random) -> datetime:
    day = rng.choices(range(DAYS), weights=DAY_WEIGHTS)[0]
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return START + timedelta(days=day, hours=hour, seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))


def burst_sizes(rng: random.Random, total: int, low: int, high: int) -> list[int]:
    """Split `total` requests into bursts of low..high-1 requests (the last one may be smaller)."""
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(rng.randrange(low, high), total - sum(sizes)))
    return sizes


def tenant_user(rng: random.Random) -> tuple[str, str]:
    tenant = rng.choices([t for t, _ in TENANTS], weights=[w for _, w in TENANTS])[0]
    return tenant, f"u_{tenant.split('-')[0]}_{rng.randrange(1, 26):03d}"


def meta(feature: str, tenant: str, user: str, session: str | None = None) -> dict[str, Any]:
    return {"feature": feature, "tenant": tenant, "user": user, "session_id": session}


def latency(rng: random.Random, model: str, input_tokens: int, output_tokens: int) -> int:
    base, per_token = SPEED[model]
    return round((base + input_tokens / 40 + per_token * output_tokens) * rng.lognormvariate(0, 0.15))


class Tokens:
    """o200k_base counts, each distinct text counted once."""

    def __init__(self) -> None:
        self.encoding = get_encoding("o200k_base")
        self.memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self.memo.get(text)
        if n is None:
            n = self.memo[text] = len(self.encoding.encode_ordinary(text))
        return n

    def chat(self, messages: list[dict[str, Any]]) -> int:
        # OpenAI cookbook: 3 framing + role token per message, content tokens, 3 priming tokens
        return sum(4 + self(str(m["content"])) for m in messages) + 3

    def truncate(self, text: str, limit: int) -> str:
        return self.encoding.decode(self.encoding.encode_ordinary(text)[:limit])


class PrefixCache:
    """Last use of each cached prefix; an entry lives `ttl` after its last write or read."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], tuple[datetime, timedelta]] = {}

    def hit(self, model: str, key: str, ts: datetime, ttl: timedelta) -> bool:
        previous = self.last.get((model, key))
        alive = previous is not None and abs(ts - previous[0]) <= previous[1]
        keep_ttl = max(ttl, previous[1]) if previous and alive else ttl
        self.last[(model, key)] = (max(ts, previous[0]) if previous else ts, keep_ttl)
        return alive


@dataclass
class Out:
    """Records of one output file, sorted by time when written."""

    records: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)

    def add(self, ts: datetime, record: dict[str, Any]) -> None:
        self.records.append((ts, len(self.records), record))

    def lines(self) -> list[str]:
        ordered = sorted(self.records, key=lambda r: (r[0], r[1]))
        return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for _, _, r in ordered]


@dataclass
class World:
    tok: Tokens
    openai_cache: PrefixCache = field(default_factory=PrefixCache)
    anthropic_cache: PrefixCache = field(default_factory=PrefixCache)
    chat: Out = field(default_factory=Out)
    responses: Out = field(default_factory=Out)
    anthropic: Out = field(default_factory=Out)


def envelope(
    ts: datetime,
    request: dict[str, Any],
    meta_: dict[str, Any],
    *,
    response: dict[str, Any] | None,
    latency_ms: int,
    status: int = 200,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {"timestamp": iso(ts), "request": request}
    if response is not None:
        record["response"] = response
    record["latency_ms"] = latency_ms
    record["status"] = status
    if error is not None:
        record["error"] = error
    record["metadata"] = meta_
    return record


def openai_error(rng: random.Random, status: int, model: str, message: str | None = None) -> dict[str, Any]:
    if status == 429:
        return {
            "error": {
                "message": f"Rate limit reached for {model} in organization org-n0rthw1nd on tokens per min "
                f"(TPM): Limit 800000, Used {rng.randrange(790000, 800000)}, Requested "
                f"{rng.randrange(900, 9000)}. Please try again in {rng.randrange(50, 900)}ms.",
                "type": "tokens",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    if status == 500:
        return {
            "error": {
                "message": "The server had an error while processing your request. Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    return {
        "error": {
            "message": message or "Invalid request.",
            "type": "invalid_request_error",
            "param": None,
            "code": "unsupported_parameter",
        }
    }


def anthropic_error(rng: random.Random, status: int, message: str | None = None) -> dict[str, Any]:
    kinds = {
        429: (
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit "
            "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage.",
        ),
        500: ("api_error", "Internal server error"),
        400: ("invalid_request_error", message or "Invalid request"),
    }
    kind, text = kinds[status]
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_011C" + rid(rng, 20)}


def transient_failures(
    rng: random.Random,
    out: Out,
    ts: datetime,
    request: dict[str, Any],
    meta_: dict[str, Any],
    make_error: Callable[[int], dict[str, Any]],
    p429: float,
    p500: float,
) -> datetime:
    """Maybe log 429/500 failures of `request` first; return when the (successful) retry starts."""
    failures = 0
    while failures < 3:
        r = rng.random()
        status = 429 if r < p429 else 500 if r < p429 + p500 else 0
        if status == 0:
            break
        failures += 1
        p429, p500 = p429 * 6, p500  # rate limits come in bursts: a retry is often limited again
        lat = rng.randrange(40, 250) if status == 429 else rng.randrange(2000, 30000)
        out.add(
            ts, envelope(ts, request, meta_, response=None, latency_ms=lat, status=status, error=make_error(status))
        )
        backoff = (2 ** (failures - 1)) * rng.uniform(0.8, 2.5)
        ts = ts + timedelta(milliseconds=lat) + timedelta(seconds=backoff)
    return ts


# --------------------------------------------------------------------------------------------------
# OpenAI Chat Completions (app_requests.jsonl)
# --------------------------------------------------------------------------------------------------


def chat_call(
    w: World,
    rng: random.Random,
    ts: datetime,
    request: dict[str, Any],
    meta_: dict[str, Any],
    answer: str,
    *,
    reasoning: int = 0,
    finish: str = "stop",
    p429: float = 0.025,
    p500: float = 0.006,
) -> datetime:
    """Log one chat completion (after any transient failures); returns the time of the successful call."""
    model = request["model"]
    ts = transient_failures(rng, w.chat, ts, request, meta_, lambda s: openai_error(rng, s, model), p429, p500)
    prompt = w.tok.chat(request["messages"])
    cached = 0
    system = request["messages"][0]
    if prompt >= 1024 and system["role"] in ("system", "developer"):
        prefix = w.tok(system["content"]) + 4
        hit = w.openai_cache.hit(model, system["content"], ts, OPENAI_CACHE_IDLE)
        if hit and prefix >= 1024:
            cached = 1024 + 128 * ((prefix - 1024) // 128)
    completion = w.tok(answer) + reasoning
    response = {
        "id": "chatcmpl-" + rid(rng, 29),
        "object": "chat.completion",
        "created": int(ts.timestamp()),
        "model": SNAPSHOTS[model],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_" + rid(rng, 10).lower(),
    }
    w.chat.add(ts, envelope(ts, request, meta_, response=response, latency_ms=latency(rng, model, prompt, completion)))
    return ts


def gen_ticket_classifier(w: World, n: int) -> None:
    """Premium gpt-4o labelling tickets with one enum word in JSON mode (tiering waste)."""
    rng = random.Random(f"{SEED}:ticket_classifier")
    for _ in range(n):
        tenant, user = tenant_user(rng)
        text, category = C.ticket(rng, tenant)
        if rng.random() < 0.06:  # the model is wrong sometimes
            category = C.pick(rng, C.TICKET_CATEGORIES)
        request = {
            "model": "gpt-4o",
            "messages": [{"role": "system", "content": C.CLASSIFIER_SYSTEM}, {"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": 20,
            "response_format": {"type": "json_object"},
        }
        chat_call(
            w,
            rng,
            business_time(rng),
            request,
            meta("ticket_classifier", tenant, user),
            json.dumps({"category": category}),
        )


def gen_help_center(w: World, n: int) -> None:
    """FAQ bot: the same questions from many users (response-cache candidates)."""
    rng = random.Random(f"{SEED}:help_center_bot")
    for _ in range(n):
        tenant, user = tenant_user(rng)
        index, question = C.faq_question(rng)
        request = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": C.HELP_SYSTEM}, {"role": "user", "content": question}],
            "temperature": 0.2,
            "max_tokens": 400,
        }
        chat_call(w, rng, business_time(rng), request, meta("help_center_bot", tenant, user), C.faq_answer(index))


def gen_kb_answers(w: World, n: int) -> None:
    """gpt-4.1 without max_tokens and an instruction to be thorough: a long tail of output."""
    rng = random.Random(f"{SEED}:kb_answers")
    for _ in range(n):
        tenant, user = tenant_user(rng)
        area, use_case, question = C.kb_question(rng)
        user_msg = f"Knowledge base excerpts:\n{C.kb_context(rng, area)}\n\nQuestion: {question}"
        paragraphs = max(2, min(60, round(rng.lognormvariate(1.8, 0.9))))
        request = {
            "model": "gpt-4.1",
            "messages": [{"role": "system", "content": C.KB_SYSTEM}, {"role": "user", "content": user_msg}],
            "temperature": 0.7,
        }
        chat_call(
            w,
            rng,
            business_time(rng),
            request,
            meta("kb_answers", tenant, user),
            C.kb_answer(rng, area, use_case, paragraphs),
        )


def gen_answer_arena(w: World, n: int) -> None:
    """One prompt fanned out to three models within a few milliseconds."""
    rng = random.Random(f"{SEED}:answer_arena")
    for _ in range(n):
        tenant, user = tenant_user(rng)
        prompt = C.arena_prompt(rng)
        ts = business_time(rng)
        for model in ("gpt-4o", "gpt-4.1", "o4-mini"):
            request: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "system", "content": C.ARENA_SYSTEM}, {"role": "user", "content": prompt}],
            }
            reasoning = 0
            if model == "o4-mini":
                request["reasoning_effort"] = "medium"
                reasoning = 64 * rng.randrange(3, 30)
            else:
                request["temperature"] = 0.7
            chat_call(
                w,
                rng,
                ts + timedelta(milliseconds=rng.randrange(1, 15)),
                request,
                meta("answer_arena", tenant, user),
                C.arena_answer(rng, prompt, model),
                reasoning=reasoning,
                p429=0,
                p500=0,
            )


def gen_thread_summarizer(w: World, n: int, double_submits: int) -> None:
    """gpt-4o-mini thread summaries; some users double-click "Summarize" (two billed calls 300 ms apart)."""
    rng = random.Random(f"{SEED}:thread_summarizer")
    for i in range(n):
        tenant, user = tenant_user(rng)
        thread, summary = C.email_thread(rng, tenant)
        request = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": C.SUMMARIZER_SYSTEM}, {"role": "user", "content": thread}],
            "temperature": 0.3,
            "max_tokens": 300,
        }
        ts = chat_call(w, rng, business_time(rng), request, meta("thread_summarizer", tenant, user), summary)
        if i < double_submits:
            chat_call(
                w,
                rng,
                ts + timedelta(milliseconds=300 + rng.randrange(-20, 20)),
                request,
                meta("thread_summarizer", tenant, user),
                summary,
                p429=0,
                p500=0,
            )


def gen_sql_assistant(w: World, n: int, validation_errors: int) -> None:
    """o4-mini with a ~1,300-token schema prompt (automatic prefix caching applies) and a few 400s."""
    rng = random.Random(f"{SEED}:sql_assistant")
    system = C.sql_system_prompt()
    # analysts work in sessions: several questions within minutes, which keeps the prefix cache warm
    sizes = burst_sizes(rng, n, 2, 7)
    starts = sorted(business_time(rng) for _ in sizes)
    for s, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        tenant, user = tenant_user(rng)
        ts = start
        for q in range(size):
            question, answer = C.sql_question(rng)
            messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
            request: dict[str, Any] = {
                "model": "o4-mini",
                "messages": messages,
                "reasoning_effort": "medium",
                "max_completion_tokens": 4000,
            }
            if s < validation_errors and q == 0:  # an old client sent max_tokens (rejected for o-series) until
                # its first session fixed it; the client retries with max_completion_tokens
                bad = {"model": "o4-mini", "messages": messages, "max_tokens": 4000}
                out_error = openai_error(
                    rng,
                    400,
                    "o4-mini",
                    "Unsupported parameter: 'max_tokens' is not supported "
                    "with this model. Use 'max_completion_tokens' instead.",
                )
                w.chat.add(
                    ts,
                    envelope(
                        ts,
                        bad,
                        meta("sql_assistant", tenant, user),
                        response=None,
                        latency_ms=rng.randrange(60, 200),
                        status=400,
                        error=out_error,
                    ),
                )
                ts += timedelta(seconds=rng.uniform(1.0, 4.0))
            reasoning = 64 * rng.randrange(4, 40)
            ts = chat_call(w, rng, ts, request, meta("sql_assistant", tenant, user), answer, reasoning=reasoning)
            ts += timedelta(seconds=rng.randrange(30, 400))


# --------------------------------------------------------------------------------------------------
# OpenAI Responses API (responses_api.jsonl)
# --------------------------------------------------------------------------------------------------


def responses_call(
    w: World,
    rng: random.Random,
    ts: datetime,
    request: dict[str, Any],
    meta_: dict[str, Any],
    answer: str,
    reasoning: int,
    *,
    p429: float = 0.02,
) -> None:
    model = request["model"]
    ts = transient_failures(rng, w.responses, ts, request, meta_, lambda s: openai_error(rng, s, model), p429, 0.004)
    inputs = [{"role": "developer", "content": request["instructions"]}, *request["input"]]
    input_tokens = w.tok.chat(inputs)
    cached = 0
    prefix = w.tok(request["instructions"]) + 4
    if (
        input_tokens >= 1024
        and w.openai_cache.hit(model, request["instructions"], ts, OPENAI_CACHE_IDLE)
        and prefix >= 1024
    ):
        cached = 1024 + 128 * ((prefix - 1024) // 128)
    cap = request.get("max_output_tokens")
    visible = w.tok(answer)
    status, incomplete = "completed", None
    if cap is not None and reasoning + visible > cap:  # ran out of output budget
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        reasoning = min(reasoning, cap)
        answer = w.tok.truncate(answer, cap - reasoning)
        visible = w.tok(answer) if answer else 0
    output_tokens = reasoning + visible
    lat = latency(rng, model, input_tokens, output_tokens)
    output: list[dict[str, Any]] = [{"type": "reasoning", "id": "rs_" + rid(rng, 32).lower(), "summary": []}]
    if answer:
        output.append(
            {
                "type": "message",
                "id": "msg_" + rid(rng, 32).lower(),
                "status": status,
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer, "annotations": [], "logprobs": []}],
            }
        )
    response = {
        "id": "resp_" + rid(rng, 40).lower(),
        "object": "response",
        "created_at": round(ts.timestamp(), 3),
        "completed_at": round(ts.timestamp() + lat / 1000, 3),
        "status": status,
        "model": SNAPSHOTS[model],
        "output": output,
        "instructions": request["instructions"],
        "max_output_tokens": cap,
        "reasoning": request["reasoning"],
        "service_tier": "default",
        "incomplete_details": incomplete,
        "error": None,
        "metadata": request.get("metadata", {}),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens,
        },
    }
    w.responses.add(ts, envelope(ts, request, meta_, response=response, latency_ms=lat))


def gen_nightly_digest(w: World, per_night: int) -> None:
    """Same-template digests fired at 02:00 UTC on the real-time API: a batch job paying real-time prices."""
    rng = random.Random(f"{SEED}:nightly_digest")
    for day in range(DAYS):
        night = START + timedelta(days=day, hours=2)
        for _ in range(per_night):
            tenant, user = tenant_user(rng)
            _, events, digest = C.digest_events(rng, (night - timedelta(days=1)).strftime("%Y-%m-%d"))
            request = {
                "model": "gpt-5-mini",
                "instructions": C.DIGEST_INSTRUCTIONS,
                "input": [{"role": "user", "content": events}],
                "reasoning": {"effort": "low"},
                "max_output_tokens": 2000,
                "metadata": {"job": "nightly_digest"},
            }
            ts = night + timedelta(milliseconds=rng.randrange(0, 150_000))
            responses_call(
                w,
                rng,
                ts,
                request,
                meta("nightly_digest", tenant, user),
                digest,
                reasoning=64 * rng.randrange(1, 8),
                p429=0.04,
            )


def gen_research_agent(w: World, n: int) -> None:
    """gpt-5 with high reasoning effort; a few runs hit max_output_tokens (truncated, status incomplete)."""
    rng = random.Random(f"{SEED}:research_agent")
    for _ in range(n):
        tenant, user = tenant_user(rng)
        question = C.research_question(rng)
        request = {
            "model": "gpt-5",
            "instructions": C.RESEARCH_INSTRUCTIONS,
            "input": [{"role": "user", "content": question}],
            "reasoning": {"effort": "high"},
            "max_output_tokens": 6000,
        }
        reasoning = 64 * round(rng.lognormvariate(math.log(40), 0.5))
        responses_call(
            w,
            rng,
            business_time(rng),
            request,
            meta("research_agent", tenant, user, "run_" + rid(rng, 12)),
            C.research_memo(rng, rng.randrange(3, 9)),
            reasoning,
        )


# --------------------------------------------------------------------------------------------------
# Anthropic Messages (assistant_anthropic.jsonl.gz)
# --------------------------------------------------------------------------------------------------


def anthropic_call(
    w: World,
    rng: random.Random,
    ts: datetime,
    request: dict[str, Any],
    meta_: dict[str, Any],
    answer: str,
    *,
    cache_ttl: str | None,
    p429: float = 0.015,
    p500: float = 0.004,
    stop: str = "end_turn",
) -> datetime:
    model = request["model"]
    ts = transient_failures(rng, w.anthropic, ts, request, meta_, lambda s: anthropic_error(rng, s), p429, p500)
    system = request["system"] if isinstance(request["system"], str) else request["system"][0]["text"]
    tools = request.get("tools")
    prefix = w.tok(system) + (w.tok(json.dumps(tools)) if tools else 0)
    total = prefix + sum(w.tok(m["content"]) + 4 for m in request["messages"]) + 3  # o200k x 1.0
    read = write_5m = write_1h = 0
    if cache_ttl is not None and prefix >= ANTHROPIC_CACHE_MIN[model]:
        ttl = timedelta(hours=1) if cache_ttl == "1h" else timedelta(minutes=5)
        if w.anthropic_cache.hit(model, system, ts, ttl):
            read = prefix
        elif cache_ttl == "1h":
            write_1h = prefix
        else:
            write_5m = prefix
    output = w.tok(answer)
    response = {
        "id": "msg_01" + rid(rng, 22),
        "type": "message",
        "role": "assistant",
        "model": SNAPSHOTS[model],
        "content": [{"type": "text", "text": answer}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": total - read - write_5m - write_1h,
            "cache_creation_input_tokens": write_5m + write_1h,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write_5m, "ephemeral_1h_input_tokens": write_1h},
            "output_tokens": output,
            "service_tier": "standard",
        },
    }
    w.anthropic.add(ts, envelope(ts, request, meta_, response=response, latency_ms=latency(rng, model, total, output)))
    return ts


def cached_system(text: str, ttl: str | None) -> list[dict[str, Any]]:
    control: dict[str, Any] = {"type": "ephemeral"}
    if ttl == "1h":
        control["ttl"] = "1h"
    return [{"type": "text", "text": text, "cache_control": control}]


def gen_policy_assistant(w: World, n: int) -> None:
    """A ~3,000-token handbook resent on every call with no cache_control (uncached shared prefix)."""
    rng = random.Random(f"{SEED}:policy_assistant")
    handbook = C.policy_handbook(rng, min_words=2500)
    for _ in range(n):
        tenant, user = tenant_user(rng)
        request = {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 1024,
            "temperature": 0.2,
            "system": handbook,
            "messages": [{"role": "user", "content": C.policy_question(rng)}],
        }
        anthropic_call(
            w,
            rng,
            business_time(rng),
            request,
            meta("policy_assistant", tenant, user),
            C.policy_answer(rng),
            cache_ttl=None,
        )


def gen_account_insights(w: World, n: int) -> None:
    """cache_control on a system prompt that starts with the current time: every call writes, none reads."""
    rng = random.Random(f"{SEED}:account_insights")
    instructions = C.insights_instructions(rng, min_words=1150)
    for _ in range(n):
        tenant, user = tenant_user(rng)
        ts = business_time(rng)
        system = f"Current time: {ts.strftime('%Y-%m-%dT%H:%M:%SZ')}\n\n{instructions}"
        request = {
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 2048,
            "system": cached_system(system, None),
            "messages": [{"role": "user", "content": C.insights_question(rng)}],
        }
        anthropic_call(
            w, rng, ts, request, meta("account_insights", tenant, user), C.insights_answer(rng), cache_ttl="5m"
        )


def gen_support_chat(w: World, sessions: int) -> None:
    """Long live-chat sessions on haiku: the full history is resent on every turn, nothing cached."""
    rng = random.Random(f"{SEED}:support_chat")
    for _ in range(sessions):
        tenant, user = tenant_user(rng)
        session = "chat_" + rid(rng, 16)
        plan = C.pick(rng, C.PLANS)
        ts = business_time(rng)
        history: list[dict[str, Any]] = []
        for turn in range(rng.randrange(8, 31)):
            history.append({"role": "user", "content": C.chat_turn_user(rng, turn, plan)})
            answer = C.chat_turn_reply(rng)
            request = {
                "model": "claude-haiku-4-5",
                "max_tokens": 1024,
                "temperature": 0.5,
                "system": C.SUPPORT_CHAT_SYSTEM,
                "messages": list(history),
            }
            ts = anthropic_call(
                w, rng, ts, request, meta("support_chat", tenant, user, session), answer, cache_ttl=None
            )
            history.append({"role": "assistant", "content": answer})
            ts += timedelta(seconds=rng.randrange(20, 150))


REVIEW_TOOLS = [
    {
        "name": "get_file",
        "description": "Fetch the full content of a file at the PR head revision.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
    {
        "name": "post_comment",
        "description": "Post a review comment on a line of the pull request.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "body": {"type": "string"}},
            "required": ["path", "line", "body"],
        },
    },
]


def gen_code_review(w: World, n: int) -> None:
    """A stable ~2,000-token review checklist with a 5-minute cache breakpoint: CI bursts read, idle gaps write."""
    rng = random.Random(f"{SEED}:code_review")
    guidelines = C.review_guidelines(rng, min_words=1500)
    # chronological bursts (the cache simulation needs time order): a CI run reviews several files in a row
    sizes = burst_sizes(rng, n, 1, 8)
    starts = sorted(business_time(rng) for _ in sizes)
    for start, size in zip(starts, sizes, strict=True):
        ts = start
        tenant, user = tenant_user(rng)
        for _ in range(size):
            request = {
                "model": "claude-sonnet-4-5-20250929",
                "max_tokens": 2048,
                "temperature": 0,
                "system": cached_system(guidelines, None),
                "tools": REVIEW_TOOLS,
                "messages": [{"role": "user", "content": C.code_diff(rng)}],
            }
            ts = anthropic_call(
                w, rng, ts, request, meta("code_review", tenant, user), C.code_review(rng), cache_ttl="5m"
            )
            ts += timedelta(seconds=rng.randrange(5, 90))


def gen_contract_review(w: World, sessions: int) -> None:
    """Opus answering questions about one contract over an hour: a 1-hour cache breakpoint on the contract.

    Also a few 400s: max_tokens above the model's output limit, retried with a valid value.
    """
    rng = random.Random(f"{SEED}:contract_review")
    for s in range(sessions):
        tenant, user = tenant_user(rng)
        session = "review_" + rid(rng, 12)
        system = (
            "You are a contracts specialist. Answer questions about the agreement below precisely, citing "
            "clause numbers.\n\n" + C.contract_text(rng, f"{tenant.title()} Ltd.", min_words=1900)
        )
        ts = business_time(rng)
        for q in range(rng.randrange(3, 9)):
            request = {
                "model": "claude-opus-4-1",
                "max_tokens": 4096,
                "system": cached_system(system, "1h"),
                "messages": [{"role": "user", "content": C.contract_question(rng)}],
            }
            if s % 8 == 0 and q == 0:
                bad = dict(request, max_tokens=64000)
                error = anthropic_error(
                    rng,
                    400,
                    "max_tokens: 64000 > 32000, which is the maximum allowed number of "
                    "output tokens for claude-opus-4-1-20250805",
                )
                w.anthropic.add(
                    ts,
                    envelope(
                        ts,
                        bad,
                        meta("contract_review", tenant, user, session),
                        response=None,
                        latency_ms=rng.randrange(80, 300),
                        status=400,
                        error=error,
                    ),
                )
                ts += timedelta(seconds=rng.uniform(2, 8))
            ts = anthropic_call(
                w,
                rng,
                ts,
                request,
                meta("contract_review", tenant, user, session),
                C.contract_answer(rng),
                cache_ttl="1h",
            )
            ts += timedelta(seconds=rng.randrange(180, 1200))


# --------------------------------------------------------------------------------------------------
# OpenAI Batch API pair (nightly_batch/)
# --------------------------------------------------------------------------------------------------


def gen_batch(tok: Tokens, n: int) -> tuple[list[str], list[str]]:
    """A nightly ticket-summary job that already uses the Batch API (gpt-4.1-mini, 50% price)."""
    rng = random.Random(f"{SEED}:nightly_batch")
    submitted = START + timedelta(days=8, hours=1, minutes=0, seconds=12)
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for i in range(n):
        tenant, user = tenant_user(rng)
        thread, summary = C.batch_ticket_thread(rng, tenant)
        custom_id = f"ticket-summary-{i + 1:05d}"
        body: dict[str, Any] = {
            "model": "gpt-4.1-mini",
            "messages": [{"role": "system", "content": C.NIGHTLY_BATCH_SYSTEM}, {"role": "user", "content": thread}],
            "max_tokens": 200,
            "temperature": 0,
            "metadata": {"feature": "ticket_summary_batch", "tenant": tenant, "user": user},
        }
        inputs.append({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})
        created = submitted + timedelta(seconds=rng.randrange(300, 5400))
        if i % 97 == 41:  # a couple of lines never ran
            outputs.append(
                {
                    "id": "batch_req_" + rid(rng, 32).lower(),
                    "custom_id": custom_id,
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    },
                }
            )
            continue
        prompt = tok.chat(body["messages"])
        completion = tok(summary)
        outputs.append(
            {
                "id": "batch_req_" + rid(rng, 32).lower(),
                "custom_id": custom_id,
                "response": {
                    "status_code": 200,
                    "request_id": "req_" + rid(rng, 32).lower(),
                    "body": {
                        "id": "chatcmpl-" + rid(rng, 29),
                        "object": "chat.completion",
                        "created": int(created.timestamp()),
                        "model": SNAPSHOTS["gpt-4.1-mini"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": summary,
                                    "refusal": None,
                                    "annotations": [],
                                },
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt,
                            "completion_tokens": completion,
                            "total_tokens": prompt + completion,
                            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                            "completion_tokens_details": {
                                "reasoning_tokens": 0,
                                "audio_tokens": 0,
                                "accepted_prediction_tokens": 0,
                                "rejected_prediction_tokens": 0,
                            },
                        },
                        "service_tier": "default",
                        "system_fingerprint": "fp_" + rid(rng, 10).lower(),
                    },
                },
                "error": None,
            }
        )
    rng.shuffle(outputs)  # output lines are not in input order
    dump = [json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in inputs]
    return dump, [json.dumps(x, ensure_ascii=False, separators=(",", ":")) for x in outputs]


# --------------------------------------------------------------------------------------------------
# LiteLLM SpendLogs export (gateway/)
# --------------------------------------------------------------------------------------------------

# USD per 1M tokens (input, output) the gateway used to compute `spend` (LiteLLM's model map, late 2026).
GATEWAY_PRICES = {
    "gemini-2.5-flash": (0.30, 2.50),
    "gpt-4o-mini": (0.15, 0.60),
    "ft:gpt-4o-mini-2024-07-18:acme::B7x9": (0.30, 1.20),
}


def gen_litellm(rows_per_model: dict[str, int]) -> pl.DataFrame:
    rng = random.Random(f"{SEED}:litellm")
    features = {
        "gemini-2.5-flash": "doc_search",
        "gpt-4o-mini": "autocomplete",
        "ft:gpt-4o-mini-2024-07-18:acme::B7x9": "ticket_router_ft",
    }
    providers = {
        "gemini-2.5-flash": "gemini",
        "gpt-4o-mini": "openai",
        "ft:gpt-4o-mini-2024-07-18:acme::B7x9": "openai",
    }
    bases = {"gemini": "https://generativelanguage.googleapis.com/v1beta", "openai": "https://api.openai.com/v1"}
    rows: list[dict[str, Any]] = []
    for model, count in rows_per_model.items():
        for i in range(count):
            tenant, user = tenant_user(rng) if not model.startswith("ft:") else ("acme-corp", "u_acme_007")
            start = business_time(rng)
            failed = i % 53 == 7
            reasoning = 0
            if failed:
                prompt = completion = 0
            elif model == "gemini-2.5-flash":
                prompt, reasoning = rng.randrange(1500, 9000), rng.randrange(0, 900)
                completion = rng.randrange(60, 500) + reasoning
            elif model == "gpt-4o-mini":
                prompt, completion = rng.randrange(200, 900), rng.randrange(5, 60)
            else:
                prompt, completion = rng.randrange(150, 400), rng.randrange(2, 8)
            price_in, price_out = GATEWAY_PRICES[model]
            spend = round((prompt * price_in + completion * price_out) / 1_000_000, 10)
            duration = 0 if failed else round(300 + completion * 6 * rng.lognormvariate(0, 0.2))
            end = start + timedelta(milliseconds=duration or rng.randrange(50, 400))
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": reasoning},
                "prompt_tokens_details": None,
            }
            md: dict[str, Any] = {
                "user_api_key_alias": f"{features[model]}-svc",
                "user_api_key_team_alias": tenant,
                "status": "failure" if failed else "success",
                "usage_object": usage,
            }
            if failed:
                md["error_information"] = {
                    "error_code": "429",
                    "error_class": "RateLimitError",
                    "llm_provider": providers[model],
                    "error_message": "litellm.RateLimitError: quota exceeded",
                }
            rows.append(
                {
                    "request_id": f"chatcmpl-{rid(rng, 8).lower()}-{rid(rng, 4).lower()}-{rid(rng, 12).lower()}",
                    "call_type": "acompletion",
                    "api_key": "".join(rng.choice("0123456789abcdef") for _ in range(64)),
                    "spend": 0.0 if failed else spend,
                    "total_tokens": prompt + completion,
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    # Postgres timestamp(3) without time zone, as exported: naive values that mean UTC
                    "startTime": start.replace(tzinfo=None),
                    "endTime": end.replace(tzinfo=None),
                    "completionStartTime": None
                    if failed
                    else (start + timedelta(milliseconds=duration // 3)).replace(tzinfo=None),
                    "request_duration_ms": None if failed else duration,
                    "model": model,
                    "model_id": rid(rng, 16).lower(),
                    "model_group": model,
                    "custom_llm_provider": providers[model],
                    "api_base": bases[providers[model]],
                    "user": user,
                    "team_id": "team-" + tenant,
                    "organization_id": None,
                    "end_user": user,
                    "metadata": json.dumps(md, separators=(",", ":")),
                    "cache_hit": "False",
                    "cache_key": "Cache OFF",
                    "request_tags": json.dumps([f"feature:{features[model]}", "env:prod"]),
                    "requester_ip_address": None,
                    "messages": "{}",
                    "response": "{}",
                    "session_id": None,
                    "status": "failure" if failed else "success",
                    "proxy_server_request": "{}",
                    "mcp_namespaced_tool_name": None,
                    "agent_id": None,
                }
            )
    rows.sort(key=lambda r: (r["startTime"], r["request_id"]))
    return pl.DataFrame(
        rows,
        schema_overrides={
            "startTime": pl.Datetime("ms"),
            "endTime": pl.Datetime("ms"),
            "completionStartTime": pl.Datetime("ms"),
            "request_duration_ms": pl.Int64,
            "organization_id": pl.String,
            "requester_ip_address": pl.String,
            "session_id": pl.String,
            "mcp_namespaced_tool_name": pl.String,
            "agent_id": pl.String,
        },
    )


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str], *, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    if gz:
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(data)
    else:
        path.write_bytes(data)


def generate(out_dir: Path) -> dict[str, int]:
    """Write every sample file under `out_dir`; returns records per file."""
    w = World(Tokens())
    gen_ticket_classifier(w, 450)
    gen_help_center(w, 550)
    gen_kb_answers(w, 150)
    gen_answer_arena(w, 40)
    gen_thread_summarizer(w, 200, double_submits=20)
    gen_sql_assistant(w, 70, validation_errors=5)
    gen_nightly_digest(w, per_night=18)
    gen_research_agent(w, 90)
    gen_policy_assistant(w, 300)
    gen_account_insights(w, 200)
    gen_support_chat(w, sessions=110)
    gen_code_review(w, 350)
    gen_contract_review(w, sessions=24)
    batch_in, batch_out = gen_batch(w.tok, 250)
    spend_logs = gen_litellm({"gemini-2.5-flash": 130, "gpt-4o-mini": 110, "ft:gpt-4o-mini-2024-07-18:acme::B7x9": 18})

    files = {
        "app_requests.jsonl": (w.chat.lines(), False),
        "responses_api.jsonl": (w.responses.lines(), False),
        "assistant_anthropic.jsonl.gz": (w.anthropic.lines(), True),
        "nightly_batch/batch_input.jsonl": (batch_in, False),
        "nightly_batch/batch_output.jsonl": (batch_out, False),
    }
    for name, (lines, gz) in files.items():
        write_lines(out_dir / name, lines, gz=gz)
    parquet = out_dir / "gateway" / "litellm_spend_logs.parquet"
    parquet.parent.mkdir(parents=True, exist_ok=True)
    spend_logs.write_parquet(parquet, compression="zstd", statistics=False)
    counts = {name: len(lines) for name, (lines, _) in files.items()}
    counts["gateway/litellm_spend_logs.parquet"] = spend_logs.height
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    args = parser.parse_args(argv)
    counts = generate(args.out)
    for name, count in counts.items():
        print(f"{count:6d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
