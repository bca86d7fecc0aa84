"""Everything a chaos run starts: a throwaway PostgreSQL cluster (or a SQLite file),
Redis, two Daphne processes (one takes the webhooks, the other the agents' API calls),
two Celery workers, Celery beat, and the Messenger emulator in this process, wired to
each other. The helpdesk runs with short re-drive and confirmation intervals, so that
it settles in seconds once the faults stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from helpdesk.localservices import free_port, wait_for_port
from tests.support import payloads
from tests.support.pgcluster import Cluster, running_cluster
from tests.support.stack import Stack
from webhooks.emulator import Emulator, EmulatorConfig

HOOKS_DAPHNE = "daphne"  # the stack's own Daphne: the emulator POSTs webhooks to it
API_DAPHNE = "daphne-api"
WORKERS = ("worker", "worker-2")

GRAPH_CONFIRM_SECONDS = 8
# The helpdesk's settings for the run (environment variables).
SETTINGS = {
    "REDRIVE_INTERVAL_SECONDS": "1",
    "REDRIVE_GRACE_SECONDS": "2",
    # Longer than a task takes, shorter than the wait for the system to settle.
    "REDRIVE_LEASE_SECONDS": "15",
    "GRAPH_API_TIMEOUT_SECONDS": "2",
    "GRAPH_RETRY_BACKOFF_SECONDS": "0.2",
    "GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS": "2",
    "GRAPH_CONFIRM_SECONDS": str(GRAPH_CONFIRM_SECONDS),
    # Deliveries (the emulator batches up to 10 events under load) are processed in
    # several chunks, each its own task: the continuation is killed and lost too.
    "WEBHOOK_CHUNK_SECONDS": "0.05",
    "LOG_LEVEL": "INFO",
}
# A timeout fault hangs longer than the helpdesk waits for Graph.
GRAPH_TIMEOUT_FAULT_SECONDS = 3.0


@dataclass
class Options:
    """What a run does; `python -m tests.chaos --help` explains each."""

    events: int = 10_000
    replies: int = 300
    seconds: float = 480.0
    database: str = "postgresql"
    users: int = 40
    agents: int = 4
    fault_interval: float = 5.0
    settle_seconds: float = 240.0
    seed: int | None = None
    # Events per webhook POST at most (Meta batches under load; 1 is what it says).
    batch_max: int = 10
    # How many webhooks may wait in the emulator, and acknowledged events wait to be
    # applied by the helpdesk, before the customers pause: the load follows what the
    # system takes, and handovers are not stuck behind thousands of events.
    max_in_flight: int = 60
    max_backlog: int = 300
    # The fault schedule, in order, repeated until the load is done (see monkey.PLAN).
    plan: tuple[str, ...] = ()
    verbose: bool = False


@dataclass
class World:
    options: Options
    emulator: Emulator
    stack: Stack
    cluster: Cluster | None
    database_url: str = ""
    api_urls: list[str] = field(default_factory=list)

    @property
    def database_label(self) -> str:
        return "PostgreSQL" if self.cluster is not None else "SQLite"


@contextmanager
def chaos_world(options: Options, tmp: Path) -> Iterator[World]:
    """Start everything; stop it all on exit (printing the processes' logs' ends when
    the body raised)."""
    with ExitStack() as exits:
        cluster = None
        if options.database == "postgresql":
            cluster = exits.enter_context(running_cluster())
        config = EmulatorConfig.demo(
            port=0,
            page_name="Chaos Page",
            helpdesk_app_id=payloads.APP_ID,
            helpdesk_secret=payloads.APP_SECRET,
            helpdesk_token="e2e-page-token",  # what Stack.start connects the page with
            helpdesk_callback_url=None,
            users=[],
        )
        config.batch_max = options.batch_max
        config.seed = options.seed
        emulator = Emulator(config)
        emulator.start()
        exits.callback(emulator.stop)
        stack = Stack(
            tmp=tmp,
            graph_url=emulator.graph_url,
            page_name="Chaos Page",
            settings=SETTINGS,
            database_server_url=cluster.url if cluster is not None else "",
        )
        exits.callback(stack.close)
        # Killed first: a graceful Celery shutdown waits for its tasks, and nothing here
        # needs one (the run is over, its counts taken).
        exits.callback(_kill_all, stack)
        try:
            stack.start()
            api_port = free_port()
            stack.spawn_daphne(API_DAPHNE, api_port)
            stack.spawn_worker(WORKERS[1])
            wait_for_port(api_port, timeout=30)
            emulator.set_callback_url(payloads.APP_ID, f"{stack.base_url}/webhooks/messenger/")
            yield World(
                options=options,
                emulator=emulator,
                stack=stack,
                cluster=cluster,
                database_url=stack.env["DATABASE_URL"],
                api_urls=[f"http://127.0.0.1:{api_port}", stack.base_url],
            )
        except BaseException:
            print(stack.logs())
            raise


def _kill_all(stack: Stack) -> None:
    for process in stack.processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()
