"""The `.env` file: `KEY=VALUE` lines that the settings read under the environment.

`make run` writes one on its first run (DEBUG=1 and generated development secrets), so
that `manage.py` commands work as the README writes them. Variables of the environment
win over the file. The format is the common subset of dotenv files: blank lines and
`#` comments, an optional `export `, values bare (a ` #` starts a comment) or in single
or double quotes, taken as they are (no escapes, no `${...}` expansion, one line each).
"""

from __future__ import annotations

import re
from pathlib import Path

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(ValueError):
    """A line that is not `KEY=VALUE`; the message names the line, never its value."""


def parse(text: str) -> dict[str, str]:
    """The variables of a `.env` text; a later line wins over an earlier one."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not KEY.fullmatch(key):
            raise EnvFileError(f"line {number} is not KEY=VALUE")
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0 or (rest and not rest.startswith("#")):
                raise EnvFileError(f"line {number}: the quote of {key} is not closed")
            value = value[1:end]
        else:
            value = re.sub(r"\s+#.*", "", value)
        values[key] = value
    return values


def read(path: Path) -> dict[str, str]:
    """The variables of the file at `path`; none when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        return parse(text)
    except EnvFileError as exc:
        raise EnvFileError(f"{path}: {exc}") from None
