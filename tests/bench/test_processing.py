"""Smoke test of the processing benchmark (`python -m tests.bench --only processing
--quick`): real Redis and Celery workers, 100 deliveries per mix. It asserts what the
benchmark measures exists and that every event was applied exactly once, never how
fast (the figures are the benchmark's to print)."""

from __future__ import annotations

import math
import os

import pytest

from tests.bench import processing
from tests.bench.figures import Options

pytestmark = pytest.mark.e2e


def test_the_processing_benchmark_applies_every_event_once_and_reports_every_figure(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    postgres = url.startswith(("postgres://", "postgresql://"))
    options = Options("postgres" if postgres else "sqlite", url or None, tmp_path, quick=True)

    # `run` raises unless every delivery was processed and each event recorded once,
    # none failed, with one worker, with two, and in-process.
    figures = processing.run(options)

    rates = [f for f in figures if f.unit == "events/s"]
    assert [f.name for f in rates] == [
        f"{mix}: events/s, {workers}, {per_task}" for mix in processing.MIXES
        for workers in ("1 worker", "2 workers")
        for per_task in ("a task per delivery", "tasks of 10")
    ]  # fmt: skip
    for figure in rates:
        assert math.isfinite(figure.value) and figure.value > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
    counts = {f.name.removeprefix("SQL statements: "): f for f in figures if f.unit == "statements"}
    assert list(counts) == list(processing.KINDS)
    grouped = [f for f in figures if f.unit == "statements/event"]
    assert [f.name for f in grouped] == [
        f"SQL statements: {kind}, tasks of 10" for kind in processing.GROUPED_KINDS
    ]
    # A group costs fewer statements per event than one delivery alone, and more than
    # its bookkeeping (pinned exactly in tests/webhooks/test_statement_counts.py).
    for figure in grouped:
        alone = counts[figure.name.removeprefix("SQL statements: ").removesuffix(", tasks of 10")]
        assert alone.value > figure.value > figure.baseline > 0, figure
    # Every kind costs the bookkeeping of an ignored event and more; the exact counts
    # are pinned in tests/webhooks/test_statement_counts.py.
    for figure in counts.values():
        assert figure.value > figure.baseline > 0, figure
    assert {f.database for f in figures} == {options.database}
