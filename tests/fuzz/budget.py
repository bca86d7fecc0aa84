"""How much the fuzz tests try, and with which randomness.

By default (the suite, CI) every Hypothesis test is derandomized: the same examples on
every run and every machine, no example database. `FUZZ_SCALE=N` (`make fuzz` sets 20)
multiplies the example counts and draws new inputs on each run; a failure prints its
seed (rerun with `--hypothesis-seed=SEED`) and is kept in `var/hypothesis`, replayed
first on the next run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))

settings.register_profile(
    "suite",
    derandomize=True,
    database=None,
    deadline=None,  # no wall-clock budgets: a slow example on a busy machine is not a bug
    print_blob=True,
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase("var/hypothesis"),
    deadline=None,
    print_blob=True,
)

# Examples share the test's database (each rolls its own changes back) and some build
# large bodies on purpose.
DB_HEALTH_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def load() -> None:
    settings.load_profile("fuzz" if SCALE > 1 else "suite")


def examples(count: int) -> int:
    return count * SCALE
