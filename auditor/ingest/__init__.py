"""Ingest: log files of many source formats -> the canonical request table (auditor.schema.INGEST_SCHEMA).

Public API: read_paths, expand_paths, IngestResult, SkippedRecord, FORMATS. One module per source format
(envelope, openai_batch, anthropic_batch, litellm, canonical, claude_code, codex), detect.py for per-record
detection, reader.py for containers and compression, usage.py for token semantics.
"""

from auditor.ingest.detect import FORMATS
from auditor.ingest.paths import expand_paths
from auditor.ingest.result import IngestResult, SkippedRecord
from auditor.ingest.run import read_paths

__all__ = ["FORMATS", "IngestResult", "SkippedRecord", "expand_paths", "read_paths"]
