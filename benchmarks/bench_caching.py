"""Time and peak memory of the prompt_caching lever on a seeded synthetic log.

    python benchmarks/bench_caching.py --requests 1000000

Workload: conversations (1-8 turns, gaps mostly under a minute, some past 5 minutes) on 30 features, each
with its own system prompt (some below the cache minimum, three with a timestamp in the first line), on
claude-sonnet-4-5, gpt-4.1 and gpt-4o-mini; 10 % of requests are logged without prompt text. Prompts are
rendered like auditor.schema's prompt_text, at 4 bytes per token. Prints the lever's own time, the
whole-process time and the peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.levers.base import LeverContext
from auditor.levers.caching import LEVER
from auditor.prices import PriceBook
from auditor.schema import SORT_KEYS, conform

FEATURES = 30
MODELS = [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1"), ("openai", "gpt-4o-mini")]
TURN_BYTES = 320
T0 = int(datetime(2026, 10, 1, tzinfo=UTC).timestamp() * 1_000_000)


def generate(n_requests: int, seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    words = [
        "the",
        "cache",
        "of",
        "a",
        "prefix",
        "is",
        "read",
        "when",
        "the",
        "same",
        "bytes",
        "arrive",
        "again",
        "within",
        "its",
        "lifetime",
    ]
    filler = " ".join(rng.choice(words) for _ in range(40_000))
    systems = [
        f"[system]\nYou are assistant #{f}. " + filler[f * 700 : f * 700 + rng.randint(2_000, 9_000)] + "\n"
        for f in range(FEATURES)
    ]
    n_sessions = max(1, n_requests // 4)
    sessions = pl.DataFrame(
        {
            "sid": range(n_sessions),
            "feature_idx": [rng.randrange(FEATURES) for _ in range(n_sessions)],
            "start": [T0 + rng.randrange(86_400_000_000) for _ in range(n_sessions)],
            "turns": [rng.randint(1, 7) for _ in range(n_sessions)],
            "offset": [rng.randrange(len(filler) - 8 * TURN_BYTES) for _ in range(n_sessions)],
        }
    )
    requests = sessions.with_columns(pl.int_ranges(0, pl.col("turns")).alias("turn")).explode("turn").head(n_requests)
    n = requests.height
    # gaps mostly under a minute; one in ten 12x longer (past a 5 minute TTL)
    gaps = [int(rng.expovariate(1 / 45.0) * (12 if rng.random() < 0.1 else 1) * 1e6) for _ in range(n)]
    requests = requests.with_columns(pl.Series("gap_us", gaps)).with_columns(
        (pl.col("start") + pl.col("gap_us").cum_sum().over("sid")).alias("t")
    )
    model = pl.col("feature_idx") % len(MODELS)
    timestamp = pl.from_epoch(pl.col("t"), time_unit="us").dt.replace_time_zone("UTC")
    stamped = pl.when(pl.col("feature_idx") < 3).then(
        pl.lit("[system]\nNow: ") + timestamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ") + pl.lit("\n")
    )
    history = pl.lit(filler).str.slice(pl.col("offset"), (pl.col("turn") + 1) * TURN_BYTES)
    system = pl.Series("system_text", systems).gather(requests["feature_idx"])
    prompt = pl.concat_str(
        stamped.otherwise(pl.lit("")),
        pl.lit(system),
        pl.lit("[user]\nsession ") + pl.col("sid").cast(pl.String) + pl.lit(": ") + history,
    )
    no_text = pl.Series([rng.random() < 0.1 for _ in range(n)])
    frame = requests.with_columns(
        pl.when(no_text).then(None).otherwise(prompt).alias("prompt_text"),
        (prompt.str.len_bytes() // 4).alias("input_tokens"),
        timestamp.alias("timestamp"),
        pl.col("sid").cast(pl.String).alias("session_id"),
        pl.concat_str(pl.lit("feature-"), pl.col("feature_idx").cast(pl.String)).alias("feature"),
        pl.lit([m for _, m in MODELS]).list.get(model).alias("model"),
        pl.lit([p for p, _ in MODELS]).list.get(model).alias("provider"),
        pl.lit(200).alias("output_tokens"),
        pl.lit(0).alias("cache_read_tokens"),
        pl.lit(0).alias("cache_write_5m_tokens"),
        pl.lit(0).alias("cache_write_1h_tokens"),
        pl.lit("ok").alias("status"),
        pl.lit(False).alias("batch"),
        pl.lit("bench").alias("source_file"),
        pl.int_range(pl.len()).alias("source_line"),
    )
    frame = conform(frame).sort(list(SORT_KEYS), nulls_last=True).with_row_index("row_id")
    return frame.with_columns(pl.col("row_id").cast(pl.Int64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    prices = PriceBook.load()
    frame = prices.add_costs(generate(args.requests, args.seed))
    built = time.perf_counter()
    text_mb = int(frame["prompt_text"].str.len_bytes().sum() or 0) / 1e6
    result = LEVER.analyze(frame, LeverContext(prices=prices))
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"requests            {frame.height:,}  (prompt text {text_mb:,.0f} MB)")
    print(f"generate + price    {built - start:.2f} s")
    print(f"lever               {done - built:.2f} s")
    print(f"whole process       {done - start:.2f} s")
    print(f"peak RSS            {peak_mb:,.0f} MB")
    print(f"findings            {sorted({f.code for f in result.findings})}, {len(result.findings)} in all")
    print(f"touched requests    {result.counterfactual.height:,}")


if __name__ == "__main__":
    main()
