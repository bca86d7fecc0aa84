"""`make bench`'s latency scenario, small: it runs, and every figure is measured from
what actually arrived (every message on every socket, every reply and trigger at the
Graph fake)."""

from __future__ import annotations

import math

import pytest

from tests.bench import latency
from tests.bench.figures import Options

pytestmark = pytest.mark.e2e


def test_the_latency_scenario_measures_every_path(tmp_path):
    figures = latency.run(Options("sqlite", None, tmp_path, quick=True))

    assert [f.name for f in figures] == [
        "webhook → agent socket p50",
        "webhook → agent socket p99",
        "reply → Send API p50",
        "reply → Send API p99",
        "trigger → request/take p99",
    ]
    for figure in figures:
        assert (figure.scenario, figure.database, figure.unit) == ("latency", "sqlite", "ms")
        assert math.isfinite(figure.value) and figure.value > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
    # Nothing was lost on the way: every message reached every socket.
    assert "never arrived" not in figures[1].note
    assert "20 sockets, 50 messages/s offered for 4 s" in figures[1].note
    # Each path measured from what arrived at the fake (a reply or trigger the helpdesk
    # refused, e.g. a 500 while SQLite was locked, is counted in the note, not measured).
    assert figures[3].note.endswith(" replies") and int(figures[3].note.split()[0]) > 0
    assert figures[4].note.endswith(" triggers") and int(figures[4].note.split()[0]) > 0
