"""What a benchmark scenario reports: figures, each a ratio to a baseline measured in the
same run (these machines are noisy; the absolute numbers are context only)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Options:
    """What every scenario is given: the database to run on and how much to do."""

    database: Literal["sqlite", "postgres"]
    database_url: str | None  # the PostgreSQL server's URL (a fresh database is made on it)
    tmp: Path
    quick: bool = False  # a smoke run with small sizes (the test of `make bench` itself)


@dataclass(frozen=True)
class Figure:
    """One measured figure and the baseline it is compared with.

    `better` says which way is good: the ratio value/baseline is printed either way; a
    `target` (a ratio, or an absolute bound with `target_unit`) is printed beside it.
    """

    scenario: str
    database: str
    name: str
    value: float
    unit: str
    baseline_name: str
    baseline: float
    better: Literal["higher", "lower"] = "lower"
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank: a figure that was actually measured."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    cores = os.cpu_count() or 0
    return f"{platform.machine()}, {cores} cores, Python {platform.python_version()}"


def _number(value: float, unit: str) -> str:
    if unit in ("ms", "s", "MB") or value < 100:
        return f"{value:,.2f} {unit}".strip()
    return f"{value:,.0f} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """The README's Markdown table."""
    lines = [
        "| scenario | db | figure | value | baseline | ratio | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.scenario} | {f.database} | {f.name} | {_number(f.value, f.unit)} | "
            f"{f.baseline_name}: {_number(f.baseline, f.unit)} | {f.ratio:.2f}x | "
            f"{f.target}{' — ' + f.note if f.note else ''} |"
        )
    return "\n".join(lines)


def save(figures: list[Figure], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "figures": [asdict(f) | {"ratio": f.ratio} for f in figures],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def readme_write(path: Path, figures: list[Figure]) -> None:
    """Put the table, its date and machine between the README's bench markers."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    block = f"{START}\nMeasured {date} on {machine()}:\n\n{table(figures)}\n{END}"
    path.write_text(head + block + tail)
