"""The helpdesk's clock (helpdesk/clock.py): real time in production; in development
(DEV_CLOCK_FILE) it follows the emulator's clock, moved on its control page, so windows,
countdowns and Conversation Routing lapses show what production will show. The clock
file is the one a real emulator writes (its state directory)."""

from __future__ import annotations

import runpy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from agents.models import ControlState, Conversation, Message, Ticket
from agents.services import reconcile
from helpdesk import clock
from tests.support import factories, payloads
from webhooks.emulator import Emulator, EmulatorConfig

pytestmark = pytest.mark.django_db

HOUR = 3600
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator(tmp_path) -> Emulator:
    """make run's emulator, not serving: only its clock and the file it writes."""
    return Emulator(EmulatorConfig.demo(port=0, helpdesk_callback_url=None), state_dir=tmp_path)


@pytest.fixture
def dev_clock(settings, emulator, tmp_path) -> Emulator:
    """The development setting on, pointing at the emulator's clock file."""
    settings.DEV_CLOCK_FILE = str(tmp_path / "clock.json")
    return emulator


def _server_time(response) -> datetime:
    return datetime.fromtimestamp(int(response["X-Server-Time"]) / 1000, tz=UTC)


def _window_left(api, ticket: Ticket) -> timedelta:
    """What the API says is left of the 24-hour window, on the server's clock."""
    response = api.get(f"/api/v1/tickets/{ticket.pk}")
    assert response.status_code == 200
    closes = datetime.fromisoformat(response.json()["window_closes_at"])
    return closes - _server_time(response)


def _ticket_written_to(page, *, ago: timedelta) -> Ticket:
    conversation = factories.conversation(
        page=page, control_state=ControlState.AGENT, last_user_message_at=timezone.now() - ago
    )
    return factories.ticket(conversation=conversation)


# --- the clock itself ------------------------------------------------------------------------


def test_production_uses_real_time_whatever_the_emulator_says(emulator, settings):
    emulator.advance_clock(23 * HOUR)
    assert settings.DEV_CLOCK_FILE == ""

    before = timezone.now()
    now = clock.now()

    assert clock.offset() == timedelta(0)
    assert before <= now <= timezone.now()


def test_the_development_clock_follows_the_emulator(dev_clock):
    assert clock.offset() == timedelta(0)

    dev_clock.advance_clock(23 * HOUR)
    assert clock.offset() == timedelta(hours=23)
    before = timezone.now()
    now = clock.now()
    assert before + timedelta(hours=23) <= now <= timezone.now() + timedelta(hours=23)

    dev_clock.advance_clock(HOUR)  # the file is replaced: read again
    assert clock.offset() == timedelta(hours=24)


@pytest.mark.parametrize(
    "content", ["", "{", '{"offset_seconds": "soon"}', '{"offset_seconds": -60}', "[]", "NaN"]
)
def test_an_unreadable_clock_file_is_real_time(settings, tmp_path, content):
    path = tmp_path / "clock.json"
    path.write_text(content)
    settings.DEV_CLOCK_FILE = str(path)

    assert clock.offset() == timedelta(0)


def test_no_clock_file_yet_is_real_time(settings, tmp_path):
    settings.DEV_CLOCK_FILE = str(tmp_path / "not-yet" / "clock.json")

    assert clock.offset() == timedelta(0)


def test_production_settings_refuse_the_development_clock(monkeypatch):
    for name in ("DEBUG", "HELPDESK_ENV_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HELPDESK_ENV_FILE", "")
    production = {
        "SECRET_KEY": "prod-secret-key-value",
        "MESSENGER_APP_ID": "100000000000009",
        "MESSENGER_APP_SECRET": "prod-app-secret-value",
        "MESSENGER_VERIFY_TOKEN": "prod-verify-token-value",
        "TOKEN_ENCRYPTION_KEY": "ZHrq5ngzE-OzlS6cHbEP2-yfGTtDOTgYJWSm0nmWPwQ=",
        "DEV_CLOCK_FILE": "var/emulator/clock.json",
        "DEBUG": "0",
    }
    for name, value in production.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured) as raised:
        runpy.run_path(str(ROOT / "helpdesk" / "settings.py"))

    assert str(raised.value).startswith("DEV_CLOCK_FILE moves the helpdesk's clock")
    monkeypatch.setenv("DEBUG", "1")
    assert runpy.run_path(str(ROOT / "helpdesk" / "settings.py"))["DEV_CLOCK_FILE"] == (
        "var/emulator/clock.json"
    )


# --- windows and countdowns through the API ------------------------------------------------


def test_moving_the_emulator_23_hours_leaves_less_than_an_hour_of_the_window(page, api, dev_clock):
    ticket = _ticket_written_to(page, ago=timedelta(minutes=1))
    assert timedelta(hours=23, minutes=58) < _window_left(api, ticket) <= timedelta(hours=24)

    dev_clock.advance_clock(23 * HOUR)

    left = _window_left(api, ticket)
    assert timedelta(minutes=58) < left < timedelta(hours=1)


def test_without_the_setting_moving_the_emulator_changes_nothing(page, api, emulator):
    ticket = _ticket_written_to(page, ago=timedelta(minutes=1))

    emulator.advance_clock(23 * HOUR)
    response = api.get(f"/api/v1/tickets/{ticket.pk}")

    assert abs(_server_time(response) - timezone.now()) < timedelta(minutes=1)
    assert _window_left(api, ticket) > timedelta(hours=23, minutes=58)


def test_a_countdown_never_shows_more_than_the_windows_length(page, api, settings):
    # Meta's (or the emulator's) clock ahead of ours: the last message is stamped 20 h
    # from now, which the parser accepts (up to 24 h ahead).
    settings.DEV_CLOCK_FILE = ""
    page.human_agent_enabled = True
    page.save()
    ticket = _ticket_written_to(page, ago=-timedelta(hours=20))

    response = api.get(f"/api/v1/tickets/{ticket.pk}")
    body, now = response.json(), _server_time(response)

    assert datetime.fromisoformat(body["window_closes_at"]) - now <= timedelta(hours=24)
    assert datetime.fromisoformat(body["human_agent_window_closes_at"]) - now <= timedelta(days=7)
    listed = api.get("/api/v1/tickets", {"queue": "all_open"})
    [row] = listed.json()
    assert datetime.fromisoformat(row["window_closes_at"]) - _server_time(listed) <= timedelta(
        hours=24
    )


def test_every_api_answer_says_the_servers_time_and_other_pages_do_not(api, client, dev_clock):
    dev_clock.advance_clock(2 * HOUR)

    queues = api.get("/api/v1/queues")
    refused = client.get("/api/v1/queues")  # 401 answers too
    login_page = client.get("/login/")

    for response in (queues, refused):
        assert abs(_server_time(response) - timezone.now() - timedelta(hours=2)) < timedelta(
            minutes=1
        )
    assert "X-Server-Time" not in login_page


# --- what the helpdesk decides on the clock -------------------------------------------------


def test_a_reply_is_refused_once_the_moved_clock_closed_the_window(page, api, dev_clock, post):
    ticket = _ticket_written_to(page, ago=timedelta(minutes=1))
    dev_clock.advance_clock(25 * HOUR)

    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hi"}, content_type="application/json"
    )

    assert (response.status_code, response.json()) == (
        409,
        {
            "detail": "The 24-hour messaging window is closed and this page does not have "
            "the Human Agent feature."
        },
    )
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()


def test_control_lapses_when_the_moved_clock_passes_24_hours(page, dev_clock):
    ticket = _ticket_written_to(page, ago=timedelta(minutes=1))
    assert reconcile.control_lapse_reconcile() == []

    dev_clock.advance_clock(24 * HOUR)

    assert reconcile.control_lapse_reconcile() == [ticket.conversation_id]
    assert Conversation.objects.get().control_state == ControlState.IDLE


def test_agent_messages_are_stamped_on_the_moved_clock_after_the_users(
    page, api, dev_clock, deliver, fake_graph
):
    # Given the emulator 23 h ahead, and a user message stamped on its clock.
    dev_clock.advance_clock(23 * HOUR)
    user_ts = int((timezone.now() + timedelta(hours=23)).timestamp() * 1000)
    deliver(payloads.pass_control(ts=user_ts - 1000))
    deliver(payloads.user_message("where is my parcel?", ts=user_ts))
    ticket = Ticket.objects.get()

    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/reply",
        {"text": "on its way"},
        content_type="application/json",
    )

    assert response.status_code == 201
    texts = [m.text for m in Message.objects.order_by("timestamp", "id")]
    assert texts[-2:] == ["where is my parcel?", "on its way"]


def test_event_times_on_the_moved_clock_are_believed(page, dev_clock, deliver, fake_graph):
    # 30 h ahead of real time: beyond what the parser accepts from a real clock (24 h).
    dev_clock.advance_clock(30 * HOUR)
    ts = int((timezone.now() + timedelta(hours=30)).timestamp() * 1000)

    deliver(payloads.user_message("hello", ts=ts), channel="standby")

    assert Message.objects.get().timestamp == ts
