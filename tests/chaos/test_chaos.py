"""The chaos run, shortened, inside `make test`: about a thousand webhook events and a
few dozen replies through real processes, with at least one fault of each kind (a
worker and the webhook Daphne killed, Redis restarted, PostgreSQL restarted when the
suite runs on it, Graph 5xx and timeouts that took effect, late echoes, duplicate
deliveries). `make chaos` is the full run (`python -m tests.chaos --help`)."""

from __future__ import annotations

import os

import pytest

from tests.chaos.monkey import SHORT_PLAN
from tests.chaos.run import chaos_run
from tests.chaos.world import Options

pytestmark = pytest.mark.e2e


def test_nothing_is_lost_doubled_or_stuck_under_chaos(tmp_path):
    on_postgresql = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    options = Options(
        events=1000,
        replies=20,
        seconds=150,
        database="postgresql" if on_postgresql else "sqlite",
        users=15,
        agents=3,
        fault_interval=2.5,
        settle_seconds=120,
        plan=SHORT_PLAN,
    )
    report = chaos_run(options, tmp_path, say=lambda line: None)
    print(report.table())  # pytest shows it when the test fails
    assert [(c.name, c.detail) for c in report.failures] == [], report.explain
    expected = {f for f in SHORT_PLAN if on_postgresql or f != "restart_postgres"}
    assert {f for f, n in report.faults.items() if n >= 1} == expected
