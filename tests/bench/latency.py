"""Live latency under a steady load: webhook → agent socket, agent reply → Send API,
trigger → the request (or take) of the thread.

The stack is the real one (Redis, Daphne, a Celery worker and beat, the recording Graph
fake, whose calls are time-stamped as they arrive). Agents' inbox sockets (session
cookies of logins through the form) are held open from one asyncio loop in this
process. For the run's duration, on a fixed schedule (open loop: a slow answer does not
slow the schedule, up to 32 webhook connections in flight):

- customers' messages, signed webhook deliveries on the `messaging` channel (a customer
  talking to an agent: Meta delivers to the thread's owner) spread over conversations
  with an open ticket, each a unique mid: every one is `message.created` (and
  `ticket.updated`) on every socket. The latency of each (message, socket) pair is from
  the POST to that socket's copy, the message told by its id (read from the database
  afterwards: message id → mid);
- agents' replies, `POST /api/v1/tickets/<id>/reply` with a unique text, to the Send
  API call with that text at the fake;
- "Talk to a human" postbacks on standby from new customers (the page's default
  trigger), to the `request_thread_control` (or `take_thread_control`, as the page
  allows) call for that customer at the fake.

The baseline of each is a round trip that does no work, by the same client to the same
Daphne in the same run under the same load: the inbox socket's `ping` → `pong` (the
consumer answers before anything else). The gap to it is what the helpdesk adds: the
webhook's intake, the Celery hop, the database, the channel layer, the fan-out.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from contextlib import suppress
from typing import Any

from tests.bench.agentsockets import (
    Http,
    HttpPool,
    Refused,
    WebhookRefused,
    bench_stack,
    open_sockets,
    sessions,
)
from tests.bench.figures import Figure, Options, percentile
from tests.support import payloads
from tests.support.stack import Clock, Stack, daphne_port

FIRST_PSID = 3_000_000_000_010_000
TRIGGER_PSID = 3_000_000_000_090_000
MID_PREFIX = "m_bench_"
REQUEST_PATHS = ("/me/request_thread_control", "/me/take_thread_control")


def run(options: Options) -> list[Figure]:
    sizes = {
        "sockets": 20 if options.quick else 100,
        "rate": 50 if options.quick else 200,  # customers' messages per second
        "seconds": 4 if options.quick else 10,
        "conversations": 10 if options.quick else 50,
        "replies_per_s": 2 if options.quick else 5,
        "triggers_per_s": 1 if options.quick else 2,
    }
    with bench_stack(options) as stack:
        cookies = sessions(stack, 2 if options.quick else 5)
        token = stack.agent_token("replier")
        found = asyncio.run(_measure(stack, cookies, token, **sizes))
        found["message_ids"], found["stored"] = _message_ids(stack)
    return _figures(options, sizes, found)


async def _measure(
    stack: Stack,
    cookies: list[str],
    token: str,
    *,
    sockets: int,
    rate: int,
    seconds: int,
    conversations: int,
    replies_per_s: int,
    triggers_per_s: int,
) -> dict[str, Any]:
    port = daphne_port(stack)
    http = Http(port)
    clock = Clock()
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    graph: list[tuple[float, Any]] = stack.graph_times  # type: ignore[attr-defined]

    # Conversations with a waiting ticket: a message on standby, then the bot's handover.
    psids = [str(FIRST_PSID + n) for n in range(conversations)]
    for psid in psids:
        await http.post_webhook(
            payloads.user_message("I need help", ts=clock(), psid=psid), channel="standby"
        )
        await http.post_webhook(payloads.pass_control(ts=clock(), psid=psid))
    tickets = await _tickets(http, bearer, psids)
    opened = await open_sockets(stack, cookies, sockets)

    # Warm-up: the replier's persona, a trigger, the code paths of a message.
    warm_trigger = str(TRIGGER_PSID - 1)
    await _reply(http, bearer, tickets[0], "warm-up reply")
    await http.post_webhook(
        payloads.postback("Talk to a human", ts=clock(), psid=warm_trigger), channel="standby"
    )
    await http.post_webhook(payloads.user_message("warm-up", ts=clock(), psid=psids[0]))
    await _until(lambda: _graph_text(graph, "warm-up reply") is not None)
    await _until(lambda: _graph_request(graph, warm_trigger) is not None)
    await asyncio.sleep(1)

    posted: dict[str, float] = {}  # mid -> POST time
    replied: dict[str, float] = {}  # text -> POST time
    triggered: dict[str, float] = {}  # psid -> POST time
    acks: dict[str, float] = {}  # mid -> its 200's arrival
    refusals: Counter[str] = Counter()  # what was not accepted: "webhook 500" -> count
    pings: list[float] = []
    pool = HttpPool(port, 32)
    side = HttpPool(port, 8)
    marks = [len(s.events) for s in opened]
    started = time.monotonic() + 0.2

    async def message(number: int) -> None:
        mid = f"{MID_PREFIX}{number}"
        event = payloads.user_message(
            f"message {number}", ts=clock(), psid=psids[number % len(psids)], mid=mid
        )
        connection = await pool.take()
        try:
            posted[mid] = time.monotonic()
            await connection.post_webhook(event)
            acks[mid] = time.monotonic()
        except WebhookRefused as refused:
            # Not acknowledged: Meta would deliver it again. Counted, not measured.
            del posted[mid]
            refusals[f"webhook {refused.status}"] += 1
        finally:
            pool.give(connection)

    async def reply(number: int) -> None:
        text = f"bench reply {number}"
        connection = await side.take()
        try:
            replied[text] = time.monotonic()
            await _reply(connection, bearer, tickets[number % len(tickets)], text)
        except Refused as refused:
            del replied[text]
            refusals[f"reply {refused.status}"] += 1
        finally:
            side.give(connection)

    async def trigger(number: int) -> None:
        psid = str(TRIGGER_PSID + number)
        event = payloads.postback("Talk to a human", ts=clock(), psid=psid)
        connection = await side.take()
        try:
            triggered[psid] = time.monotonic()
            await connection.post_webhook(event, channel="standby")
        except WebhookRefused as refused:
            del triggered[psid]
            refusals[f"trigger {refused.status}"] += 1
        finally:
            side.give(connection)

    async def ping() -> None:
        socket = opened[0]
        while time.monotonic() < started + seconds:
            mark = len(socket.events)
            sent = time.monotonic()
            await socket.connection.send(json.dumps({"type": "ping"}))
            got = await socket.wait_for(lambda e: e.get("type") == "pong", since=mark)
            pings.append((got - sent) * 1000)
            await asyncio.sleep(0.1)

    async def schedule(work: Any, per_second: int) -> list[asyncio.Task[None]]:
        tasks = []
        for number in range(per_second * seconds):
            delay = started + number / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(work(number)))
        await asyncio.gather(*tasks)
        return tasks

    await asyncio.gather(
        schedule(message, rate),
        schedule(reply, replies_per_s),
        schedule(trigger, triggers_per_s),
        ping(),
    )
    sent_all = time.monotonic()
    await _until(
        lambda: (
            _count(graph, lambda c: _text(c) in replied) >= len(replied)
            and _count(graph, lambda c: _request_psid(c) in triggered) >= len(triggered)
        ),
        timeout=60,
    )
    # The sockets' last copies: one `message.created` per message of the run (customers',
    # replies, triggers) on every socket, or a minute after the last POST's answer.
    wanted = len(posted) + len(replied) + len(triggered)

    def all_copies() -> bool:
        return all(
            len(
                {
                    e.get("message_id")
                    for _, e in s.events[mark:]
                    if e.get("event") == "message.created"
                }
            )
            >= wanted
            for s, mark in zip(opened, marks, strict=True)
        )

    with suppress(TimeoutError):
        await _until(all_copies, timeout=60)
    await asyncio.gather(*(s.close() for s in opened))
    pool.close()
    side.close()
    http.close()
    return {
        "posted": posted,
        "replied": replied,
        "triggered": triggered,
        "acks": acks,
        "refusals": refusals,
        "pings": pings,
        "sockets": [s.events for s in opened],
        "graph": list(graph),
        # From the schedule's start to the last 200: the rate the webhook took.
        "send_seconds": max(acks.values(), default=sent_all) - started,
    }


def _figures(options: Options, sizes: dict[str, int], found: dict[str, Any]) -> list[Figure]:
    db = options.database
    pings = found["pings"]
    floor = percentile(pings, 50)
    floor99 = percentile(pings, 99)
    ids: dict[int, str] = found["message_ids"]
    posted: dict[str, float] = found["posted"]

    on_sockets: list[float] = []
    answered: list[float] = []  # POST -> its 200
    processed: list[float] = []  # 200 -> the first socket's copy
    first: dict[str, float] = {}
    missing = 0
    for events in found["sockets"]:
        arrived: dict[int, float] = {}
        for at, event in events:
            if event.get("event") == "message.created" and event.get("message_id") in ids:
                arrived.setdefault(event["message_id"], at)
        by_mid = {ids[pk]: at for pk, at in arrived.items()}
        for mid, sent in posted.items():
            if mid in by_mid:
                on_sockets.append((by_mid[mid] - sent) * 1000)
                first[mid] = min(first.get(mid, by_mid[mid]), by_mid[mid])
            else:
                missing += 1
    acks: dict[str, float] = found["acks"]
    stored: dict[str, float] = found["stored"]
    applied: list[float] = []  # 200 -> stored by the worker
    fanned: list[float] = []  # stored -> the first socket's copy
    for mid, at in acks.items():
        answered.append((at - posted[mid]) * 1000)
        if mid in first:
            processed.append((first[mid] - at) * 1000)
        if mid in stored:
            applied.append((stored[mid] - at) * 1000)
            if mid in first:
                fanned.append((first[mid] - stored[mid]) * 1000)
    replies = _latencies(found["graph"], found["replied"], _text)
    triggers = _latencies(found["graph"], found["triggered"], _request_psid)
    acks = found["acks"]
    achieved = len(acks) / found["send_seconds"] if acks else 0.0
    load = (
        f"{sizes['sockets']} sockets, {sizes['rate']} messages/s offered for "
        f"{sizes['seconds']} s, {achieved:.0f}/s acknowledged; POST → 200 p50 "
        f"{percentile(answered, 50):.0f} ms, p99 {percentile(answered, 99):.0f} ms; "
        f"200 → first socket p50 {percentile(processed, 50):.0f} ms, "
        f"p99 {percentile(processed, 99):.0f} ms (200 → stored by the worker p50 "
        f"{percentile(applied, 50):.0f} ms, p99 {percentile(applied, 99):.0f} ms; stored → "
        f"first socket p50 {percentile(fanned, 50):.0f} ms, p99 {percentile(fanned, 99):.0f} ms)"
    )
    if found["refusals"]:
        refused = ", ".join(f"{n} {what}" for what, n in sorted(found["refusals"].items()))
        load += f"; not accepted (not measured): {refused}"
    if missing:
        load += f"; {missing} of {len(posted) * sizes['sockets']} copies never arrived"
    out = []
    for name, values, baseline, target, extra in (
        ("webhook → agent socket p50", on_sockets, floor, "", ""),
        ("webhook → agent socket p99", on_sockets, floor99, "≤ 50 ms", load),
        ("reply → Send API p50", replies, floor, "", ""),
        ("reply → Send API p99", replies, floor99, "≤ 100 ms", f"{len(replies)} replies"),
        ("trigger → request/take p99", triggers, floor99, "", f"{len(triggers)} triggers"),
    ):
        p = 50 if name.endswith("p50") else 99
        out.append(
            Figure(
                "latency", db, name, percentile(values, p), "ms",
                f"socket ping → pong p{p}", baseline, target=target, note=extra,
            )
        )  # fmt: skip
    return out


def _latencies(graph: list[tuple[float, Any]], sent: dict[str, float], key: Any) -> list[float]:
    first: dict[str, float] = {}
    for at, call in graph:
        k = key(call)
        if k in sent:
            first.setdefault(k, at)
    return [(at - sent[k]) * 1000 for k, at in first.items()]


def _text(call: Any) -> str | None:
    if call.path != "/me/messages":
        return None
    return (call.body.get("message") or {}).get("text")


def _request_psid(call: Any) -> str | None:
    if call.path not in REQUEST_PATHS:
        return None
    return (call.body.get("recipient") or {}).get("id")


def _graph_text(graph: list[tuple[float, Any]], text: str) -> float | None:
    return next((at for at, c in graph if _text(c) == text), None)


def _graph_request(graph: list[tuple[float, Any]], psid: str) -> float | None:
    return next((at for at, c in graph if _request_psid(c) == psid), None)


def _count(graph: list[tuple[float, Any]], match: Any) -> int:
    return sum(1 for _, c in list(graph) if match(c))


async def _until(check: Any, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout} s")
        await asyncio.sleep(0.05)


async def _reply(http: Http, headers: dict[str, str], ticket_id: int, text: str) -> None:
    status, body = await http.request(
        "POST", f"/api/v1/tickets/{ticket_id}/reply", json.dumps({"text": text}).encode(), headers
    )
    if status != 201:
        raise Refused(status, body)


async def _tickets(http: Http, headers: dict[str, str], psids: list[str]) -> list[int]:
    """The waiting tickets of these customers, in their order, once all are open."""
    found: dict[str, int] = {}
    deadline = time.monotonic() + 60
    while len(found) < len(psids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {len(psids)} tickets opened")
        status, body = await http.request(
            "GET", "/api/v1/tickets?status=waiting&limit=200", b"", headers
        )
        assert status == 200, body
        found = {t["contact"]["psid"]: t["id"] for t in json.loads(body)}
        await asyncio.sleep(0.2)
    return [found[psid] for psid in psids]


def _message_ids(stack: Stack) -> tuple[dict[int, str], dict[str, float]]:
    """Message id → mid of the customers' messages of the run, and mid → when the worker
    stored it (`created_at`, on this process's monotonic clock), from the database."""
    output = stack.manage(
        "shell",
        "-c",
        "import json; from agents.models import Message; print(json.dumps([(pk, mid, "
        "at.timestamp()) for pk, mid, at in "
        f"Message.objects.filter(mid__startswith={MID_PREFIX!r})"
        ".values_list('pk', 'mid', 'created_at')]))",
    )
    rows = json.loads(output.strip().splitlines()[-1])
    offset = time.time() - time.monotonic()
    return {pk: mid for pk, mid, _ in rows}, {mid: at - offset for _, mid, at in rows}
