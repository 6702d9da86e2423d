"""Validation of a lever's options (its section of llm-audit.yaml): errors name the key and what it takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditor.config import ConfigError


def reject_unknown(raw: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """A misspelt option must not silently do nothing."""
    allowed = set(known)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")


def number(
    raw: Mapping[str, Any], key: str, default: float, where: str, *, upper: float | None = None, unit: str = ""
) -> float:
    """A number >= 0 (and at most `upper` when given)."""
    value = raw.get(key, default)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or value < 0 or (upper is not None and value > upper):
        kind = f"a number{' of ' + unit if unit else ''}"
        bounds = f"between 0 and {upper:g}" if upper is not None else ">= 0"
        raise ConfigError(f"{where}.{key} must be {kind} {bounds}")
    return float(value)


def count(raw: Mapping[str, Any], key: str, default: int, where: str) -> int:
    """A whole number >= 0."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.{key} must be a whole number >= 0")
    return value


def flag(raw: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be true or false")
    return value


def names(raw: Mapping[str, Any], key: str, default: list[str], where: str) -> list[str]:
    """A list of names (a single name is accepted as a list of one)."""
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of names")
    return list(value)
