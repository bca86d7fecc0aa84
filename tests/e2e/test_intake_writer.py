"""Daphne's webhook writer process (webhooks.intake.WriterProcess): killed in the middle
of a load, nothing it acknowledged is lost, the requests it held get a 503 (Meta sends
them again) and the next delivery starts another; it starts with Daphne and does not
outlive it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.chaos.database import Database
from tests.e2e.test_intake_kill import _stored
from tests.support import payloads
from tests.support.load import bodies, post_load
from tests.support.polling import eventually
from tests.support.stack import daphne_port

pytestmark = pytest.mark.e2e


def _writers(parent: int) -> list[int]:
    """The pids of `parent`'s webhook writer processes."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == parent and b"webhooks.intake_writer" in cmdline and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_writer_process_loses_nothing_and_the_next_delivery_starts_another(stack):
    database = Database(stack.env["DATABASE_URL"])
    daphne = stack.processes["daphne"].pid
    stack.post_webhook(payloads.user_message("first", ts=payloads.T0, psid="3500000000000001"))
    [first] = eventually(lambda: _writers(daphne), what="Daphne's writer process")
    work = bodies("writer-kill", 1500, ts=int(time.time() * 1000))
    killed_at: list[float] = []

    def killer() -> None:
        eventually(
            lambda: database.value("SELECT count(*) FROM webhooks_webhookdelivery") >= 300,
            what="300 stored", timeout=120,
        )  # fmt: skip
        killed_at.append(time.monotonic())
        os.kill(first, signal.SIGKILL)

    thread = threading.Thread(target=killer)
    thread.start()
    loaded = post_load(daphne_port(stack), work, connections=16, processes=2, seconds=180)
    thread.join()

    [kill] = killed_at
    assert loaded.errors == 0  # Daphne itself answered every request
    assert any(at < kill for at in loaded.acked_at), "nothing answered before the kill"
    assert any(at > kill for at in loaded.acked_at), "nothing answered after the kill"
    # the requests it held were refused with a 503, and only those
    assert set(loaded.refused) == {503} and loaded.refused[503] > 0, loaded.refused
    assert len(loaded.acked) + sum(loaded.refused.values()) == len(work)
    assert _stored(database, loaded.acked) == set(loaded.acked)
    # Another writer took over; the killed one was reaped, not left a zombie.
    [second] = eventually(lambda: _writers(daphne), what="a new writer process")
    assert second != first
    assert not _alive(first)


def test_the_writer_process_starts_and_ends_with_daphne(stack):
    daphne = stack.processes["daphne"]
    # started with Daphne (the first delivery does not wait for it), and used by it
    [writer] = eventually(lambda: _writers(daphne.pid), what="Daphne's writer process")
    stack.post_webhook(payloads.user_message("hello", ts=payloads.T0, psid="3500000000000002"))
    assert _writers(daphne.pid) == [writer]
    os.kill(daphne.pid, signal.SIGKILL)
    daphne.wait()
    eventually(lambda: not _alive(writer), what="the writer process to end with Daphne")
    stack.respawn("daphne")  # (the stack's other tests go on with a fresh one)
