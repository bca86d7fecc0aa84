"""`make bench`'s scale scenario, small: the data is generated exactly as asked and every
figure is measured (finite, positive); the reports cover what they count; the SQL of each
endpoint is the same at a tenth of the tickets as at all of them. How fast is the bench's
business, never the test's."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from tests.bench import scale
from tests.bench.figures import Options

pytestmark = pytest.mark.e2e


def test_scale_quick_generates_exactly_and_measures_every_endpoint(tmp_path: Path) -> None:
    # given the database the suite runs on (a PostgreSQL server when DATABASE_URL names one)
    server = os.environ.get("DATABASE_URL", "")
    database = "postgres" if server.startswith(("postgres://", "postgresql://")) else "sqlite"
    options = Options(database, server or None, tmp_path, quick=True)  # type: ignore[arg-type]

    # when the quick scenario runs
    found = scale.measure(options)
    figures = scale.figures(database, found)

    # then exactly the asked-for data exists: 2 k tickets and 20 k messages, 60 % of the
    # tickets a customer's first (40 % come back once), 3 % of them unclosed
    size = scale.sizes(quick=True)
    assert (found["tickets"], found["messages"]) == (size.tickets, size.messages) == (2_000, 20_000)
    assert found["contacts"] == 1_200
    assert sum(found["by_status"].values()) == 2_000
    assert found["by_status"]["waiting"] + found["by_status"]["open"] == 60
    assert found["tickets_small"] == 200
    # every endpoint measured, each figure finite and positive
    assert set(found["endpoints"]) == set(scale.World.endpoint_names())
    assert len(figures) == 1 + 3 * (len(found["endpoints"]) - 1)
    for figure in figures:
        assert math.isfinite(figure.value) and figure.value > 0, figure
        assert math.isfinite(figure.baseline) and figure.baseline > 0, figure
    # the reports were checked before being timed: each covers what it counts; the 365
    # days cover every ticket's handover and every take-back and lapse generated
    assert set(found["covers"]) == set(scale.REPORTS) <= set(found["endpoints"])
    for name, got in found["covers"].items():
        assert all(got[column] > 0 for column in scale.REPORT_NONZERO), (name, got)
    year = found["covers"]["reports 365 days CSV per page"]
    assert (year["handovers"], year["tickets opened"]) == (2_000, 2_000)
    assert (year["take-backs by the bot"], year["take-backs by the Page Inbox"]) == (100, 50)
    assert year["lapses"] == 20
    # and each endpoint's SQL is the same with ten times the tickets
    counts = {name: (e["queries_small"], e["queries"]) for name, e in found["endpoints"].items()}
    assert {name: small for name, (small, _) in counts.items()} == {
        name: full for name, (_, full) in counts.items()
    }
