"""llm-audit.yaml: thresholds per lever, attribution keys, price overrides, rule selection, CI policy.

Every section is optional. Unknown top-level keys are errors (a typo must not silently do nothing);
each lever validates its own section and documents its defaults in docs/rules/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.report import LEVER_ORDER

DEFAULT_CONFIG_NAME = "llm-audit.yaml"

# Metadata / tag keys that name the feature, tenant, user and session, first match wins.
DEFAULT_ATTRIBUTION: dict[str, list[str]] = {
    "feature": ["feature", "endpoint", "route", "task", "use_case", "prompt_name", "operation"],
    "tenant": ["tenant", "tenant_id", "customer", "customer_id", "org", "org_id", "team", "team_id", "account"],
    "user": ["user", "user_id", "end_user", "end_user_id"],
    "session_id": ["session_id", "session", "conversation_id", "thread_id", "trace_id", "run_id"],
}

_TOP_LEVEL_KEYS = {"levers", "attribution", "pricing", "select", "ignore", "policy", "privacy"}


class ConfigError(ValueError):
    """A problem in llm-audit.yaml; the message names the file and the key."""


@dataclass
class Config:
    levers: dict[str, dict[str, Any]] = field(default_factory=dict)  # lever id -> its options
    attribution: dict[str, list[str]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTION))
    pricing: dict[str, Any] = field(default_factory=dict)  # overrides: see auditor.prices
    select: list[str] = field(default_factory=list)  # finding codes or prefixes to keep (empty = all)
    ignore: list[str] = field(default_factory=list)  # finding codes or prefixes to drop
    policy: dict[str, Any] = field(default_factory=dict)  # CI gate, see auditor.gate
    privacy: dict[str, Any] = field(default_factory=dict)  # show_full_text: bool
    source: str | None = None  # the file it came from

    def lever_options(self, lever_id: str) -> dict[str, Any]:
        return dict(self.levers.get(lever_id) or {})

    def code_enabled(self, code: str) -> bool:
        if any(code.startswith(prefix) for prefix in self.ignore):
            return False
        return not self.select or any(code.startswith(prefix) for prefix in self.select)


def load_config(path: Path | None, *, search_dir: Path | None = None) -> Config:
    """Load `path`, or ./llm-audit.yaml when it exists, or the defaults."""
    if path is None:
        candidate = (search_dir or Path.cwd()) / DEFAULT_CONFIG_NAME
        if not candidate.is_file():
            return Config()
        path = candidate
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    return parse_config(raw or {}, source=str(path))


def parse_config(raw: Any, *, source: str = "<config>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    unknown = sorted(set(raw) - _TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_TOP_LEVEL_KEYS))}")
    levers = raw.get("levers") or {}
    if not isinstance(levers, dict):
        raise ConfigError(f"{source}: 'levers' must be a mapping of lever id to options")
    bad = sorted(set(levers) - set(LEVER_ORDER))
    if bad:
        raise ConfigError(f"{source}: levers.{bad[0]} is not a lever; lever ids: {', '.join(LEVER_ORDER)}")
    attribution = dict(DEFAULT_ATTRIBUTION)
    for key, names in (raw.get("attribution") or {}).items():
        if key not in DEFAULT_ATTRIBUTION:
            raise ConfigError(f"{source}: attribution.{key} is unknown; use one of {', '.join(DEFAULT_ATTRIBUTION)}")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{source}: attribution.{key} must be a key name or a list of key names")
        attribution[key] = list(names)
    for key in ("select", "ignore"):
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: '{key}' must be a list of finding codes or prefixes (e.g. LA1, LA203)")
    return Config(
        levers={k: dict(v or {}) for k, v in levers.items()},
        attribution=attribution,
        pricing=dict(raw.get("pricing") or {}),
        select=list(raw.get("select") or []),
        ignore=list(raw.get("ignore") or []),
        policy=dict(raw.get("policy") or {}),
        privacy=dict(raw.get("privacy") or {}),
        source=source,
    )
