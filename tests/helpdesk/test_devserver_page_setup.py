"""Issue 10, point 10: `make run`'s demo page is what most real Pages are now, a
Conversation Routing page with the bot as default app, requests refused, and the
helpdesk allowed to take control. `devserver.main` is run with its children replaced
(no process starts): the emulator's command line it builds is read back through the
emulator command's own parser, and an emulator started from it says its setup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings

from helpdesk import devserver
from webhooks.emulator import Emulator
from webhooks.emulator.config import DEMO_BOT_APP_ID, DEMO_PAGE_ID
from webhooks.management.commands.messenger_emulator import (
    Command as EmulatorCommand,
)
from webhooks.management.commands.messenger_emulator import (
    config_from_options,
    setup_words,
)

HELPDESK = settings.MESSENGER_APP_ID
PORT, EMULATOR_PORT = "18000", "18001"


class Children:
    """Stands in for `devserver.Supervisor`: records what would be started."""

    def __init__(self) -> None:
        self.spawned: list[tuple[str, list[str]]] = []

    def spawn(self, name: str, argv: list[str]) -> None:
        self.spawned.append((name, argv))

    def check(self, *, restart: bool = True) -> None:
        pass

    def stop_all(self) -> None:
        pass

    def argv(self, name: str) -> list[str]:
        [argv] = [argv for spawned, argv in self.spawned if spawned == name]
        return argv


@pytest.fixture
def make_run(monkeypatch, tmp_path) -> Iterator[Children]:
    """`devserver.main()` up to its children all started, then stopped as by Ctrl-C:
    nothing is started, migrated or seeded, no signal handler is installed."""
    children = Children()
    monkeypatch.setenv("PORT", PORT)
    monkeypatch.setenv("EMULATOR_PORT", EMULATOR_PORT)
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")  # no Redis started
    # main() sets these itself. setenv first, so that monkeypatch puts back what was
    # there before, absent included (delenv of an absent variable records nothing, and
    # DEV_CLOCK_FILE left set breaks every later test of the production settings).
    for name in ("GRAPH_API_URL", "DEV_CLOCK_FILE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    seeded = "Demo login: demo / demo-password\nAPI token (shown once): tok\n"
    with (
        mock.patch.object(devserver, "environment_prepare", return_value=True),
        mock.patch.object(devserver, "port_is_free", return_value=True),
        mock.patch.object(devserver, "signal"),
        mock.patch.object(devserver, "BASE_DIR", tmp_path),
        mock.patch.object(devserver, "Supervisor", return_value=children),
        mock.patch.object(devserver, "manage", return_value=seeded) as manage,
        mock.patch.object(devserver.localservices, "wait_for_port"),
        mock.patch.object(devserver, "wait_for_http", side_effect=devserver.Shutdown("SIGINT")),
    ):
        assert devserver.main() == 0
        assert [c.args for c in manage.call_args_list] == [
            ("migrate", "--noinput"),
            ("demo_seed", "--emulator-url", f"http://127.0.0.1:{EMULATOR_PORT}"),
        ]
        yield children


def _emulator_options(argv: list[str]) -> dict[str, Any]:
    """The options `manage.py messenger_emulator` gets from this command line."""
    assert Path(argv[1]).name == "manage.py"
    assert argv[2] == "messenger_emulator"
    parser = EmulatorCommand().create_parser("manage.py", "messenger_emulator")
    return vars(parser.parse_args(argv[3:]))


def test_make_run_starts_the_emulator_with_the_cr_take_page_setup(make_run):
    argv = make_run.argv("messenger emulator")

    assert argv[argv.index("--page-setup") + 1] == "cr-take"
    assert argv[argv.index("--port") + 1] == EMULATOR_PORT
    # First, before the helpdesk's own processes.
    assert [name for name, _ in make_run.spawned] == [
        "messenger emulator",
        "daphne",
        "celery worker",
        "celery beat",
    ]


def test_make_runs_demo_page_is_cr_with_the_bot_as_default_app_and_the_helpdesk_may_take(
    make_run,
):
    options = _emulator_options(make_run.argv("messenger emulator"))
    assert (options["mode"], options["page_setup"]) == (None, "cr-take")

    config = config_from_options(options)
    [page] = config.pages
    assert (page.page_id, page.mode, page.primary_app_id) == (DEMO_PAGE_ID, "cr", DEMO_BOT_APP_ID)
    assert page.requests_refused is True
    assert page.take_control_app_ids == frozenset({HELPDESK, DEMO_BOT_APP_ID})
    assert page.thread_control_refused is False
    # The app that may take is this helpdesk: its webhooks go to make run's Daphne.
    helpdesk = config.app(HELPDESK)
    assert helpdesk is not None
    assert helpdesk.callback_url == f"http://127.0.0.1:{PORT}/webhooks/messenger/"


def test_the_started_emulator_says_its_demo_page_routes_conversations_that_way(make_run):
    options = _emulator_options(make_run.argv("messenger emulator"))
    options["port"] = 0  # a free one: this emulator does serve
    with Emulator(config_from_options(options)) as emulator:
        [page] = emulator.state()["pages"]
        words = setup_words(emulator)

    assert (page["mode"], page["primary_app_id"], page["requests_refused"]) == (
        "cr",
        DEMO_BOT_APP_ID,
        True,
    )
    assert HELPDESK in page["take_control_app_ids"]
    assert words == (
        "Conversation Routing with a default app (Demo Bot); requests refused; "
        "may take: Helpdesk, Demo Bot"
    )
