"""`make run`'s supervisor, with real child processes (small Python ones, not the stack):
a child that exits is restarted, with a line saying so, at a bounded rate; and its port
check, with real sockets."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator

import pytest

from helpdesk.devserver import Supervisor, port_is_free

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def supervisor(clock) -> Iterator[Supervisor]:
    supervisor = Supervisor(max_restarts=2, window=60, clock=clock)
    yield supervisor
    supervisor.stop_all()


def test_a_killed_child_is_restarted_with_a_line_saying_so(supervisor, capsys):
    supervisor.spawn("sleeper", SLEEPER)
    [child] = supervisor.children
    first = child.process
    first.kill()
    first.wait()

    supervisor.check()

    assert child.process is not first
    assert child.process.poll() is None
    assert capsys.readouterr().err == (
        "devserver: sleeper was killed by SIGKILL; restarting it"
        " (restart 1 of at most 2 within 60 s)\n"
    )


def test_running_children_are_left_alone(supervisor, capsys):
    supervisor.spawn("sleeper", SLEEPER)
    [child] = supervisor.children
    process = child.process

    supervisor.check()

    assert (child.process, process.poll(), capsys.readouterr().err) == (process, None, "")


def test_a_child_that_keeps_exiting_is_given_up_on(supervisor, capsys):
    supervisor.spawn("quitter", QUITTER)
    [child] = supervisor.children
    for _ in range(2):
        child.process.wait()
        supervisor.check()
    child.process.wait()

    with pytest.raises(RuntimeError) as raised:
        supervisor.check()

    assert str(raised.value) == (
        "quitter exited with code 3, after 2 restarts within 60 s; not restarting it again"
    )
    assert capsys.readouterr().err.splitlines() == [
        "devserver: quitter exited with code 3; restarting it (restart 1 of at most 2 within 60 s)",
        "devserver: quitter exited with code 3; restarting it (restart 2 of at most 2 within 60 s)",
    ]


def test_restarts_older_than_the_window_do_not_count(supervisor, clock, capsys):
    supervisor.spawn("quitter", QUITTER)
    [child] = supervisor.children
    for _ in range(4):
        child.process.wait()
        supervisor.check()
        clock.now += 31  # two restarts are never within 60 s of a third

    assert [line.rsplit("(", 1)[1] for line in capsys.readouterr().err.splitlines()] == [
        "restart 1 of at most 2 within 60 s)",
        "restart 2 of at most 2 within 60 s)",
        "restart 2 of at most 2 within 60 s)",
        "restart 2 of at most 2 within 60 s)",
    ]


def test_while_starting_up_an_exit_stops_everything(supervisor, capsys):
    supervisor.spawn("quitter", QUITTER)
    [child] = supervisor.children
    process = child.process
    process.wait()

    with pytest.raises(RuntimeError, match=r"^quitter exited with code 3$"):
        supervisor.check(restart=False)

    assert (child.process, capsys.readouterr().err) == (process, "")


def test_stop_all_stops_every_child(supervisor):
    supervisor.spawn("one", SLEEPER)
    supervisor.spawn("two", SLEEPER)

    supervisor.stop_all()

    assert [child.process.poll() for child in supervisor.children] == [-15, -15]


# --- the port check ------------------------------------------------------------------------


def _plain_bind_fails(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def test_a_port_whose_connections_linger_in_time_wait_is_free():
    # Given a server that stopped right after its side closed a connection first: the
    # connection lingers in TIME_WAIT on the server's port (Ctrl-C, then `make run`).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            accepted, _ = listener.accept()
            accepted.close()  # the server's side closes first: its side waits
            assert client.recv(1) == b""
    assert _plain_bind_fails(port)  # the connection lingers: a bare bind is refused

    # Then the check, binding as servers do, says the port is free.
    assert port_is_free(port) is True


def test_a_port_with_a_listener_is_busy():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert port_is_free(port) is False
