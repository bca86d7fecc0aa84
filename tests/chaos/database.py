"""Read-only SQL on the helpdesk's database, from outside the helpdesk's processes.

The chaos run reads the tables directly (not through the ORM): what it counts is what
is stored, whatever the code believes. A query that meets PostgreSQL restarting (or a
busy SQLite file) is tried again until `patience` runs out.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import psycopg


class Database:
    def __init__(self, url: str, *, patience: float = 60.0) -> None:
        self.url = url
        self.patience = patience
        self.sqlite = url.startswith("sqlite:")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + self.patience
        while True:
            try:
                return self._rows(sql)
            except (sqlite3.OperationalError, psycopg.OperationalError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    def value(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite:
            path = self.url.removeprefix("sqlite:///")  # sqlite:////tmp/x -> /tmp/x
            # Read-only: the run must not hold a write lock the helpdesk waits on.
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            try:
                return connection.execute(sql).fetchall()
            finally:
                connection.close()
        with psycopg.connect(self.url, connect_timeout=5) as connection:
            return connection.execute(sql).fetchall()
