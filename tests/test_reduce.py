"""auditor.reduce: what survives of the texts once the levers have derived their features."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from auditor.reduce import HEAD_CHARS, SYSTEM_HEAD_CHARS, ensure_reduced, is_reduced, reduce_chunk
from auditor.schema import rows_to_frame

LONG_SYSTEM = "S" * (SYSTEM_HEAD_CHARS + 500)
QUESTION = "é" * (HEAD_CHARS + 7)  # 2 bytes a character: lengths are characters, not bytes


def chunk() -> pl.DataFrame:
    return rows_to_frame(
        [
            {
                "request_id": "a",
                "model": "gpt-4.1",
                "source_file": "logs/a.jsonl",
                "system_text": LONG_SYSTEM,
                "prompt_text": "[system]\n" + LONG_SYSTEM + "\n[user]\n" + QUESTION + "\n",
                "last_user_text": QUESTION,
                "output_text": "short answer",
            },
            {"request_id": "b", "model": "gpt-4.1", "source_file": "logs/a.jsonl", "system_text": LONG_SYSTEM},
            {"request_id": "c", "model": None, "source_file": "logs/a.jsonl"},
        ]
    )


class Lengths:
    """A lever whose feature is the full prompt length in bytes (a value only the full text has)."""

    id = "toy"

    def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
        return chunk.select(pl.col("prompt_text").str.len_bytes().cast(pl.Int64).alias("_toy_prompt_bytes"))


def test_texts_are_cut_and_their_lengths_kept() -> None:
    reduced = reduce_chunk(chunk(), [])
    assert is_reduced(reduced) and not is_reduced(chunk())
    row = reduced.row(0, named=True)
    # prompt: "[system]\n" (9) + 2,500 + "\n[user]\n" (8) + 307 + "\n" (1) = 2,825 characters
    assert row["prompt_chars"] == 9 + SYSTEM_HEAD_CHARS + 500 + 8 + HEAD_CHARS + 7 + 1
    assert row["system_text"] == "S" * SYSTEM_HEAD_CHARS
    assert row["last_user_text"] == "é" * HEAD_CHARS and row["last_user_chars"] == HEAD_CHARS + 7
    assert row["output_text"] == "short answer" and row["output_chars"] == 12
    # unknown stays unknown: no prompt logged -> null length, never 0
    assert reduced["prompt_chars"].to_list()[1:] == [None, None]
    assert reduced["system_text"].to_list()[1:] == ["S" * SYSTEM_HEAD_CHARS, None]
    assert reduced["model"].to_list() == ["gpt-4.1", "gpt-4.1", None]
    assert reduced["source_file"].to_list() == ["logs/a.jsonl"] * 3


def test_lever_features_are_computed_on_the_full_text() -> None:
    reduced = reduce_chunk(chunk(), [(Lengths(), {})])  # type: ignore[list-item]
    # 2,825 characters, of which the 307 "é" take 2 bytes: 2,825 + 307 = 3,132 bytes
    assert reduced["_toy_prompt_bytes"].to_list() == [2825 + 307, None, None]


def test_ensure_reduced_is_idempotent() -> None:
    once = ensure_reduced(chunk(), Lengths(), {})  # type: ignore[arg-type]
    assert ensure_reduced(once, Lengths(), {}) is once  # type: ignore[arg-type]


def test_a_feature_frame_of_the_wrong_height_is_an_error() -> None:
    class Broken(Lengths):
        def features(self, chunk: pl.DataFrame, options: dict[str, Any]) -> pl.DataFrame:
            return super().features(chunk, options).head(1)

    with pytest.raises(ValueError, match=r"toy\.features returned 1 rows for 3"):
        reduce_chunk(chunk(), [(Broken(), {})])  # type: ignore[list-item]


def test_a_key_block_cut_by_the_head_is_still_masked() -> None:
    from auditor.redact import excerpt, mask_secrets

    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + "x" * 400 + "\n-----END RSA PRIVATE KEY-----"
    reduced = reduce_chunk(rows_to_frame([{"request_id": "k", "last_user_text": "my key: " + key}]), [])
    head = reduced["last_user_text"][0]
    assert "END RSA" not in head  # the head stops inside the block
    assert excerpt(head) == "my key: [private-key]"
    assert mask_secrets("a " + key + " b") == "a [private-key] b"  # a whole block still ends where it ends
