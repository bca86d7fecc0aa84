"""`manage.py messenger_emulator`: its options and defaults, and a real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import CommandError

from helpdesk.localservices import free_port
from tests.support.polling import eventually
from webhooks.emulator import Emulator
from webhooks.management.commands.messenger_emulator import (
    Command,
    config_from_options,
    setup_words,
)

ROOT = Path(__file__).resolve().parents[2]


def options(*argv: str) -> dict:
    parser = Command().create_parser("manage.py", "messenger_emulator")
    return vars(parser.parse_args(list(argv)))


def test_the_defaults_are_the_demo_setup():
    config = config_from_options(options())
    assert (config.host, config.port, config.graph_version) == ("127.0.0.1", 8001, "v23.0")
    [page] = config.pages
    assert (page.page_id, page.name, page.mode, page.primary_app_id) == (
        "1000000000000001",
        "Demo Page",
        "cr",
        "200000000000002",
    )
    bot, helpdesk = config.apps
    assert (bot.app_id, bot.page_tokens, bot.role) == (
        "200000000000002",
        {"1000000000000001": "demo-bot-token"},
        "bot",
    )
    assert (
        helpdesk.app_id,
        helpdesk.secret,
        helpdesk.page_tokens,
        helpdesk.callback_url,
        helpdesk.require_appsecret_proof,
        helpdesk.human_agent,
    ) == (
        settings.MESSENGER_APP_ID,
        settings.MESSENGER_APP_SECRET,
        {"1000000000000001": "demo-page-token"},
        "http://127.0.0.1:8000/webhooks/messenger/",
        True,
        False,
    )
    assert page.take_control_app_ids == frozenset({"200000000000002"})
    assert config.bot_passes_on_button is False


def test_options_change_the_setup():
    config = config_from_options(
        options(
            "--mode",
            "legacy",
            "--human-agent",
            "--no-appsecret-proof",
            "--bot-passes-on-button",
            "--bot-cannot-take",
            "--callback-url",
            "",
            "--port",
            "9000",
        )
    )
    helpdesk = config.apps[1]
    assert (config.pages[0].mode, config.port) == ("legacy", 9000)
    assert (helpdesk.human_agent, helpdesk.require_appsecret_proof, helpdesk.callback_url) == (
        True,
        False,
        None,
    )
    assert config.bot_passes_on_button is True
    assert config.pages[0].take_control_app_ids == frozenset()
    assert config_from_options(options("--mode", "cr-zero-config")).pages[0].primary_app_id is None


def setup_of(config) -> tuple:
    [page] = config.pages
    return (
        page.mode,
        page.primary_app_id,
        page.requests_refused,
        page.take_control_app_ids,
        page.thread_control_refused,
    )


BOT_ID, HELPDESK_ID = "200000000000002", settings.MESSENGER_APP_ID


@pytest.mark.parametrize(
    ("argv", "setup"),
    [
        # The default is today's: CR, requests answered, only the bot may take.
        ((), ("cr", BOT_ID, False, frozenset({BOT_ID}), False)),
        (("--page-setup", "cr-request"), ("cr", BOT_ID, False, frozenset({BOT_ID}), False)),
        (
            ("--page-setup", "cr-take"),
            ("cr", BOT_ID, True, frozenset({BOT_ID, HELPDESK_ID}), False),
        ),
        (("--page-setup", "legacy"), ("legacy", BOT_ID, False, frozenset({BOT_ID}), False)),
        (
            ("--page-setup", "cr-zero-config"),
            ("cr-zero-config", None, False, frozenset({BOT_ID}), False),
        ),
        (
            ("--page-setup", "cr-take", "--mode", "cr"),
            ("cr", BOT_ID, True, frozenset({BOT_ID, HELPDESK_ID}), False),
        ),
        (("--mode", "legacy"), ("legacy", BOT_ID, False, frozenset({BOT_ID}), False)),
    ],
)
def test_the_page_setup_option(argv, setup):
    assert setup_of(config_from_options(options(*argv))) == setup


def test_a_page_setup_that_contradicts_the_mode_is_refused():
    with pytest.raises(CommandError, match="--page-setup cr-take is --mode cr, not --mode legacy"):
        config_from_options(options("--page-setup", "cr-take", "--mode", "legacy"))
    with pytest.raises(CommandError, match="invalid choice: 'take'"):
        options("--page-setup", "take")
    help_text = Command().create_parser("manage.py", "messenger_emulator").format_help()
    assert "cr-take (CR, the bot as default app, request_thread_control refused" in " ".join(
        help_text.split()
    )


def test_the_startup_lines_say_the_page_setup_in_words():
    config = config_from_options(options("--page-setup", "cr-take", "--port", "0"))
    assert setup_words(Emulator(config)) == (
        "Conversation Routing with a default app (Demo Bot); requests refused; "
        "may take: Helpdesk, Demo Bot"
    )
    legacy = config_from_options(options("--page-setup", "legacy", "--port", "0"))
    assert setup_words(Emulator(legacy)) == "Handover Protocol (legacy), primary receiver Demo Bot"


def test_the_bot_and_the_helpdesk_must_differ():
    with pytest.raises(CommandError):
        config_from_options(options("--bot-app-id", settings.MESSENGER_APP_ID))
    with pytest.raises(CommandError):
        config_from_options(options("--bot-token", "demo-page-token"))


def test_the_command_serves_until_sigterm():
    port = free_port()
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "messenger_emulator",
            "--port",
            str(port),
            "--callback-url",
            "",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    session = requests.Session()
    session.trust_env = False

    def answer() -> list[requests.Response]:
        try:
            return [session.get(f"http://127.0.0.1:{port}/emulator/api/state", timeout=1)]
        except requests.ConnectionError:
            assert process.poll() is None, process.stdout.read()
            return []  # not listening yet

    try:
        [response] = eventually(answer, timeout=20, interval=0.1, what="the emulator to start")
        assert response.json()["graph_url"] == f"http://127.0.0.1:{port}/v23.0"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, output
    assert f"GRAPH_API_URL:  http://127.0.0.1:{port}/v23.0" in output
    assert (
        "Routing:        Conversation Routing with a default app (Demo Bot); may take: Demo Bot\n"
        in output
    )
    assert output.rstrip().endswith("Emulator stopped.")
