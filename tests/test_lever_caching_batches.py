"""The prompt-cache replay in batches of independent request groups gives what one replay of all requests gives,
whatever the batch size (caching._replay: groups are (scope, first chain key))."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from auditor.ingest import read_paths
from auditor.levers import caching
from auditor.levers.base import LeverContext, LeverResult
from auditor.levers.prefix import chain_key_lists, split_key_lists
from auditor.pipeline import ScanOptions, chunk_reducer, lever_contexts, lever_frame, prepare_frame, row_fetcher
from auditor.prices import PriceBook
from tests.test_lever_caching_reduced import as_dicts

SAMPLES = Path(__file__).resolve().parents[1] / "sample_logs"


def counted_replays(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Patches caching.replay to record the number of block rows of each call."""
    calls: list[int] = []
    original = caching.replay

    def wrapped(blocks: pl.DataFrame, ttls: Any) -> pl.DataFrame:
        calls.append(blocks.height)
        return original(blocks, ttls)

    monkeypatch.setattr(caching, "replay", wrapped)
    return calls


def sample_logs_input() -> tuple[pl.DataFrame, LeverContext]:
    """What the pipeline hands prompt_caching for sample_logs/: its frame and context (system_text is fetched)."""
    options = ScanOptions(paths=[str(SAMPLES)])
    prices = PriceBook.load()
    levers = [(lv, ctx) for lv, ctx in lever_contexts(options, prices) if lv.id == caching.LEVER_ID]
    ingest = read_paths(options.paths, attribution=options.config.attribution, on_chunk=chunk_reducer(options, levers))
    priced = prepare_frame(ingest.frame, options, prices)
    return lever_frame(priced, caching.LEVER), LeverContext(prices=prices, rows=row_fetcher(priced))


def test_sample_logs_result_does_not_depend_on_the_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    frame, ctx = sample_logs_input()
    calls = counted_replays(monkeypatch)

    def run(budget: int) -> tuple[LeverResult, int]:
        monkeypatch.setattr(caching, "_REPLAY_BATCH_BLOCKS", budget)
        before = len(calls)
        return caching.LEVER.analyze(frame, ctx), len(calls) - before

    whole, whole_calls = run(10**9)
    batched, batched_calls = run(1)
    assert whole_calls == 2  # as logged and masked, each in one batch
    assert batched_calls > 10  # one group per batch
    assert as_dicts(batched) == as_dicts(whole)
    assert whole.confidence == "simulated" and whole.counterfactual.height > 0


def interleaved() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two prefix groups of one scope interleaved in time, and a third group in another scope with group A's text."""
    a, b = "A" * 64, "B" * 64  # two shared 32-byte blocks each, then a 16-byte tail of the request's own
    rows = [  # (text, scope, t in s)
        (a + "x" * 16, 0, 0),
        (b + "p" * 16, 0, 50),
        (a + "y" * 16, 0, 100),  # 100 s after A's first: a hit under the 300 s TTL
        (b + "q" * 16, 0, 150),
        (a + "z" * 16, 1, 200),  # A's text in another scope: shares with the next request only
        (a + "w" * 16, 0, 500),  # 400 s after A's last touch: a miss under 300 s, a hit unbounded
        (a + "v" * 16, 1, 200),  # the same instant as its scope's first: a miss
        (b + "r" * 16, 0, 450),  # 300 s after B's last touch: a hit
    ]
    rows.sort(key=lambda row: row[2])  # the replay takes requests in start-time order
    texts = [r[0] for r in rows]
    split = split_key_lists(chain_key_lists(pl.Series(texts), 32), min_texts=2)
    chains = pl.DataFrame({caching.KEYS_HEAD: split["head"], caching.KEYS: split["tail"]})
    requests = pl.DataFrame(
        {
            "req": pl.Series(range(len(rows)), dtype=pl.UInt32),
            "scope": [r[1] for r in rows],
            "t": [r[2] * 1_000_000 for r in rows],
            "_chain_row": pl.Series(range(len(rows)), dtype=pl.UInt32),
            "bytes": pl.Series(texts).str.len_bytes().cast(pl.Int64),
            "text": texts,
        }
    )
    return requests, chains


def test_interleaved_groups_replay_alike_in_any_batching() -> None:
    requests, chains = interleaved()
    whole = caching._replay(requests.drop("text"), chains, 32, [300, None], budget=10**9).sort("req")
    batched = caching._replay(requests.drop("text"), chains, 32, [300, None], budget=1).sort("req")
    assert batched.equals(whole)
    by_text = requests.join(whole, on="req", how="left").select("text", "shared_bytes", "hit_bytes_0", "hit_bytes_1")
    got = {row[0][-1]: row[1:] for row in by_text.rows()}
    # every request shares its 64-byte head; hits by hand from the times above
    assert got == {
        "x": (64, 0, 0),  # first of A
        "p": (64, 0, 0),  # first of B
        "y": (64, 64, 64),
        "q": (64, 64, 64),
        "z": (64, 0, 0),  # same instant as "v" in scope 1: both miss
        "v": (64, 0, 0),
        "r": (64, 64, 64),
        "w": (64, 0, 64),
    }
