"""1,000 idle agent sockets on one Daphne process: its memory, and the time to fan one
event out to all of them.

The stack is the real one (Redis, Daphne, a Celery worker, the recording Graph fake);
the sockets are agents' inbox sockets (`/ws/inbox/`, authenticated by the session cookie
of a login through the form, several sockets per agent as several tabs are), held open
and idle from one asyncio loop in this process.

- Memory: Daphne's resident set with the sockets open, against its resident set with no
  socket once warmed up (it has served a login, a socket and an event): the floor that
  the sockets add to.
- Fan-out: a customer's message on standby, POSTed as a signed webhook, reaches every
  socket as `message.created`; the time from the POST to the last socket's copy, against
  the same with one socket open (the baseline: the same webhook, worker and channel
  layer path, without the fan-out). Every socket must get every event, or the run fails.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.bench.agentsockets import Http, Socket, bench_stack, open_sockets, rss_mb, sessions
from tests.bench.figures import Figure, Options, median
from tests.support import payloads
from tests.support.stack import Clock, Stack, daphne_port

DATABASES = ("sqlite",)

PSID = "3000000000000101"


def run(options: Options) -> list[Figure]:
    count = 50 if options.quick else 1000
    events = 3 if options.quick else 7
    with bench_stack(options) as stack:
        cookies = sessions(stack, 2 if options.quick else 10)
        found = asyncio.run(_measure(stack, cookies, count=count, events=events))
    db = options.database
    per_socket_kb = (found["rss"] - found["rss_idle"]) * 1024 / count
    return [
        Figure(
            "sockets", db, f"Daphne RSS with {count:,} idle sockets", found["rss"], "MB",
            "RSS with no socket, warmed up", found["rss_idle"], target="≤ 300 MB (1,000)",
            note=f"{per_socket_kb:.0f} KB per socket",
        ),
        Figure(
            "sockets", db, f"webhook → event on the last of {count:,} sockets (median)",
            median(found["fanout"]), "ms", "the same with 1 socket", median(found["single"]),
            note=f"first socket after {median(found['first']):.1f} ms (median); "
            f"{events} events, each on every socket",
        ),
    ]  # fmt: skip


async def _measure(stack: Stack, cookies: list[str], *, count: int, events: int) -> dict[str, Any]:
    http = Http(daphne_port(stack))
    clock = Clock()
    daphne = stack.processes["daphne"].pid

    # Warm-up: the conversation exists (its profile fetched), a socket has come and gone.
    await http.post_webhook(
        payloads.user_message("hello", ts=clock(), psid=PSID), channel="standby"
    )
    (warm,) = await open_sockets(stack, cookies, 1)
    await _fan_out(http, [warm], clock)
    await warm.close()
    await asyncio.sleep(2)
    rss_idle = rss_mb(daphne)

    (single,) = await open_sockets(stack, cookies, 1)
    alone = [await _fan_out(http, [single], clock) for _ in range(events)]

    sockets = [single, *await open_sockets(stack, cookies, count - 1)]
    await asyncio.sleep(2)  # idle: whatever the connects left behind is done
    rss = rss_mb(daphne)
    all_of_them = [await _fan_out(http, sockets, clock) for _ in range(events)]

    await asyncio.gather(*(s.close() for s in sockets))
    http.close()
    return {
        "rss_idle": rss_idle,
        "rss": rss,
        "single": [last for _, last in alone],
        "fanout": [last for _, last in all_of_them],
        "first": [first for first, _ in all_of_them],
    }


async def _fan_out(http: Http, sockets: list[Socket], clock: Clock) -> tuple[float, float]:
    """POST one standby message; (first, last) socket's copy of its `message.created`
    after the POST, in ms. Every socket must get it."""
    marks = [len(s.events) for s in sockets]
    started = time.monotonic()
    await http.post_webhook(payloads.user_message("hi", ts=clock(), psid=PSID), channel="standby")
    # The first socket tells which message it is; every socket must then get that one.
    first = sockets[0]
    created: dict[str, Any] = {}

    def is_created(event: dict[str, Any]) -> bool:
        if event.get("event") == "message.created":
            created.update(event)
            return True
        return False

    await first.wait_for(is_created, since=marks[0])
    message_id = created["message_id"]
    arrivals = await asyncio.gather(
        *(
            s.wait_for(
                lambda e: e.get("event") == "message.created" and e["message_id"] == message_id,
                since=mark,
            )
            for s, mark in zip(sockets, marks, strict=True)
        )
    )
    return (min(arrivals) - started) * 1000, (max(arrivals) - started) * 1000
