"""The webhook writer process (`python -m webhooks.intake_writer <fd>`), started by
Daphne's `webhooks.intake.WriterProcess` with one end of a socket pair as `fd`.

It reads the deliveries Daphne sends (each a 4-byte length and its body), stores
everything that has arrived in one transaction per group (`intake.store_group`: one
INSERT; the task is published in the background, `queue.Batches`), and answers each
group with a line, `ok <n>` or `err <n> <reason>`. It ends when Daphne closes its end
(or dies): what was sent before is stored first.
"""

from __future__ import annotations

import os
import socket
import sys

import django
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
django.setup()

from webhooks.intake import FRAME, GROUP_MAX, store_group  # noqa: E402

READ_SIZE = 1 << 20
BUFFER_MAX = 16 << 20  # read no further ahead than this before storing


def frames(buffer: bytearray) -> tuple[list[bytes], int]:
    """The complete deliveries at the start of `buffer`, and how many bytes they use."""
    bodies: list[bytes] = []
    at = 0
    while len(buffer) - at >= FRAME.size:
        (length,) = FRAME.unpack_from(buffer, at)
        end = at + FRAME.size + length
        if end > len(buffer):
            break
        bodies.append(bytes(buffer[at + FRAME.size : end]))
        at = end
    return bodies, at


def serve(connection: socket.socket) -> None:
    try:
        _serve(connection)
    finally:
        connections.close_all()


def _serve(connection: socket.socket) -> None:
    buffer = bytearray()
    while True:
        data = connection.recv(READ_SIZE)  # waits for the next delivery
        if not data:
            return  # Daphne closed its end: everything it sent is stored
        buffer += data
        connection.setblocking(False)  # and whatever else has arrived meanwhile
        try:
            while len(buffer) < BUFFER_MAX and (more := connection.recv(READ_SIZE)):
                buffer += more
        except BlockingIOError:
            pass
        finally:
            connection.setblocking(True)
        bodies, used = frames(buffer)
        del buffer[:used]
        for start in range(0, len(bodies), GROUP_MAX):
            group = bodies[start : start + GROUP_MAX]
            error = store_group(group)
            if error is None:
                answer = f"ok {len(group)}\n"
            else:
                reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
                answer = f"err {len(group)} {reason}\n"
            connection.sendall(answer.encode())


def main() -> None:
    connection = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(connection)
    except (BrokenPipeError, ConnectionResetError):
        pass  # Daphne is gone: what was committed stays, Meta sends the rest again
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
