"""Cost levers, one module each; the registry loads them in plan order (report.LEVER_ORDER)."""

from __future__ import annotations

import importlib
import importlib.util

from auditor.levers.base import Lever
from auditor.report import LEVER_ORDER

# lever id -> module in auditor.levers that defines `LEVER` (an object following levers.base.Lever)
LEVER_MODULES: dict[str, str] = {
    "retries": "retries",
    "response_cache": "response_cache",
    "model_tiering": "tiering",
    "context_trimming": "context",
    "output_caps": "output_caps",
    "prompt_caching": "caching",
    "batching": "batching",
}


def available_levers() -> list[Lever]:
    """The levers this build has, in plan order. A lever not written yet is simply absent."""
    levers: list[Lever] = []
    for lever_id in LEVER_ORDER:
        module_name = f"auditor.levers.{LEVER_MODULES[lever_id]}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        levers.append(module.LEVER)
    return levers
