"""prompt_caching's bounded working set: the masked replay covers only the groups a volatile span touches (and
gives there what replaying whole scopes gives), sessions are told apart by a hash feature, evidence texts are
fetched for the rows shown."""

from __future__ import annotations

import polars as pl

from auditor.levers import caching
from auditor.levers.caching import CachingOptions

BLOCK = 32


def _chunk() -> pl.DataFrame:
    # group A: a system prompt with a different date per request in its first block (shares nothing as logged);
    # group B: one stable system prompt (shares its prefix as logged); one scope
    texts, times = [], []
    for i in range(5):
        texts.append(f"[system]\nToday is 2024-03-0{i + 1}. " + "rule " * 20 + f"question {i}")
        times.append(i * 60)
    for i in range(4):
        texts.append("[system]\nYou help with plain text. " + "plain " * 20 + f"ask {i}")
        times.append(30 + i * 60)
    return pl.DataFrame(
        {
            "prompt_text": texts,
            "system_text": [t.split("\n", 1)[1] for t in texts],
            "session_id": ["s1", "", None, "s1", "s2", "s2", "s3", None, ""],
            "t": [t * 1_000_000 for t in times],
        }
    )


def _inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    chunk = _chunk()
    features = caching.LEVER.features(chunk, {"block_bytes": BLOCK})
    chains = features.select(caching.KEYS_HEAD, caching.KEYS, caching.MASKED_KEYS, caching.WINDOW)
    work = pl.DataFrame(
        {
            "t": chunk["t"],
            "_chain_row": pl.int_range(chunk.height, dtype=pl.UInt32, eager=True),
            caching.BYTES: features[caching.BYTES],
            caching.MASKED_BYTES: features[caching.MASKED_BYTES],
            "unit": pl.Series([0] * chunk.height, dtype=pl.UInt32),
            "input_tokens": [500] * chunk.height,
        }
    )
    requests = (
        work.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("req"), pl.lit(1, pl.UInt32).alias("scope"), "t")
        .sort("t", "req", maintain_order=True)
        .drop("t")
    )
    return work, chains, requests


def _replayed(requests: pl.DataFrame, work: pl.DataFrame, chains: pl.DataFrame) -> pl.DataFrame:
    return caching._replay(requests, chains, BLOCK, [300, None], lookup=work).sort("req")


def test_masked_replay_covers_the_touched_groups_and_equals_a_whole_scope_replay() -> None:
    work, chains, requests = _inputs()
    raw = (
        requests.select("req")
        .sort("req")
        .join(_replayed(requests, work, chains), on="req", how="left", maintain_order="left")
    )
    assert raw.filter(pl.col("req") < 5)["shared_bytes"].null_count() == 5  # the dates break group A's prefix
    assert raw.filter(pl.col("req") >= 5)["shared_bytes"].min() > 40  # group B shares its system prompt
    masked = caching._masked_requests(requests, raw, work, chains, CachingOptions(block_bytes=BLOCK))
    assert masked is not None
    # only group A (the date moves it into one masked group) is replayed again, every request of it masked
    assert sorted(masked["req"].to_list()) == [0, 1, 2, 3, 4]
    assert masked["changed"].all()
    assert masked["req"].to_list() == requests.filter(pl.col("req") < 5)["req"].to_list()  # start-time order
    # replaying the whole scope with the same requests masked gives the same for group A, the logged for group B
    whole = _replayed(requests.with_columns((pl.col("req") < 5).alias("changed")), work, chains)
    assert _replayed(masked, work, chains).equals(whole.filter(pl.col("req") < 5))
    assert whole.filter(pl.col("req") >= 5).equals(raw.filter(pl.col("req") >= 5).drop_nulls())
    # masked, group A shares "[system]\nToday is <date>. rule ... " (up to its unique question)
    assert whole.filter(pl.col("req") < 5)["shared_bytes"].min() > 100


def test_session_feature_tells_sessions_apart_without_the_string() -> None:
    chunk = _chunk()
    session = caching.LEVER.features(chunk, {})[caching.SESSION]
    assert session.dtype == pl.UInt64
    # null and empty ids are no session; equal ids hash alike, distinct ids differ
    assert session.is_null().to_list() == [False, True, True, False, False, False, False, True, True]
    assert session[0] == session[3] and session[4] == session[5]
    assert len({session[0], session[4], session[6]}) == 3


def test_billing_scope_feature_only_when_the_tag_is_configured() -> None:
    chunk = _chunk().with_columns(pl.lit('{"workspace":"w1"}').alias("tags"))
    assert caching.BILLING not in caching.LEVER.features(chunk, {}).columns
    tagged = caching.LEVER.features(chunk, {"billing_scope_tag": "workspace"})
    assert tagged[caching.BILLING].to_list() == ["w1"] * chunk.height


def test_evidence_texts_come_from_the_own_frame_or_the_pipeline_rows() -> None:
    frame = pl.DataFrame({"row_id": [0, 1], caching.HEAD: [None, "[tools]\nx"], "system_text": ["sys", "other"]})
    ctx = caching.LeverContext(prices=None)  # type: ignore[arg-type]
    texts = caching._evidence_texts(frame, ctx)
    assert texts(0) == {"head": None, "span": None, "system_text": "sys"}
    assert texts(1)["head"] == "[tools]\nx"
    asked: list[tuple[list[int], list[str]]] = []

    def rows(ids: pl.Series, columns: list[str]) -> pl.DataFrame:
        asked.append((ids.to_list(), list(columns)))
        return pl.DataFrame({"row_id": ids, caching.HEAD: [None], "system_text": ["fetched"]})

    via_rows = caching._evidence_texts(frame, caching.LeverContext(prices=None, rows=rows))  # type: ignore[arg-type]
    assert via_rows(1) == {"head": None, "span": None, "system_text": "fetched"}
    assert asked == [([1], [caching.HEAD, "system_text"])]  # one row, the columns the frame has (no span feature)
