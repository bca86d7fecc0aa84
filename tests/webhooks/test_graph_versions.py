"""The Graph API version: pinned in one setting, known to end, noticed when Meta answers
as another one."""

from __future__ import annotations

import datetime
import logging
import re

import pytest
from django.core.exceptions import ImproperlyConfigured

from helpdesk.settings import _graph_api
from tests.emulator.support import HELPDESK_SECRET, HELPDESK_TOKEN, PAGE, config
from tests.support import factories
from webhooks import graph, graph_versions
from webhooks.emulator import Emulator

# --- the setting ----------------------------------------------------------------------


def test_the_version_is_added_to_a_server_only_url():
    assert _graph_api("https://graph.facebook.com", "") == (
        "https://graph.facebook.com/v23.0",
        "v23.0",
    )
    assert _graph_api("https://graph.facebook.com/", "v25.0") == (
        "https://graph.facebook.com/v25.0",
        "v25.0",
    )


def test_a_url_that_names_its_version_pins_that_version():
    # as GRAPH_API_URL was given before GRAPH_API_VERSION existed
    assert _graph_api("http://127.0.0.1:8001/v21.0/", "") == (
        "http://127.0.0.1:8001/v21.0",
        "v21.0",
    )
    assert _graph_api("http://127.0.0.1:8001/v21.0", "v21.0") == (
        "http://127.0.0.1:8001/v21.0",
        "v21.0",
    )


def test_two_different_versions_refuse_to_start():
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("ends in v21.0 but GRAPH_API_VERSION is v25.0")
    ):
        _graph_api("http://127.0.0.1:8001/v21.0", "v25.0")


@pytest.mark.parametrize("bad", ["23.0", "v23", "latest", "v23.0/me"])
def test_a_malformed_version_refuses_to_start(bad):
    with pytest.raises(
        ImproperlyConfigured, match=re.escape("GRAPH_API_VERSION must look like v23.0")
    ):
        _graph_api("https://graph.facebook.com", bad)


def test_the_settings_pin_one_version_that_meta_serves_today():
    from django.conf import settings  # noqa: PLC0415

    assert settings.GRAPH_API_URL.endswith(f"/{settings.GRAPH_API_VERSION}")
    version = graph_versions.known(settings.GRAPH_API_VERSION)
    assert version is not None
    assert graph_versions.verdict(version.name, datetime.date(2026, 12, 1)).ok


# --- what Meta serves, and when it ends -----------------------------------------------

DAY = datetime.date


def test_served_versions_on_a_day():
    assert graph_versions.served(DAY(2026, 12, 1)) == [
        "v27.0",
        "v26.0",
        "v25.0",
        "v24.0",
        "v23.0",
        "v22.0",
        "v21.0",
    ]
    # the day a version ends, it is no longer served
    assert "v21.0" not in graph_versions.served(DAY(2027, 1, 21))
    assert "v21.0" in graph_versions.served(DAY(2027, 1, 20))


def test_an_ended_version_is_answered_as_the_oldest_served():
    assert graph_versions.answered_by("v23.0", DAY(2026, 12, 1)) == "v23.0"
    assert graph_versions.answered_by("v20.0", DAY(2026, 12, 1)) == "v21.0"
    assert graph_versions.answered_by("v20.0", DAY(2027, 2, 1)) == "v22.0"
    assert graph_versions.answered_by("v99.0", DAY(2026, 12, 1)) is None


def test_verdicts_in_plain_words():
    assert graph_versions.verdict("v23.0", DAY(2026, 12, 1)) == graph_versions.Verdict(
        True, "v23.0 is served until 08 Oct 2027 (announced by Meta)."
    )
    assert graph_versions.verdict("v26.0", DAY(2026, 12, 1)) == graph_versions.Verdict(
        True, "v26.0 is served; Meta has not announced its end yet."
    )
    assert graph_versions.verdict("v21.0", DAY(2026, 12, 1)) == graph_versions.Verdict(
        False, "v21.0 ends on 21 Jan 2027, in 51 days. Move GRAPH_API_VERSION to v27.0 before then."
    )
    assert graph_versions.verdict("v20.0", DAY(2026, 12, 1)) == graph_versions.Verdict(
        False,
        "v20.0 ended on 24 Sep 2026: Meta answers its calls as v21.0. Set "
        "GRAPH_API_VERSION to v27.0 after checking Meta's changelog.",
    )
    verdict = graph_versions.verdict("v99.0", DAY(2026, 12, 1))
    assert not verdict.ok
    assert verdict.text.startswith("v99.0 is not a Graph API version this helpdesk knows of")


# --- the helpdesk notices the version Meta answered as ---------------------------------


@pytest.fixture
def emulated_page(db, settings):
    with Emulator(config("legacy")) as emulator:
        settings.MESSENGER_APP_SECRET = HELPDESK_SECRET
        yield emulator, factories.page(page_id=PAGE, access_token=HELPDESK_TOKEN)


def _pin(settings, emulator, version: str) -> None:
    settings.GRAPH_API_URL, settings.GRAPH_API_VERSION = _graph_api(emulator.base_url, version)


def test_a_served_pin_is_answered_as_itself_and_notes_nothing(emulated_page, settings, caplog):
    emulator, page = emulated_page
    _pin(settings, emulator, graph_versions.served(datetime.date.today())[0])
    graph.page_probe(page)
    assert graph.answering_version() is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_ended_pin_is_noticed_once_a_day(emulated_page, settings, caplog):
    emulator, page = emulated_page
    _pin(settings, emulator, "v19.0")  # ended 21 May 2026
    oldest = graph_versions.served(datetime.date.today())[-1]
    graph.page_probe(page)  # raises unless Meta answered
    graph.page_probe(page)
    assert graph.answering_version() == oldest
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"Meta answers Graph calls as {oldest}, not the pinned GRAPH_API_VERSION v19.0"
    ]
