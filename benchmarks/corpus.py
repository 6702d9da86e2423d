"""A seeded source of real English prose with a large vocabulary, for benchmark logs.

Sentences come from the docstrings of the Python standard library and of the packages installed next to this
interpreter (thousands of modules), so token counts and BPE behaviour look like real prompts, unlike lorem ipsum
or a 16-word vocabulary. The sentence list is a pure function of the interpreter and its installed packages
(the same venv gives the same data), cached under benchmarks/data/ so later runs skip the parse.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sys
import sysconfig
import warnings
from pathlib import Path

CACHE_DIR = Path(__file__).resolve().parent / "data"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODEY = re.compile(r"[<>{}\[\]=|\\@#$`_]|\.\.\.|::|\w\.\w|\(\)")


def _docstrings(path: Path) -> list[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old modules carry invalid escape sequences
            tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    return [doc for node in nodes if (doc := ast.get_docstring(node))]


def _prose(doc: str) -> list[str]:
    """Sentences of a docstring that read like prose (no code, doctests or tables)."""
    out = []
    for paragraph in re.split(r"\n\s*\n", doc):
        if paragraph.lstrip().startswith((">>>", "..", "-", "*", ":")):
            continue
        flat = " ".join(paragraph.split())
        for sentence in _SENTENCE_END.split(flat):
            words = sentence.split()
            if (
                6 <= len(words) <= 60
                and sentence[0].isupper()
                and sentence[-1] in ".!?"
                and not _CODEY.search(sentence)
            ):
                out.append(sentence)
    return out


def prose_sentences() -> list[str]:
    """Distinct prose sentences of the stdlib's and installed packages' docstrings, in a stable (sorted) order."""
    paths = sysconfig.get_paths()
    stdlib = Path(paths["stdlib"])
    roots = [stdlib, *sorted({Path(paths["purelib"]), Path(paths["platlib"])} - {stdlib})]
    key = hashlib.sha256(f"{sys.version}|{roots}".encode()).hexdigest()[:12]
    cache = CACHE_DIR / f"corpus-{key}.txt"
    if cache.exists():
        return cache.read_text(encoding="utf-8").split("\n")
    found: set[str] = set()
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        if path.is_relative_to(stdlib / "site-packages") or {"test", "tests"} & set(path.parts):
            continue
        for doc in _docstrings(path):
            found.update(_prose(doc))
    sentences = sorted(found)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    cache.write_text("\n".join(sentences), encoding="utf-8")
    return sentences


class TextSource:
    """Paragraphs of `n` characters or so, drawn from the corpus with a seeded RNG."""

    def __init__(self, rng: random.Random, sentences: list[str]) -> None:
        self._rng = rng
        self._sentences = sentences

    def text(self, chars: int) -> str:
        parts: list[str] = []
        size = 0
        pick, count = self._rng.randrange, len(self._sentences)
        while size < chars:
            sentence = self._sentences[pick(count)]
            parts.append(sentence)
            size += len(sentence) + 1
        return " ".join(parts)
