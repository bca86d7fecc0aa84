"""Intake: the webhook against a bare ASGI endpoint doing the same HMAC and JSON.

Both are served by the project's Daphne in the same run, on the same machine, loaded the
same way (tests.support.load: signed one-event standby deliveries with unique mids, 32
keep-alive connections from two processes; BENCH_CONNECTIONS=64 for more). Celery's
worker and beat are stopped so that only the acknowledgement path counts (Redis stays:
the intake's writer publishes the groups' tasks). The bare endpoint is the ceiling of what an
acknowledgement can cost on this Daphne: the helpdesk must in addition commit the
delivery before it answers.

Afterwards every acknowledged delivery is looked up in the database (acknowledged ==
stored), and once more with the helpdesk's Daphne killed with SIGKILL in the middle of
the load and started again: nothing it acknowledged may be missing.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from helpdesk.localservices import free_port, stop, wait_for_port
from tests.bench.figures import Figure, Options, median, percentile
from tests.support.load import Outcome, bodies, post_load
from tests.support.stack import BIN, daphne_port, fake_graph_stack

STORED = """
import json
from pathlib import Path
from webhooks.models import WebhookDelivery
wanted = json.loads(Path({path!r}).read_text())
found = 0
for start in range(0, len(wanted), 500):
    found += WebhookDelivery.objects.filter(digest__in=wanted[start:start + 500]).count()
print("stored", found, WebhookDelivery.objects.count())
"""


def stored(stack: object, digests: list[str], tmp: Path) -> tuple[int, int]:
    """How many of `digests` are stored, and how many deliveries are stored in all."""
    path = tmp / f"digests-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(digests))
    output = stack.manage("shell", "-c", STORED.format(path=str(path)))  # type: ignore[attr-defined]
    _, found, total = output.split()[-3:]
    return int(found), int(total)


def _load(port: int, prefix: str, count: int, seconds: float) -> Outcome:
    return post_load(
        port,
        bodies(prefix, count, ts=int(time.time() * 1000)),
        seconds=seconds,
        connections=int(os.environ.get("BENCH_CONNECTIONS", "32")),
    )


def run(options: Options) -> list[Figure]:
    seconds = 2.0 if options.quick else 10.0
    rounds = 1 if options.quick else 2
    count = int(seconds * 4000)  # more than either can take in `seconds`
    with fake_graph_stack(options.tmp, database_server_url=options.database_url or "") as stack:
        for name in ("worker", "beat"):
            stop(stack.processes.pop(name))
        bare_port = free_port()
        stack.spawn(
            "bare", str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(bare_port),
            "tests.bench.bare:application",
        )  # fmt: skip
        wait_for_port(bare_port, timeout=30)
        port = daphne_port(stack)
        # Warm both up (imports, connections, the first groups).
        _load(bare_port, "warm-bare", 300, 5)
        _load(port, "warm", 300, 5)
        bare: list[Outcome] = []
        ours: list[Outcome] = []
        for number in range(rounds):
            bare.append(_load(bare_port, f"bare{number}", count, seconds))
            ours.append(_load(port, f"ours{number}", count, seconds))
        acked = [digest for outcome in ours for digest in outcome.acked]
        found, _ = stored(stack, acked, options.tmp)

        # kill -9 in the middle of the load; Daphne is started again at once.
        work = bodies("kill", count, ts=int(time.time() * 1000))

        def killer() -> None:
            time.sleep(seconds / 2)
            os.kill(stack.processes["daphne"].pid, signal.SIGKILL)
            stack.processes["daphne"].wait()
            stack.respawn("daphne")

        thread = threading.Thread(target=killer)
        thread.start()
        killed = post_load(port, work, seconds=seconds * 1.5)
        thread.join()
        killed_found, _ = stored(stack, killed.acked, options.tmp)

    def rate(outcome: Outcome) -> float:
        return len(outcome.acked) / outcome.seconds

    bare_rate = median([rate(o) for o in bare])
    our_rate = median([rate(o) for o in ours])
    bare_ms = [ms for o in bare for ms in o.latencies_ms]
    our_ms = [ms for o in ours for ms in o.latencies_ms]
    refused = {status: n for o in ours for status, n in o.refused.items()}
    db = options.database
    return [
        Figure("intake", db, "webhook requests/s", our_rate, "req/s", "bare ASGI endpoint",
               bare_rate, better="higher", target="≥ 0.8x",
               note=f"refused {refused}" if refused else ""),
        Figure("intake", db, "webhook p50", percentile(our_ms, 50), "ms", "bare p50",
               percentile(bare_ms, 50)),
        Figure("intake", db, "webhook p99", percentile(our_ms, 99), "ms", "bare p99",
               percentile(bare_ms, 99)),
        Figure("intake", db, "acknowledged and stored", found, "deliveries", "acknowledged",
               len(acked), better="higher", target="= 1.00x (0 lost)"),
        Figure("intake", db, "kill -9 mid-load: acknowledged and stored", killed_found,
               "deliveries", "acknowledged", len(killed.acked), better="higher",
               target="= 1.00x (0 lost)",
               note=f"{killed.errors} requests broke with the process"),
    ]  # fmt: skip
