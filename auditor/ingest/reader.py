"""Open log files and stream their records, whatever the container.

Containers: JSONL / NDJSON (one record per line), JSON (one object, an array, or concatenated objects; array
elements are numbered like lines), Parquet (rows), each JSON kind optionally gzip- or zstd-compressed
(recognised by magic bytes, not by name). Everything streams in fixed-size chunks, so memory does not grow
with the file; only the output rows are kept.

`iter_records` yields Record(line, obj, error): obj is a parsed JSON value, or error is why that line could
not be read (malformed JSON, not UTF-8, file truncated...). Problems with the whole file have line None.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 1 << 20  # decompressed bytes per read
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
LINE_SUFFIXES = (".jsonl", ".ndjson")

Progress = Callable[[int], None] | None


@dataclass(slots=True)
class Record:
    line: int | None
    obj: Any = None
    error: str | None = None


class ReadError(Exception):
    """The byte stream itself failed (truncated or corrupt compression)."""


def magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def base_suffix(path: Path) -> str:
    """.jsonl for logs.jsonl.gz: the suffix under any compression suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".zst", ".zstd"):
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _gunzip(raw: BinaryIO) -> Iterator[bytes]:
    """Streaming gunzip that hands out every byte it could decompress before a truncation (GzipFile does not)."""
    inflater = zlib.decompressobj(wbits=31)
    while True:
        data = raw.read(CHUNK)
        if not data:
            if not inflater.eof:
                raise ReadError("gzip stream ends early: the file is truncated")
            return
        while data:
            try:
                out = inflater.decompress(data)
            except zlib.error as exc:
                raise ReadError(f"gzip data is corrupt ({exc})") from None
            if out:
                yield out
            data = inflater.unused_data if inflater.eof else b""
            if inflater.eof and data:  # concatenated gzip members (e.g. appended log rotations)
                inflater = zlib.decompressobj(wbits=31)


def _unzstd(raw: BinaryIO) -> Iterator[bytes]:
    stream = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")
    while True:
        try:
            data = stream.read(CHUNK // 4)
        except (OSError, pa.ArrowException) as exc:
            what = "the file is truncated" if "truncat" in str(exc).lower() else "the data is corrupt"
            raise ReadError(f"zstd stream cannot be decompressed: {what} ({exc})") from None
        if not data:
            return
        yield bytes(data)


def _plain(raw: BinaryIO) -> Iterator[bytes]:
    while data := raw.read(CHUNK):
        yield data


def _chunks(path: Path, progress: Progress) -> Iterator[bytes]:
    """Decompressed bytes of the file; progress gets the raw (on-disk) bytes consumed."""
    head = magic(path)
    with path.open("rb") as raw:
        if head.startswith(GZIP_MAGIC):
            chunks = _gunzip(raw)
        elif head.startswith(ZSTD_MAGIC):
            chunks = _unzstd(raw)
        else:
            chunks = _plain(raw)
        seen = 0
        for data in chunks:
            position = raw.tell()
            if progress is not None and position > seen:
                progress(position - seen)
                seen = position
            yield data
        if progress is not None and raw.tell() > seen:
            progress(raw.tell() - seen)


class _Source:
    """Chunks with a push-back buffer so the container type can be sniffed from the start.

    A ReadError met while sniffing is held back until the chunks read before it have been handed out.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending: list[bytes] = []
        self._error: ReadError | None = None

    def next(self) -> bytes | None:
        if self._pending:
            return self._pending.pop(0)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return next(self._chunks, None)

    def peek_first_line(self) -> bytes:
        """Bytes up to the first non-blank line's end (or EOF), kept for reading again."""
        taken: list[bytes] = []
        while True:
            try:
                chunk = next(self._chunks, None)
            except ReadError as exc:
                self._error = exc
                break
            if chunk is None:
                break
            taken.append(chunk)
            joined = b"".join(taken).lstrip()
            if b"\n" in joined or len(joined) > 64 * CHUNK:
                break
        self._pending = taken
        return b"".join(taken).lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]

    @property
    def failed_early(self) -> ReadError | None:
        return self._error if not self._pending else None


def iter_records(path: Path, progress: Progress = None) -> Iterator[Record]:
    """Records of a JSON-family file (see module docstring). Parquet files go through read_parquet_rows."""
    source = _Source(_chunks(path, progress))
    yield from iter_records_from(source, path, source.peek_first_line())


@dataclass
class LineBlock:
    """Complete JSONL lines first_line.. (the last one may lack its newline at EOF), for the fast path."""

    first_line: int
    data: bytes


def iter_items(path: Path, progress: Progress = None, block_bytes: int = 64 << 20) -> Iterator[Record | LineBlock]:
    """iter_records, except that a JSONL file comes as LineBlocks of about `block_bytes` (Records only for
    read errors, numbered as iter_records numbers them)."""
    source = _Source(_chunks(path, progress))
    first = source.peek_first_line()
    if not first.strip() or b"\x00" in first[:8192]:
        yield from iter_records_from(source, path, first)
        return
    if first.startswith(b"[") or not (base_suffix(path) in LINE_SUFFIXES or _parses(first)):
        yield from _values(source)
        return
    number = 0
    pending: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = source.next()
        except ReadError as exc:
            data = b"".join(pending)
            cut = data.rfind(b"\n") + 1
            if cut:
                yield LineBlock(number + 1, data[:cut])
                number += data.count(b"\n", 0, cut)
            yield Record(number + 1, error=f"{exc}; the lines before were read, the rest is lost")
            return
        if chunk is None:
            break
        pending.append(chunk)
        size += len(chunk)
        if size >= block_bytes:
            data = b"".join(pending)
            cut = data.rfind(b"\n") + 1
            if cut:
                yield LineBlock(number + 1, data[:cut])
                number += data.count(b"\n", 0, cut)
                pending, size = [data[cut:]], len(data) - cut
    data = b"".join(pending)
    if data:
        yield LineBlock(number + 1, data)


def iter_records_from(source: _Source, path: Path, first: bytes) -> Iterator[Record]:
    """The container decision of iter_records, on an already sniffed source."""
    if not first.strip():
        failure = source.failed_early
        yield Record(None, error=str(failure) if failure else "empty file: nothing to read")
        return
    if b"\x00" in first[:8192]:
        yield Record(None, error="binary file (not JSON, JSONL or Parquet text); is it compressed with another tool?")
        return
    if first.startswith(b"["):
        yield from _values(source)
    elif base_suffix(path) in LINE_SUFFIXES or _parses(first):
        yield from _lines(source)
    else:
        yield from _values(source)


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _lines(source: _Source) -> Iterator[Record]:
    number = 0
    rest = b""
    while True:
        try:
            chunk = source.next()
        except ReadError as exc:
            yield Record(number + 1, error=f"{exc}; the lines before were read, the rest is lost")
            return
        if chunk is None:
            break
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for raw in parts:
            number += 1
            record = line_record(number, raw)
            if record is not None:
                yield record
    if rest.strip():
        record = line_record(number + 1, rest)
        if record is not None:
            yield record


# orjson reads the same values as json.loads except integers outside [-2**63, 2**64) (it makes them floats, of
# magnitude >= 2**63). Such a line goes to json. Scanning every line's bytes for a run of 19 digits cost more than
# orjson itself, so the scan runs only when orjson's own serialization of the result may hold a float of that size:
# orjson writes every float >= 1e16 with an exponent ("e+18"), so a line with no "e+" in it has none. Everything
# orjson refuses goes to json too, so results and messages are json's.
_DIGITS_AS_9 = bytes.maketrans(b"012345678", b"999999999")
_BIG_INT = b"9" * 19  # -2**63 - 1 has 19 digits


def _orjson_exact(raw: bytes, obj: Any) -> bool:
    """Whether orjson's `obj` for `raw` is what json.loads gives (no integer too big for orjson in the line)."""
    try:
        written = orjson.dumps(obj)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: look at the bytes
        return _BIG_INT not in raw.translate(_DIGITS_AS_9)
    plus = written.find(b"+")  # "+" is rare in text (one line in five here) and found at memchr speed
    while plus >= 0:
        if written[plus - 1 : plus] == b"e":
            return _BIG_INT not in raw.translate(_DIGITS_AS_9)
        plus = written.find(b"+", plus + 1)
    return True


def line_record(number: int, raw: bytes) -> Record | None:
    """One JSONL line as the per-record path reads it (None for a blank line)."""
    raw = raw.strip()
    if number == 1:
        raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not raw:
        return None  # blank lines are layout, not records
    if b"\x00" in raw:
        return Record(number, error="binary data, not a JSON line")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # invalid UTF-8, NaN, a lone surrogate, a syntax error: json decides, with its own message
    else:
        if _orjson_exact(raw, obj):
            return Record(number, obj=obj)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Record(number, error=f"not valid UTF-8 text ({exc.reason} at byte {exc.start})")
    try:
        return Record(number, obj=_valid_unicode(json.loads(text), text))
    except ValueError as exc:
        return Record(number, error=f"malformed JSON: {exc}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_unicode(value: Any, source: str) -> Any:
    """`value` with every lone surrogate (a `\\ud800`-style escape without its pair, e.g. an emoji cut in half by
    a log writer) replaced by U+FFFD: json accepts them, but they cannot be encoded, hashed or stored in polars.
    Only a \\u escape makes one, so text without "\\ud"/"\\uD" is returned as is, unwalked."""
    if "\\ud" not in source and "\\uD" not in source:
        return value
    return _replace_surrogates(value)


def _replace_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    return value


_DECODER = json.JSONDecoder()
_SKIP = " \t\r\n,"


def _values(source: _Source) -> Iterator[Record]:
    """A JSON array (elements numbered 1..n) or a sequence of concatenated JSON values, streamed."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf, pos, eof, index, started, in_array = "", 0, False, 0, False, False

    def more() -> bool:
        nonlocal buf, pos, eof
        chunk = source.next()
        if chunk is None:
            eof = True
            buf = buf[pos:] + decoder.decode(b"", final=True)
        else:
            buf = buf[pos:] + decoder.decode(chunk)
        pos = 0
        return chunk is not None

    try:
        more()
        while True:
            while pos < len(buf) and buf[pos] in _SKIP:
                pos += 1
            if pos < len(buf) and not started:
                started = True
                if buf[pos] == "\ufeff":
                    pos += 1
                    continue
                if buf[pos] == "[":
                    in_array, pos = True, pos + 1
                    continue
            if pos >= len(buf):
                if eof or not more():
                    return
                continue
            if in_array and buf[pos] == "]":
                return
            try:
                value, end = _DECODER.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                incomplete = exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and not eof and more():
                    continue
                yield Record(index + 1, error=f"malformed JSON: {exc.msg}; the rest of the file cannot be read")
                return
            if end >= len(buf) and not eof and more():
                continue  # a value touching the buffer end may be cut short (e.g. a number): read on
            index += 1
            yield Record(index, obj=_valid_unicode(value, buf[pos:end]))
            pos = end
    except ReadError as exc:
        yield Record(index + 1, error=f"{exc}; the elements before were read, the rest is lost")
    except UnicodeDecodeError as exc:
        yield Record(index + 1, error=f"not valid UTF-8 text ({exc.reason}); the rest of the file cannot be read")


def parquet_columns(path: Path) -> list[str]:
    return list(pq.ParquetFile(path).schema_arrow.names)


def read_parquet_rows(path: Path, progress: Progress = None) -> Iterator[Record]:
    """Rows of a non-canonical Parquet file as dicts, numbered from 1, read in batches."""
    parquet = pq.ParquetFile(path)
    number = 0
    for batch in parquet.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            number += 1
            yield Record(number, obj=row)
    if progress is not None:
        progress(path.stat().st_size)
