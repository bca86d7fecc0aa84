"""`make bench`'s sockets scenario, small: it runs, and every figure is measured."""

from __future__ import annotations

import math

import pytest

from tests.bench import sockets
from tests.bench.figures import Options

pytestmark = pytest.mark.e2e


def test_the_sockets_scenario_measures_memory_and_fan_out(tmp_path):
    # run() fails unless every socket got every event.
    figures = sockets.run(Options("sqlite", None, tmp_path, quick=True))

    assert [f.name for f in figures] == [
        "Daphne RSS with 50 idle sockets",
        "webhook → event on the last of 50 sockets (median)",
    ]
    for figure in figures:
        assert (figure.scenario, figure.database) == ("sockets", "sqlite")
        assert math.isfinite(figure.value) and figure.value > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
    memory, fan_out = figures
    assert memory.unit == "MB"
    assert fan_out.unit == "ms"
