"""Prefix identity without tokenizing: a chain of block hashes over the rendered prompt.

The prompt (auditor.schema `prompt_text`, already in the provider's cache order tools -> system -> messages) is
cut into fixed-size byte blocks. Block k's key identifies the whole prefix up to the end of block k, so "the
longest prefix two requests share" becomes "the largest k whose key they share", found with joins and group-bys
over all requests at once instead of pairwise string comparison.

Why bytes, not characters: slicing a polars Binary column is O(1) per block, while character slicing walks the
string from its start (quadratic on long conversations). A block boundary inside a UTF-8 sequence is harmless
for hashing, and bytes convert to tokens by the request's own tokens-per-byte ratio.

Volatile spans (timestamps, dates, UUIDs, request ids, long numbers) and reordered JSON keys in the tools block
make otherwise identical prefixes unique; `mask_volatile` produces the text with those spans replaced so the
lever can measure what a fix would recover (LA102).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_BLOCK_BYTES = 256  # ~64 tokens: finer than OpenAI's 128-token step, far below any cache minimum
_CHUNK_BYTES = 1 << 28  # bound on text bytes exploded into blocks at once (memory stays ~ this size)
MASK_HEAD_CHARS = 8192  # volatile spans are looked for in the first ~2,000 tokens of a prompt
_SENTINEL = "\x00"  # what a masked span becomes (one byte, never in real prompt text)

# Named volatile patterns, most specific first; the first that matches a span names it in evidence.
VOLATILE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("uuid", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    (
        "timestamp",
        r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?",
    ),
    ("date", r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}"),
    (
        "date",
        r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}",
    ),
    ("time", r"\b\d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp][Mm])?\b"),
    ("request-id", r"\b(?:req|request|trace|span|msg|chatcmpl|run|session|sess)[-_][A-Za-z0-9_\-]{6,}"),
    ("hex-id", r"\b[0-9a-fA-F]{16,}\b"),
    ("number", r"\b\d{9,}\b"),  # unix timestamps, sequence numbers
)
_VOLATILE_RE = "|".join(f"(?:{pattern})" for _, pattern in VOLATILE_PATTERNS)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in VOLATILE_PATTERNS)
_TOOLS_RE = r"^\[tools\]\n([^\n]*)\n"  # the renderer writes the tools JSON on one line


def chain_keys(texts: pl.Series, block_bytes: int = DEFAULT_BLOCK_BYTES) -> pl.DataFrame:
    """One row per (text, block): `text_idx` (position in `texts`), `block` (0-based), `end_byte`, `key` (u64).

    `key` of block k is the same for two texts exactly when their first `end_byte` bytes are equal (up to
    hash collisions, ~2^-64 per pair). Null texts get no rows.
    """
    frame = (
        pl.DataFrame({"text": texts.cast(pl.String)})
        .with_row_index("text_idx")
        .filter(pl.col("text").is_not_null())
        .with_columns(pl.col("text").cast(pl.Binary).alias("bytes"))
        .with_columns(pl.col("bytes").bin.size().cast(pl.Int64).alias("size"))
        .drop("text")
    )
    parts = [_chain_chunk(chunk, block_bytes) for chunk in _chunks(frame)]
    if not parts:
        return pl.DataFrame(schema={"text_idx": pl.UInt32, "block": pl.UInt32, "end_byte": pl.Int64, "key": pl.UInt64})
    return pl.concat(parts)


def _chunks(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """Consecutive row ranges holding about _CHUNK_BYTES of text each."""
    if frame.height == 0:
        return []
    bucket = (frame["size"].cum_sum() // _CHUNK_BYTES).alias("bucket")
    return [part.drop("bucket") for part in frame.with_columns(bucket).partition_by("bucket", maintain_order=True)]


def _chain_chunk(frame: pl.DataFrame, block_bytes: int) -> pl.DataFrame:
    n_blocks = ((pl.col("size") + block_bytes - 1) // block_bytes).cast(pl.UInt32)
    exploded = frame.select(
        "text_idx", "bytes", "size", pl.int_ranges(0, n_blocks, dtype=pl.UInt32).alias("block")
    ).explode("block")
    start = pl.col("block").cast(pl.Int64) * block_bytes
    block_hash = pl.col("bytes").bin.slice(start, block_bytes).hash(0x5EED)
    # Position-mixed block hashes summed along the prompt give a prefix hash without a sequential loop.
    # Two independent 64-bit terms summed modulo 2^64 make a 128-bit prefix identity, folded into one u64 key
    # together with the block index. The sums run over the whole chunk (u64 arithmetic wraps) and each text's
    # start is subtracted: a running sum per text without a window function.
    mixed_a = pl.struct(pl.col("h"), pl.col("block")).hash(11)
    mixed_b = pl.struct(pl.col("h"), pl.col("block")).hash(23)
    first = pl.col("block").fill_null(0) == 0  # an empty text has one null block

    def per_text(column: str) -> pl.Expr:
        total = pl.col(column).cum_sum()
        return total - pl.when(first).then(total - pl.col(column)).forward_fill()

    return (
        exploded.with_columns(
            block_hash.alias("h"), (start + block_bytes).clip(upper_bound=pl.col("size")).alias("end_byte")
        )
        .drop("bytes", "size")
        .with_columns(mixed_a.alias("a"), mixed_b.alias("b"))
        .with_columns(per_text("a"), per_text("b"))
        .select("text_idx", "block", "end_byte", pl.struct("a", "b", "block").hash(37).alias("key"))
    )


def mask_volatile(texts: pl.Series) -> pl.Series:
    """The texts with volatile spans in their first MASK_HEAD_CHARS replaced by one placeholder byte, tools JSON
    canonicalized.

    Canonical tools = keys sorted and tools ordered by name, parsed once per distinct tools block.
    """
    text = texts.cast(pl.String)
    # Only the head is searched: a volatile span deep in a prompt breaks little of its prefix, and the regex
    # pass over every byte of every prompt would cost more than the rest of the lever.
    masked = text.str.slice(0, MASK_HEAD_CHARS).str.replace_all(_VOLATILE_RE, _SENTINEL) + text.str.slice(
        MASK_HEAD_CHARS
    )
    tools = masked.str.extract(_TOOLS_RE, 1)
    distinct = tools.drop_nulls().unique()
    if distinct.len() == 0:
        return masked
    canonical = pl.DataFrame(
        {"tools": distinct, "canonical": [canonical_tools_json(text) for text in distinct.to_list()]}
    )
    frame = pl.DataFrame({"text": masked, "tools": tools}).join(
        canonical, on="tools", how="left", maintain_order="left"
    )
    replaced = frame.select(
        pl.when(pl.col("canonical").is_not_null() & (pl.col("canonical") != pl.col("tools")))
        .then(pl.lit("[tools]\n") + pl.col("canonical") + pl.col("text").str.slice(pl.col("tools").str.len_chars() + 8))
        .otherwise(pl.col("text"))
        .alias("text")
    )
    return replaced["text"].alias(texts.name)


def divergence_window(text: pl.Expr, shared_bytes: pl.Expr, block_bytes: int) -> pl.Expr:
    """The text around the point where its shared prefix ends (a block before it, two after).

    Byte offsets are mapped to characters by the text's bytes-per-character ratio (exact for ASCII).
    """
    chars_per_byte = text.str.len_chars() / text.str.len_bytes().clip(lower_bound=1)
    start = ((shared_bytes * chars_per_byte).floor().cast(pl.Int64) - block_bytes).clip(lower_bound=0)
    return text.str.slice(start, 3 * block_bytes)


def has_volatile(text: pl.Expr) -> pl.Expr:
    """Whether the text holds a volatile span."""
    return text.str.contains(_VOLATILE_RE)


def diverges_in_tools(text: pl.Expr, shared_bytes: pl.Expr) -> pl.Expr:
    """Whether the shared prefix ends inside the leading tools block (where key or tool order may differ)."""
    tools_end = text.str.find("\n[", literal=True).cast(pl.Int64)
    return text.str.starts_with("[tools]\n") & (shared_bytes < tools_end.fill_null(0))


def canonical_tools_json(text: str) -> str:
    """Tools JSON with sorted keys and tools sorted by name; the text itself when it is not JSON."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, list):
        value = sorted(value, key=_tool_name)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _tool_name(tool: object) -> str:
    if isinstance(tool, dict):
        inner = tool.get("function")
        name = inner.get("name") if isinstance(inner, dict) else tool.get("name")
        return str(name or "")
    return ""


@dataclass(frozen=True)
class VolatileSpan:
    kind: str  # a VOLATILE_PATTERNS name, or "json-order" for reordered tools / keys
    char_offset: int  # where the span starts in the prompt text (characters)
    byte_offset: int
    line: int  # 1-based line of the prompt text
    segment: str  # tools | system | user | assistant | ... (the rendered "[role]" block it sits in)
    value: str  # the volatile text itself (callers mask it before showing)
    line_text: str  # the whole line, for a masked excerpt


def find_volatile_span(text: str, other: str) -> VolatileSpan | None:
    """Where `text` first differs from `other`, and which volatile span (if any) covers that point."""
    diverge = _common_prefix_len(text, other)
    if diverge >= len(text):
        return None
    segment = _segment_at(text, diverge)
    kind, start, value = "json-order", diverge, text[diverge : diverge + 16]
    for name, pattern in _COMPILED:
        match = next((m for m in pattern.finditer(text) if m.start() <= diverge < max(m.end(), m.start() + 1)), None)
        if match is not None:
            kind, start, value = name, match.start(), match.group(0)
            break
    else:
        if segment != "tools":
            return None
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    return VolatileSpan(
        kind=kind,
        char_offset=start,
        byte_offset=len(text[:start].encode()),
        line=text.count("\n", 0, start) + 1,
        segment=segment,
        value=value,
        line_text=text[line_start : line_end if line_end >= 0 else len(text)],
    )


def _common_prefix_len(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _segment_at(text: str, offset: int) -> str:
    markers = list(re.finditer(r"(?m)^\[([a-z_]+)\]$", text[: offset + 1]))
    return markers[-1].group(1) if markers else ""


# ---------------------------------------------------------------------------------------------------------
# Per-request features (auditor.reduce): what the lever keeps of a prompt once its text is cut

HEAD_CHARS = 300  # prompt head kept for the LA101 example excerpt (when the system text cannot rebuild it)
SPAN_LINE_CHARS = 300  # the masked line kept as LA102 evidence
SPAN_SEP = "\x1f"  # fields of the span evidence string: kind, segment, line, line in segment, char, byte, line text
_NAMED_RE = "|".join(f"(?P<g{i}>{pattern})" for i, (_, pattern) in enumerate(VOLATILE_PATTERNS))


def chain_key_lists(
    texts: pl.Series, block_bytes: int = DEFAULT_BLOCK_BYTES, keys: pl.DataFrame | None = None
) -> pl.Series:
    """Per text, its chain keys in block order (List[UInt64], the `key` column of chain_keys); null for null or
    empty texts. `keys`: chain_keys(texts, block_bytes) when the caller has them already."""
    if keys is None:
        keys = chain_keys(texts, block_bytes)
    lists = keys.group_by("text_idx", maintain_order=True).agg("key")  # rows come in text, then block order
    frame = pl.DataFrame({"text_idx": pl.int_range(texts.len(), dtype=pl.UInt32, eager=True)})
    return frame.join(lists, on="text_idx", how="left", maintain_order="left")["key"]


def shared_strings(values: pl.Series) -> pl.Series:
    """The column with each distinct value stored once (a join on the distinct values): a few thousand distinct
    heads or evidence lines over many rows cost their bytes once."""
    distinct = values.drop_nulls().unique(maintain_order=True)
    table = pl.DataFrame({"v": distinct}).with_columns(pl.concat_str([pl.col("v"), pl.lit("")]).alias("shared"))
    return values.to_frame("v").join(table, on="v", how="left", maintain_order="left")["shared"].alias(values.name)


def masked_features(texts: pl.Series, block_bytes: int, keys: pl.DataFrame | None = None) -> pl.DataFrame:
    """For prompts that mask_volatile changes (null elsewhere): `masked_keys` (chain keys of the masked text),
    `masked_bytes`, `window` (per possible shared prefix k = 0..blocks, ending at min(k * block, size) bytes:
    whether the lever's buster test fires there: a volatile span around that point, or a prefix ending inside the
    tools block) and `span` (evidence of the first volatile span, SPAN_SEP-separated).

    `keys`: chain_keys(texts, block_bytes) when the caller has them already."""
    text = texts.cast(pl.String)
    if keys is None:
        keys = chain_keys(text, block_bytes)
    maybe = _may_be_volatile(text, keys, block_bytes) | text.str.starts_with("[tools]\n")
    idx = pl.arg_where(maybe.fill_null(False), eager=True)
    sub = text.gather(idx)
    masked = mask_volatile(sub)
    changed = (masked != sub).fill_null(False)
    idx, sub, masked = idx.filter(changed), sub.filter(changed), masked.filter(changed)
    out = pl.DataFrame(
        {
            "masked_keys": chain_key_lists(masked, block_bytes),
            "masked_bytes": masked.str.len_bytes(),
            "window": _window_flags(sub, block_bytes),
            "span": _first_spans(sub),
        }
    )
    out = out.with_columns(shared_strings(out["span"]))
    full = pl.DataFrame({"i": pl.int_range(texts.len(), dtype=pl.UInt32, eager=True)})
    placed = out.with_columns(idx.cast(pl.UInt32).alias("i"))
    return full.join(placed, on="i", how="left", maintain_order="left").drop("i")


# A superset of _VOLATILE_RE that the regex engine runs ~2x faster: no word boundaries, ASCII digits, plus any
# other decimal digit (Unicode \d) anywhere. Only prompts it matches are masked.
_GATE_RE = "(?-u)" + _VOLATILE_RE.replace(r"\b", "")
_OTHER_DIGIT_RE = r"[\p{Nd}&&[^0-9]]"
# The gate on a window of an ASCII head (below): as _GATE_RE, but a month-name date may run past the window end
# (its `[a-z]*` is the only unbounded part of a shortest match; every other pattern's fits in _WINDOW_OVERLAP).
_MONTH_TAIL = r"[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}"
_WINDOW_GATE_RE = _GATE_RE.replace(_MONTH_TAIL, r"[a-z]*(?:\.? \d|\.? ?\z)")
_WINDOW_OVERLAP = 64  # bytes past a block's end a window reaches (the longest shortest match, a UUID, is 36)


def _may_be_volatile(texts: pl.Series, keys: pl.DataFrame, block_bytes: int) -> pl.Series:
    """Whether a text's first MASK_HEAD_CHARS may hold a volatile span (a superset of the texts mask_volatile
    changes outside the tools block), without running the regex over every head.

    Heads are mostly shared text (system prompts, resent conversation history), and the shortest match of every
    volatile pattern is at most 36 bytes long (but for the letter run of a month name, which the window gate lets
    run to the window's end). So an ASCII head is tested window by window: block k plus _WINDOW_OVERLAP bytes,
    each distinct window once (~1/4 of the head bytes on the benchmark logs). A window is identified by k and the
    chain key of the block holding its end (equal keys: equal bytes up to there). Non-ASCII texts (byte and
    character offsets differ, a window could cut a character) are tested whole, as before.
    """
    n = texts.len()
    ascii_text = (texts.str.len_bytes() == texts.str.len_chars()).fill_null(False)
    hit = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
    other = pl.arg_where(~ascii_text & texts.is_not_null(), eager=True)
    if other.len():
        head = texts.gather(other).str.slice(0, MASK_HEAD_CHARS)
        other_hit = (head.str.contains(_GATE_RE) | head.str.contains(_OTHER_DIGIT_RE)).fill_null(False)
        hit = hit.scatter(other.filter(other_hit), True)
    reach = -(-_WINDOW_OVERLAP // block_bytes)  # blocks past block k that a window can reach into
    same_text = pl.col("text_idx").shift(-reach) == pl.col("text_idx")
    last_of_text = (pl.col("text_idx") != pl.col("text_idx").shift(-1)).fill_null(True)

    def at_end(column: str) -> pl.Expr:  # the value at block k + reach, else at the text's last block
        return (
            pl.when(same_text.fill_null(False))
            .then(pl.col(column).shift(-reach))
            .otherwise(pl.when(last_of_text).then(pl.col(column)).backward_fill())
        )

    start = pl.col("block").cast(pl.Int64) * block_bytes
    windows = (
        keys.with_columns(ascii_text.gather(keys["text_idx"]).alias("ascii"), at_end("key"), at_end("end_byte"))
        .filter(pl.col("ascii") & pl.col("block").is_not_null() & (start < MASK_HEAD_CHARS))
        .select("text_idx", "block", pl.struct("key", "block").hash(53).alias("w"), pl.col("end_byte").alias("end"))
    )
    distinct = windows.filter(pl.col("w").is_first_distinct())
    content = (
        distinct.with_columns(texts.cast(pl.Binary).gather(distinct["text_idx"]).alias("b"))
        .select(pl.col("b").bin.slice(start, pl.min_horizontal(pl.col("end") - start, block_bytes + _WINDOW_OVERLAP)))
        .to_series()
        .cast(pl.String)
    )
    volatile = distinct["w"].filter(content.str.contains(_WINDOW_GATE_RE))
    flagged = windows.filter(pl.col("w").is_in(volatile.implode()))["text_idx"].unique()
    return hit.scatter(flagged, True)


def _window_flags(texts: pl.Series, block_bytes: int) -> pl.Series:
    frame = pl.DataFrame({"text": texts}).with_row_index("r")
    size = pl.col("text").str.len_bytes().cast(pl.Int64)
    exploded = frame.with_columns(
        pl.int_ranges(0, (size + block_bytes - 1) // block_bytes + 1, dtype=pl.Int64).alias("k")
    ).explode("k")
    shared = pl.min_horizontal(pl.col("k") * block_bytes, size)
    flags = exploded.select(
        "r",
        "k",
        (
            has_volatile(divergence_window(pl.col("text"), shared, block_bytes))
            | diverges_in_tools(pl.col("text"), shared)
        ).alias("flag"),
    )
    lists = flags.group_by("r", maintain_order=True).agg(pl.col("flag").sort_by("k"))
    return frame.select("r").join(lists, on="r", how="left", maintain_order="left")["flag"].alias("window")


def _first_spans(texts: pl.Series) -> pl.Series:
    """Evidence of the first volatile span (or reordered tools JSON) of each text, as find_volatile_span
    describes the span where two prompts diverge; the prompt's own first span stands for its partner's
    divergence point (they share the masked prefix, so they differ first at a volatile span)."""
    kinds = [name for name, _ in VOLATILE_PATTERNS]
    head = texts.str.slice(0, MASK_HEAD_CHARS)
    found = pl.DataFrame({"text": texts, "head": head}).with_columns(
        pl.col("head").str.find(_VOLATILE_RE).cast(pl.Int64).alias("vol_byte"),
        pl.col("head").str.extract_groups(_NAMED_RE).alias("groups"),
        _tools_divergence(texts).alias("tools_byte"),
    )
    kind = pl.lit(None, dtype=pl.String)
    value = pl.lit(None, dtype=pl.String)
    for i in reversed(range(len(kinds))):
        group = pl.col("groups").struct.field(f"g{i}")
        kind = pl.when(group.is_not_null()).then(pl.lit(kinds[i])).otherwise(kind)
        value = pl.when(group.is_not_null()).then(group).otherwise(value)
    use_tools = pl.col("tools_byte").is_not_null() & (
        pl.col("vol_byte").is_null() | (pl.col("tools_byte") < pl.col("vol_byte"))
    )
    raw = pl.col("text").cast(pl.Binary)
    spans = found.with_columns(
        pl.when(use_tools).then(pl.lit("json-order")).otherwise(kind).alias("kind"),
        pl.when(use_tools).then(pl.col("tools_byte")).otherwise(pl.col("vol_byte")).alias("byte"),
    ).with_columns(
        pl.when(use_tools)
        .then(raw.bin.slice(pl.col("byte"), 64).cast(pl.String, strict=False).str.slice(0, 16))
        .otherwise(value)
        .alias("value"),
        raw.bin.slice(0, pl.col("byte")).cast(pl.String).alias("pre"),
        raw.bin.slice(pl.col("byte")).cast(pl.String).str.extract(r"^([^\n]*)").alias("rest"),
    )
    described = _describe_prefixes(spans["pre"])
    spans = spans.join(described, on="pre", how="left", maintain_order="left")
    # the span's value masked where it starts (polars replaces only fixed patterns; a second copy of the same
    # value on the line is left as it is)
    masked_line = pl.concat_str(
        pl.col("line_head"),
        pl.lit("<"),
        pl.col("kind"),
        pl.lit(">"),
        pl.col("rest").str.slice(pl.col("value").str.len_chars()),
    ).str.slice(0, SPAN_LINE_CHARS)
    return (
        spans.select(
            pl.when(pl.col("byte").is_not_null()).then(
                pl.concat_str(
                    [
                        pl.col("kind"),
                        pl.col("segment"),
                        pl.col("line").cast(pl.String),
                        pl.col("line_in_segment").cast(pl.String),
                        pl.col("pre").str.len_chars().cast(pl.String),
                        pl.col("byte").cast(pl.String),
                        masked_line,
                    ],
                    separator=SPAN_SEP,
                )
            )
        )
        .to_series()
        .alias("span")
    )


def _describe_prefixes(pre: pl.Series) -> pl.DataFrame:
    """Per distinct text before a span: its line number, segment, line within the segment, start of its line."""
    rows = []
    for text in pre.drop_nulls().unique().to_list():
        rows.append(
            {
                "pre": text,
                "line": text.count("\n") + 1,
                "segment": _segment_at(text, len(text)),
                "line_in_segment": _line_in_segment(text, len(text)),
                "line_head": text[text.rfind("\n") + 1 :],
            }
        )
    schema = {
        "pre": pl.String,
        "line": pl.Int64,
        "segment": pl.String,
        "line_in_segment": pl.Int64,
        "line_head": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _line_in_segment(text: str, offset: int) -> int:
    """1-based line of `offset` within its "[role]" block."""
    marker = max(text.rfind("\n[", 0, offset), -1)
    start = text.find("\n", marker + 1) + 1 if marker >= 0 or text.startswith("[") else 0
    return text.count("\n", start, offset) + 1


def _tools_divergence(texts: pl.Series) -> pl.Series:
    """Byte offset where the leading tools JSON first differs from its canonical form (null: no reordering)."""
    tools = texts.str.extract(_TOOLS_RE, 1)
    table = []
    for raw in tools.drop_nulls().unique().to_list():
        canonical = canonical_tools_json(raw)
        if canonical != raw:
            table.append(
                {"tools": raw, "at": len(b"[tools]\n") + len(raw[: _common_prefix_len(raw, canonical)].encode())}
            )
    frame = pl.DataFrame(table, schema={"tools": pl.String, "at": pl.Int64})
    return tools.to_frame("tools").join(frame, on="tools", how="left", maintain_order="left")["at"]


# ---------------------------------------------------------------------------------------------------------
# Chain keys stored compactly: the leading keys many prompts share (tools, system prompt, examples) once

SHARED_MIN_TEXTS = 8  # a leading key held by at least this many lists of a batch goes into the shared head
_KEY_BYTES = 8


def split_key_lists(lists: pl.Series, min_texts: int = SHARED_MIN_TEXTS) -> pl.DataFrame:
    """Each key list as `head` (Binary: its leading keys that at least `min_texts` lists of the batch hold,
    packed by pack_keys; null when none) and `tail` (List[UInt64]: the keys after the head; the whole list when
    the head is null, null for a null list). `join_key_lists(head, tail)` gives `lists` back exactly.

    Requests with the same system prompt repeat its keys: the head column is a view per row (16 bytes) into one
    copy of each distinct head of the batch, instead of 8 bytes per key per row. Where the split falls changes
    the memory only, never the keys.
    """
    frame = pl.DataFrame({"keys": lists.cast(pl.List(pl.UInt64))}).with_row_index("i")
    # Keys are prefix-closed (a held key's predecessors are held too), so the held keys of a list are its leading
    # run. Any cut would give the list back exactly: the head's last key names the whole head (as any chain key
    # names its whole prefix), which is all join_key_lists relies on.
    leading = (
        frame.explode("keys")
        .filter(pl.col("keys").is_not_null())
        .select("i", (pl.len().over("keys") >= min_texts).alias("held"))
        .group_by("i")
        .agg(pl.col("held").sum().cast(pl.Int64).alias("n"))
    )
    frame = frame.join(leading, on="i", how="left", maintain_order="left").with_columns(pl.col("n").fill_null(0))
    # the last key of a head identifies all of it (prefix-closed keys): one packed copy per distinct id
    frame = frame.with_columns(pl.when(pl.col("n") > 0).then(pl.col("keys").list.get(pl.col("n") - 1)).alias("id"))
    distinct = frame.filter(pl.col("id").is_not_null() & pl.col("id").is_first_distinct())
    table = distinct.select("id", pack_keys(distinct.select(pl.col("keys").list.head("n")).to_series()).alias("head"))
    joined = frame.join(table, on="id", how="left", maintain_order="left")
    return joined.select("head", pl.col("keys").list.slice(pl.col("n")).alias("tail"))


def join_key_lists(head: pl.Series, tail: pl.Series) -> pl.Series:
    """The key lists split_key_lists cut: each distinct head unpacked once, then put in front of its tail."""
    frame = pl.DataFrame({"head": head.cast(pl.Binary), "tail": tail.cast(pl.List(pl.UInt64))})
    frame = frame.with_columns(_last_packed(pl.col("head")).alias("id"))
    distinct = frame.filter(pl.col("id").is_not_null() & pl.col("id").is_first_distinct())
    table = pl.DataFrame({"id": distinct["id"], "keys": unpack_keys(distinct["head"])})
    joined = frame.join(table, on="id", how="left", maintain_order="left")
    full = pl.when(pl.col("head").is_null()).then(pl.col("tail")).otherwise(pl.concat_list("keys", "tail"))
    return joined.select(full.alias(tail.name)).to_series()


def exploded_keys(head: pl.Series, tail: pl.Series, start: int = 0, stop: int | None = None) -> pl.DataFrame:
    """join_key_lists(head, tail) exploded, without building the lists (the concatenation is the costly part):
    one row per key, in row then key order: `row` (position in the inputs), `block` (the key's position in its
    list), `key`. Empty and null lists give no rows. Only the keys at positions start <= block < stop when given
    (a slice of the lists' depth: the rows outside it are never made)."""
    frame = pl.DataFrame({"head": head.cast(pl.Binary), "tail": tail.cast(pl.List(pl.UInt64))})
    frame = frame.with_columns(_last_packed(pl.col("head")).alias("id"))
    distinct = frame.filter(pl.col("id").is_not_null() & pl.col("id").is_first_distinct())
    heads = distinct.select("id", unpack_keys(distinct["head"]).alias("keys"))
    size = pl.col("keys").list.len()
    heads = heads.with_columns((size.cum_sum() - size).cast(pl.Int64).alias("head_start"))
    # all keys in one column: the distinct heads' keys, then every tail's (keys are never null)
    flat = pl.concat([heads["keys"].explode(), frame["tail"].explode().drop_nulls()])
    n_head = pl.col("head").bin.size().fill_null(0) // _KEY_BYTES
    n_tail = pl.col("tail").list.len().fill_null(0).cast(pl.Int64)
    rows = (
        frame.join(heads.select("id", "head_start"), on="id", how="left", maintain_order="left")
        .select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
            n_head.cast(pl.Int64).alias("n_head"),
            pl.col("head_start").fill_null(0),
            (n_tail.cum_sum() - n_tail + heads["keys"].list.len().sum()).alias("tail_start"),
            pl.int_ranges(start, _below(n_head + n_tail, stop), dtype=pl.Int64).alias("block"),
        )
        .explode("block")
        .filter(pl.col("block").is_not_null())
    )
    in_tail = pl.col("tail_start") + pl.col("block") - pl.col("n_head")
    at = pl.when(pl.col("block") < pl.col("n_head")).then(pl.col("head_start") + pl.col("block")).otherwise(in_tail)
    index = rows.select(at).to_series()
    return rows.select("row", pl.col("block").cast(pl.UInt32), flat.gather(index).alias("key"))


def _below(count: pl.Expr, stop: int | None) -> pl.Expr:
    return count if stop is None else pl.min_horizontal(count, pl.lit(stop, dtype=pl.Int64))


def key_count(head: pl.Expr, tail: pl.Expr) -> pl.Expr:
    """The length of join_key_lists(head, tail), without joining them."""
    return (head.bin.size().fill_null(0) // _KEY_BYTES + tail.list.len().fill_null(0)).cast(pl.Int64)


def last_key(head: pl.Expr, tail: pl.Expr) -> pl.Expr:
    """The last key of join_key_lists(head, tail) (null for an empty or null list), without joining them."""
    return tail.list.last().fill_null(_last_packed(head))


def first_key(head: pl.Expr, tail: pl.Expr) -> pl.Expr:
    """The first key of join_key_lists(head, tail) (null for an empty or null list), without joining them."""
    packed = head.bin.slice(0, _KEY_BYTES)
    first_packed = pl.when(packed.bin.size() == _KEY_BYTES).then(
        packed.bin.reinterpret(dtype=pl.UInt64, endianness=_ENDIAN)
    )
    return first_packed.fill_null(tail.list.first())


def _last_packed(head: pl.Expr) -> pl.Expr:
    # pack_keys writes the machine's byte order (Arrow buffers)
    return head.bin.slice(-_KEY_BYTES, _KEY_BYTES).bin.reinterpret(dtype=pl.UInt64, endianness=_ENDIAN)


_ENDIAN: Literal["little", "big"] = "little" if sys.byteorder == "little" else "big"


def pack_keys(lists: pl.Series) -> pl.Series:
    """List[UInt64] -> Binary: each list's keys as 8 bytes each (machine order), one buffer copy, no per-row
    Python. No null lists or keys (a packed list has no place for them)."""
    lists = lists.cast(pl.List(pl.UInt64))
    if lists.null_count() or (lists.list.drop_nulls().list.len() != lists.list.len()).any():
        raise ValueError("pack_keys takes lists of keys without nulls")
    array = lists.to_arrow()
    offsets = pc.subtract(array.offsets, array.offsets[0])
    flat = pa.concat_arrays([array.flatten()]) if len(array) else pa.array([], pa.uint64())  # offset 0
    data = flat.buffers()[1] or pa.py_buffer(b"")
    binary = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(),
        len(array),
        [None, pc.multiply(offsets, _KEY_BYTES).buffers()[1], data.slice(0, len(flat) * _KEY_BYTES)],
    )
    return pl.Series(lists.name, binary, dtype=pl.Binary)


def unpack_keys(packed: pl.Series) -> pl.Series:
    """pack_keys reversed: Binary -> List[UInt64] (no nulls). Meant for a few distinct values: one row per key."""
    if packed.null_count():
        raise ValueError("unpack_keys takes packed keys without nulls")
    frame = pl.DataFrame({"b": packed.cast(pl.Binary)}).with_row_index("r")
    at = pl.col("k") * _KEY_BYTES
    keys = (
        frame.with_columns(pl.int_ranges(0, pl.col("b").bin.size() // _KEY_BYTES, dtype=pl.Int64).alias("k"))
        .explode("k")
        .filter(pl.col("k").is_not_null())  # an empty list explodes to one null row
        .select("r", pl.col("b").bin.slice(at, _KEY_BYTES).bin.reinterpret(dtype=pl.UInt64, endianness=_ENDIAN))
        .group_by("r", maintain_order=True)
        .agg("b")
    )
    lists = frame.select("r").join(keys, on="r", how="left", maintain_order="left")["b"]
    return lists.fill_null(pl.lit([], dtype=pl.List(pl.UInt64))).alias(packed.name)
