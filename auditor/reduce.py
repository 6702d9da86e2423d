"""Cut the text columns down once the levers have derived what they need from them (issue 7: memory).

Full prompts are most of a log's bytes: kept per request they made 1M requests need 16 GiB. So, chunk by chunk
at ingest (and once more in a lever handed a full frame, as tests do), every lever first derives its
per-request features from the full texts (`Lever.features`), then the texts are cut:

  prompt_text      dropped; `prompt_chars` keeps its length (null when the prompt was not logged)
  system_text      its first SYSTEM_HEAD_CHARS characters, one copy per distinct value in the chunk
  last_user_text   its first HEAD_CHARS characters (evidence excerpts); `last_user_chars` keeps the length
  output_text      its first HEAD_CHARS characters; `output_chars` keeps the length

A frame is *reduced* when it has no `prompt_text` column. Levers read features and heads, never full texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from auditor.levers.base import Lever

SYSTEM_HEAD_CHARS = 2000  # the task classifier reads this much of a system prompt
HEAD_CHARS = 300  # enough for any excerpt a finding shows

# (column, head length, length column)
_HEADS: tuple[tuple[str, int, str], ...] = (
    ("last_user_text", HEAD_CHARS, "last_user_chars"),
    ("output_text", HEAD_CHARS, "output_chars"),
)

# Low-cardinality strings stored once per distinct value per chunk (see _interned).
INTERNED = ("source_file", "model", "provider", "feature", "tenant", "user", "tags", "system_hash", "session_id")

REDUCED_COLUMNS: dict[str, pl.DataType] = {
    "prompt_chars": pl.Int64(),
    "last_user_chars": pl.Int64(),
    "output_chars": pl.Int64(),
}


def is_reduced(frame: pl.DataFrame) -> bool:
    return "prompt_text" not in frame.columns


def reduce_chunk(chunk: pl.DataFrame, levers: Sequence[tuple[Lever, dict[str, Any]]]) -> pl.DataFrame:
    """The chunk with each lever's features added and its texts cut down (see the module docstring).

    `levers` pairs each lever with its options (its section of llm-audit.yaml). A reduced chunk comes back as is.
    """
    if is_reduced(chunk):
        return chunk
    features = [lever.features(chunk, options) for lever, options in levers]
    for lever, part in zip(levers, features, strict=True):
        if part.width and part.height != chunk.height:
            raise ValueError(f"{lever[0].id}.features returned {part.height} rows for {chunk.height}")
    return pl.concat([_cut_texts(chunk), *(f for f in features if f.width)], how="horizontal")


def ensure_reduced(frame: pl.DataFrame, lever: Lever, options: dict[str, Any]) -> pl.DataFrame:
    """What a lever's `analyze` calls first: a frame the pipeline reduced passes through; a full frame (tests,
    library callers) gets this lever's features and the cut."""
    return frame if is_reduced(frame) else reduce_chunk(frame, [(lever, options)])


def _cut_texts(chunk: pl.DataFrame) -> pl.DataFrame:
    # concat_str copies: a plain str.slice would be a view that keeps the whole text buffer alive.
    heads = [pl.concat_str([pl.col(name).str.slice(0, length), pl.lit("")]).alias(name) for name, length, _ in _HEADS]
    lengths = [pl.col(name).str.len_chars().cast(pl.Int64).alias(length_name) for name, _, length_name in _HEADS]
    cut = chunk.with_columns(
        pl.col("prompt_text").str.len_chars().cast(pl.Int64).alias("prompt_chars"),
        *lengths,
    ).with_columns(*heads)
    shared = [_interned(chunk["system_text"], SYSTEM_HEAD_CHARS)]
    shared += [_interned(chunk[name]) for name in INTERNED if name in chunk.columns]
    return cut.with_columns(shared).drop("prompt_text")


def _interned(values: pl.Series, head: int | None = None) -> pl.Series:
    """The column with each distinct value stored once (views into one small buffer), cut to `head` characters.

    Polars stores a string column as 16-byte views plus the bytes of every value longer than 12; a column of a
    few dozen distinct system prompts or file names would otherwise hold one copy per request.
    """
    distinct = values.drop_nulls().unique(maintain_order=True)
    cut = pl.col("full").str.slice(0, head) if head is not None else pl.col("full")
    table = pl.DataFrame({"full": distinct}).with_columns(pl.concat_str([cut, pl.lit("")]).alias("shared"))
    joined = values.to_frame("full").join(table, on="full", how="left", maintain_order="left")
    return joined["shared"].alias(values.name)
