"""Making a webhook's JSON safe to keep and to read, before anything is parsed from it.

A signed delivery can still hold what no database column takes: non-finite numbers
(`NaN`, `Infinity`, `1e400`), NUL characters (PostgreSQL's text and jsonb refuse
them), lone UTF-16 surrogates (not encodable as UTF-8), integers past 64 bits, and
nesting deep enough to exhaust the interpreter's recursion. One such value used to fail
its whole delivery on every retry. `json_safe` replaces them, so that every event can be
stored, and says what it changed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# Meta's payloads nest a handful of levels; anything deeper is cut and noted.
MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
TOO_DEEP = "[nested too deep]"


@dataclass
class Changes:
    """What `json_safe` replaced, in words, for the event's note."""

    notes: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


def clean_text(value: str, changes: Changes | None = None) -> str:
    """`value` without NUL characters and lone surrogates (each becomes U+FFFD)."""
    cleaned, count = _UNSTORABLE.subn(REPLACEMENT, value)
    if count and changes is not None:
        changes.add("NUL or unpaired surrogate characters replaced")
    return cleaned


def json_safe(value: Any, changes: Changes, depth: int = 0) -> Any:
    """A copy of decoded JSON that every database can store, never deeper than
    MAX_DEPTH. Non-finite numbers become null, integers past 64 bits their decimal
    string, unstorable characters U+FFFD (in keys too)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return clean_text(value, changes)
    if isinstance(value, int):
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return value
        changes.add("an integer past 64 bits kept as text")
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changes.add("a non-finite number (NaN, Infinity) replaced by null")
        return None
    if depth >= MAX_DEPTH:
        changes.add(f"nesting deeper than {MAX_DEPTH} levels cut")
        return TOO_DEEP
    if isinstance(value, list):
        return [json_safe(item, changes, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            clean_text(str(key), changes): json_safe(item, changes, depth + 1)
            for key, item in value.items()
        }
    return clean_text(str(value), changes)


def clip(value: str, limit: int, what: str, changes: Changes) -> str:
    """`value`, cut to `limit` characters (noted when it was longer)."""
    if len(value) <= limit:
        return value
    changes.add(f"{what} cut to {limit} characters")
    return value[:limit]
