"""Data shipped in the wheel (price tables, rule docs) that lives at the top of the repo in a checkout.

pyproject maps the repo's pricing/ and docs/rules/ to the packages auditor.pricing_data and
auditor.rules_docs. An installed llm-audit finds them there; code run straight from a checkout
(tests with the repo on sys.path) finds the repo folders instead.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_REPO_FOLDERS = {"auditor.pricing_data": REPO_ROOT / "pricing", "auditor.rules_docs": REPO_ROOT / "docs" / "rules"}


def data_folder(package: str) -> Traversable:
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        return _REPO_FOLDERS[package]


def data_files(package: str, suffix: str) -> list[Traversable]:
    """The files of `package` ending in `suffix`, sorted by name."""
    return sorted((p for p in data_folder(package).iterdir() if p.name.endswith(suffix)), key=lambda p: p.name)
