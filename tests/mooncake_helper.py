"""Mooncake traces (kvcache-ai/Mooncake, Apache-2.0, FAST25-release/traces) as prompts whose blocks follow hash_ids.

Each trace row lists one id per 512-token block of its prompt; equal ids mean equal prefixes up to and including
that block. The helper renders every id as a fixed-size text block, so two prompts share a byte prefix exactly as
far as their id lists agree. Blocks are scaled down (16 bytes stand for 512 tokens): prefix sharing, and so the
token-weighted hit share, does not depend on the block's size. Token counts stay the trace's own.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl

REAL_DATA = Path(__file__).resolve().parent / "fixtures" / "mooncake"  # copies of the shared traces (README there)
BLOCK_BYTES = 16  # bytes per rendered hash-id block (stands for 512 tokens)
BLOCK_TOKENS = 512


def block_text(hash_id: int) -> str:
    return f"{hash_id:015d}\n"  # 16 bytes


def render(hash_ids: list[int], input_tokens: int) -> str:
    """The blocks in order; the last one cut to its share of a block, so bytes stay proportional to tokens."""
    if not hash_ids:
        return ""
    last_tokens = input_tokens - BLOCK_TOKENS * (len(hash_ids) - 1)
    last_bytes = min(BLOCK_BYTES, max(1, round(BLOCK_BYTES * last_tokens / BLOCK_TOKENS)))
    return "".join(block_text(h) for h in hash_ids[:-1]) + block_text(hash_ids[-1])[:last_bytes]


def load_trace(name: str, limit: int | None = None) -> pl.DataFrame:
    """`name` is "conversation" or "synthetic". Columns: t_ms, input_tokens, output_tokens, prompt_text."""
    path = REAL_DATA / f"mooncake_{name}_trace.jsonl.gz"
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            rows.append(
                {
                    "t_ms": int(record["timestamp"]),
                    "input_tokens": int(record["input_length"]),
                    "output_tokens": int(record["output_length"]),
                    "prompt_text": render(record["hash_ids"], int(record["input_length"])),
                }
            )
            if limit is not None and len(rows) >= limit:
                break
    return pl.DataFrame(rows)
