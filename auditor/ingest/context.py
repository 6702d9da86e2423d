"""What a per-record parser knows about where its record came from, and what it may return."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

Row = dict[str, Any]

# A parser returns a canonical row (billed call), a str (the kind of a non-billable record, counted in
# `ignored`), or DEFERRED when the record is held by run state and accounted for in the module's finish().
DEFERRED = None
Parsed = Row | str | None


@dataclass
class RecordContext:
    file: str
    line: int
    attribution: Mapping[str, Sequence[str]]
    state: dict[str, Any] = field(default_factory=dict)  # per run, keyed by module (dedupe, joins)
    file_state: dict[str, Any] = field(default_factory=dict)  # per file (Codex turn model, ...)

    @cached_property
    def attribution_keys(self) -> frozenset[str]:
        """Every key the attribution columns look for; `attribution` is fixed for the context's life."""
        return frozenset(key for keys in self.attribution.values() for key in keys)

    @property
    def fallback_id(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"

    def base(self, source_format: str) -> Row:
        return {
            "source_format": source_format,
            "source_file": self.file,
            "source_line": self.line,
            "tokens_estimated": False,
            "batch": False,
        }
