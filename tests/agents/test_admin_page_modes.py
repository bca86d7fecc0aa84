"""Issue 10, point 1, in the Page admin: an admin sees and edits how the helpdesk gets
control, how closing hands back, the hand-back notice and how long control is kept; a
bad value is a form error that saves nothing; and the page's handover health says what
worked, or, when Meta refuses both ways in, what the Page admin must change."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.support import payloads
from tests.support.fakegraph import graph_error
from webhooks.crypto import token_unseal
from webhooks.models import Page

pytestmark = pytest.mark.django_db

NOTICE = "You're now chatting with our assistant again."
# What the form posts for the settings these tests do not change.
FORM = {
    "name": "Acme",
    "access_token": "",  # keeps the current token
    "bot_app_id": payloads.BOT_APP_ID,
    "conversation_routing": "on",
    "control_mode": "auto",
    "handback": "pass",
    "handback_notice": "",
    "control_extend_max_hours": 72,
    "csat_question": "How did we do? Tap a number: 1 is poor, 5 is great.",
    "csat_thanks": "Thank you for your rating!",
    "csat_wait_minutes": 10,
}


@pytest.fixture
def root(db) -> Client:
    get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client = Client()
    assert client.login(username="root", password="pw-12345678")
    return client


def _change_url(page: Page) -> str:
    return f"/admin/webhooks/page/{page.pk}/change/"


def _text(response) -> str:
    """The page as a person reads it: tags out, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _options(html: str, name: str) -> list[str]:
    [select] = re.findall(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    return re.findall(r'<option value="([^"]*)"', select)


def _row(page: Page) -> dict[str, Any]:
    return Page.objects.filter(pk=page.pk).values().get()


def test_the_change_form_shows_the_control_handback_notice_and_extend_fields(root, page):
    response = root.get(_change_url(page))

    assert response.status_code == 200
    html = response.content.decode()
    assert _options(html, "control_mode") == ["auto", "request", "take"]
    assert re.search(r'<option value="auto" selected>', html)  # the default
    assert _options(html, "handback") == ["pass", "release"]
    assert re.search(r'<option value="pass" selected>', html)
    assert re.search(r'<input type="text" name="handback_notice" [^>]*maxlength="640"', html)
    assert re.search(r'<input type="number" name="control_extend_max_hours" value="72"', html)
    text = _text(response)
    for label in (
        "How the helpdesk gets control:",
        "Hand back by:",
        "Hand-back notice:",
        "Keep control for at most (hours):",
    ):
        assert label in text
    assert "at most 168, Meta's 7 days; 0: never" in text


def test_posting_the_change_form_saves_the_modes(root, page):
    response = root.post(
        _change_url(page),
        {
            **FORM,
            "control_mode": "take",
            "handback": "release",
            "handback_notice": NOTICE,
            "control_extend_max_hours": 168,
        },
    )

    assert response.status_code == 302
    page.refresh_from_db()
    assert (
        page.control_mode,
        page.handback,
        page.handback_notice,
        page.control_extend_max_hours,
    ) == ("take", "release", NOTICE, 168)
    # Saved through page_connect: the token stays, nothing else changed.
    assert token_unseal(page.access_token) == "page-token-secret"
    assert (page.page_id, page.name, page.conversation_routing) == (payloads.PAGE_ID, "Acme", True)
    # The form shows them back.
    html = root.get(_change_url(page)).content.decode()
    assert re.search(r'<option value="take" selected>', html)
    assert re.search(r'<option value="release" selected>', html)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (
            "control_extend_max_hours",
            200,
            "Ensure this value is less than or equal to 168.",
        ),
        (
            "control_extend_max_hours",
            -1,
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            "control_mode",
            "grab",
            "Select a valid choice. grab is not one of the available choices.",
        ),
        ("handback", "drop", "Select a valid choice. drop is not one of the available choices."),
        (
            "handback_notice",
            "x" * 641,
            "Ensure this value has at most 640 characters (it has 641).",
        ),
    ],
)
def test_an_invalid_value_shows_the_form_error_and_saves_nothing(root, page, field, value, error):
    before = _row(page)

    # Valid changes of every other mode come with it: none of them is saved either.
    response = root.post(
        _change_url(page),
        {
            **FORM,
            "control_mode": "take",
            "handback": "release",
            "handback_notice": NOTICE,
            "control_extend_max_hours": 24,
            field: value,
        },
    )

    assert response.status_code == 200
    assert error in _text(response)
    assert "Please correct the error below." in _text(response)
    assert _row(page) == before


# --- the handover health: what worked, and what to change when nothing does ---------------


def _ask_for_a_person(deliver, clock) -> None:
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")


def _health_on_the_list(root) -> str:
    return _text(root.get("/admin/webhooks/page/"))


def test_before_any_attempt_the_health_says_not_tried_yet(root, page):
    assert "How control comes in: not tried yet" in _text(root.get(_change_url(page)))
    assert "not tried yet" in _health_on_the_list(root)


def test_when_meta_refuses_request_and_take_the_health_says_what_the_page_admin_must_change(
    root, page, deliver, clock, fake_graph
):
    # Given a CR page on which Meta refuses requests and does not let the helpdesk take.
    fake_graph.fail_next(
        "/me/request_thread_control",
        graph_error(10, message="(#10) Handover Protocol APIs disabled for this page"),
    )
    fake_graph.fail_next(
        "/me/take_thread_control",
        graph_error(200, message="(#200) Permissions error"),
    )
    # When a customer asks for a person.
    _ask_for_a_person(deliver, clock)
    page.refresh_from_db()
    assert page.control_way == "none"

    # Then the page's admin says, in words, that nothing works and what to turn on.
    shown = _text(root.get(_change_url(page)))
    expected = (
        "How control comes in: Neither request nor take works. Meta refuses the helpdesk's "
        "requests on this Page and does not let it take conversations. In the Page's "
        "settings (Advanced messaging, Conversation Routing) turn on \u201cAllow this app "
        "to take control of conversations\u201d for the helpdesk's app. (Meta: "
    )
    assert expected in shown
    assert "(#200) Permissions error" in shown
    listed = _health_on_the_list(root)
    assert "Neither request nor take works." in listed
    assert "Allow this app to take control of conversations" in listed


def test_when_taking_worked_the_health_says_so_with_when(root, page, deliver, clock, fake_graph):
    fake_graph.fail_next(
        "/me/request_thread_control",
        graph_error(10, message="(#10) Handover Protocol APIs disabled for this page"),
    )
    _ask_for_a_person(deliver, clock)
    page.refresh_from_db()
    assert (page.control_way, page.control_way_note) == ("take", "")

    seen = f"{page.control_way_at:%Y-%m-%d %H:%M}"
    assert f"How control comes in: take works (last seen {seen})" in _text(
        root.get(_change_url(page))
    )
    listed = _health_on_the_list(root)
    assert f"take works (last seen {seen})" in listed
    assert "Neither request nor take works" not in listed


def test_the_health_is_shown_not_edited(root, page):
    # The way that works is what Meta's answers showed: the form has no input for it.
    html = root.get(_change_url(page)).content.decode()
    for name in ("control_way", "control_way_note", "handover_health"):
        assert f'name="{name}"' not in html
