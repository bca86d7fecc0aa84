"""`make bench`'s intake scenario runs (small sizes) and reports what it must: no time
is asserted here, only that the figures exist and that nothing acknowledged was lost."""

from __future__ import annotations

import math
import os

import pytest

from tests.bench import intake
from tests.bench.figures import Options

pytestmark = pytest.mark.e2e


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the smoke run is the same code on either database; `make bench` measures both",
)
def test_the_intake_scenario_reports_every_figure_and_loses_nothing(tmp_path):
    figures = intake.run(Options("sqlite", None, tmp_path, quick=True))
    assert [f.name for f in figures] == [
        "webhook requests/s",
        "webhook p50",
        "webhook p99",
        "acknowledged and stored",
        "kill -9 mid-load: acknowledged and stored",
    ]
    for figure in figures:
        assert math.isfinite(figure.value) and figure.value > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
    stored, killed = figures[3], figures[4]
    assert stored.value == stored.baseline  # every acknowledged delivery is stored
    assert killed.value == killed.baseline
    assert "requests broke" in killed.note and not killed.note.startswith("0 ")
