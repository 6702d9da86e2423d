"""Command-line paths -> the files to read: files as given, folders recursively, glob patterns."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from auditor.ingest.reader import base_suffix
from auditor.ingest.result import SkippedRecord

LOG_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet")
_GLOB_CHARS = set("*?[")


def is_log_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and base_suffix(path) in LOG_SUFFIXES


def _folder(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_log_file(p)]


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[SkippedRecord]]:
    """Files (any name: content is sniffed), folders (recursively, log suffixes only), globs.

    Returns the files sorted and de-duplicated, and one SkippedRecord (line None) per path that gave nothing.
    """
    found: dict[Path, Path] = {}
    skipped: list[SkippedRecord] = []
    for given in paths:
        text = str(given)
        path = Path(text)
        if _GLOB_CHARS & set(text) and not path.exists():
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [m for m in matches if m.is_file()] + [f for m in matches if m.is_dir() for f in _folder(m)]
            if not files:
                skipped.append(SkippedRecord(text, None, "no files match this pattern"))
        elif path.is_dir():
            files = _folder(path)
            if not files:
                skipped.append(
                    SkippedRecord(
                        text,
                        None,
                        "no log files in this folder (looked for *.jsonl, *.ndjson, *.json, *.parquet, "
                        "optionally .gz or .zst)",
                    )
                )
        elif path.is_file():
            files = [path]
        elif path.exists():
            skipped.append(SkippedRecord(text, None, "not a regular file"))
            files = []
        else:
            skipped.append(SkippedRecord(text, None, "no such file or directory; check the path"))
            files = []
        for file in files:
            found.setdefault(file.resolve(), file)
    return sorted(found.values(), key=str), skipped
