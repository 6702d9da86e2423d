"""The obvious way to audit an envelope log, as the speed baseline for llm-audit.

    python benchmarks/baseline.py benchmarks/data/n100000/jsonl

One `json.loads` per line, tiktoken on every message of every request (the system prompt and the whole
resent history included, every time), cost from the logged usage with a small hard-coded price dict, and
dicts keyed by (model, feature). Prints the totals as JSON. This is the script a careful engineer writes in an
afternoon; it is not tuned, on purpose.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.tokens import get_encoding

# USD per million tokens: input, cached input, output (public list prices, late 2025)
PRICES = {
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "claude-sonnet-4-5": (3.00, 0.30, 15.00),
    "claude-haiku-4-5": (1.00, 0.10, 5.00),
    "claude-opus-4-1": (15.00, 1.50, 75.00),
}


def base_model(model: str) -> str:
    """gpt-4.1-2025-04-14 -> gpt-4.1; the longest price key the logged model starts with."""
    matches = [name for name in PRICES if model.startswith(name)]
    return max(matches, key=len) if matches else model


def message_texts(request: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    system = request.get("system") or request.get("instructions")
    if isinstance(system, list):
        texts.extend(block.get("text", "") for block in system)
    elif isinstance(system, str):
        texts.append(system)
    for message in request.get("messages") or request.get("input") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part.get("text", "") for part in content if isinstance(part, dict))
    return texts


def main() -> None:
    o200k, cl100k = get_encoding("o200k_base"), get_encoding("cl100k_base")
    cost: dict[tuple[str, str], float] = defaultdict(float)
    requests: dict[tuple[str, str], int] = defaultdict(int)
    prompt_tokens: dict[tuple[str, str], int] = defaultdict(int)
    errors = 0
    files = sorted(
        p for arg in sys.argv[1:] for p in (Path(arg).rglob("*.jsonl") if Path(arg).is_dir() else [Path(arg)])
    )
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                request = record.get("request") or {}
                response = record.get("response") or {}
                model = base_model(response.get("model") or request.get("model") or "?")
                feature = (record.get("metadata") or {}).get("feature") or "?"
                key = (model, feature)
                requests[key] += 1
                encoding = cl100k if model.startswith("claude") else o200k
                prompt_tokens[key] += sum(
                    len(encoding.encode(text, disallowed_special=())) for text in message_texts(request)
                )
                usage = response.get("usage")
                if not usage:
                    errors += 1
                    continue
                price_in, price_cached, price_out = PRICES.get(model, (0.0, 0.0, 0.0))
                if "prompt_tokens" in usage:  # OpenAI Chat: prompt includes cached
                    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
                    uncached, output = usage["prompt_tokens"] - cached, usage["completion_tokens"]
                elif "cache_read_input_tokens" in usage:  # Anthropic: input excludes cache; writes at 1.25x
                    cached = usage.get("cache_read_input_tokens", 0)
                    uncached = usage["input_tokens"] + 1.25 * usage.get("cache_creation_input_tokens", 0)
                    output = usage["output_tokens"]
                else:  # OpenAI Responses
                    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens", 0)
                    uncached, output = usage["input_tokens"] - cached, usage["output_tokens"]
                cost[key] += (uncached * price_in + cached * price_cached + output * price_out) / 1e6
    rows = [
        {
            "model": m,
            "feature": f,
            "requests": requests[m, f],
            "prompt_tokens": prompt_tokens[m, f],
            "cost_usd": round(cost[m, f], 6),
        }
        for m, f in sorted(requests, key=lambda k: -cost[k])
    ]
    total = {"requests": sum(requests.values()), "errors": errors, "cost_usd": round(sum(cost.values()), 6)}
    print(json.dumps({"totals": total, "by_model_feature": rows}, indent=1))


if __name__ == "__main__":
    main()
