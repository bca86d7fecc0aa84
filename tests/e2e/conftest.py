from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, fake_graph_stack


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    """The helpdesk's real processes (Redis, Daphne, Celery worker and beat) against the
    recording Graph fake (`stack.fake`), for one test."""
    with fake_graph_stack(tmp_path) as stack:
        yield stack
