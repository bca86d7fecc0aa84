"""The Page admin connects pages as `manage.py connect_page` does and keeps the page's
access token out of sight (see also agents/test_admin.py, which checks every admin page
of both apps for it)."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command

from agents.models import Message
from tests.support import factories, payloads
from webhooks import services
from webhooks.crypto import token_unseal
from webhooks.models import Page, WebhookEvent

pytestmark = pytest.mark.django_db

TOKEN = "EAAB-page-token-do-not-leak"
# What the page form posts for the settings a test does not change.
PAGE_DEFAULTS = {
    "control_mode": "auto",
    "handback": "pass",
    "control_extend_max_hours": 72,
    "csat_question": "How did we do? Tap a number: 1 is poor, 5 is great.",
    "csat_thanks": "Thank you for your rating!",
    "csat_wait_minutes": 10,
}


def test_page_admin_saving_without_a_token_keeps_the_current_one(client):
    page = factories.page(access_token=TOKEN)
    get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client.login(username="root", password="pw-12345678")

    response = client.post(
        f"/admin/webhooks/page/{page.pk}/change/",
        {
            "page_id": page.page_id,
            "name": "Acme renamed",
            "access_token": "",
            "bot_app_id": page.bot_app_id,
            **PAGE_DEFAULTS,
        },
    )

    assert response.status_code == 302
    page.refresh_from_db()
    assert (page.name, token_unseal(page.access_token)) == ("Acme renamed", TOKEN)


def test_the_event_admin_applies_failed_events_again(client, clock):
    page = factories.page()
    body = payloads.body_bytes(
        payloads.delivery(payloads.user_message("again", ts=clock()), channel="standby")
    )
    delivery = services.delivery_receive(body=body)
    with mock.patch("webhooks.services._handler", return_value=_broken):
        services.delivery_process(delivery_id=delivery.pk)
    failed = WebhookEvent.objects.get(outcome="failed")
    get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client.login(username="root", password="pw-12345678")

    response = client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay", "_selected_action": [failed.pk]},
        follow=True,
    )

    assert "1 event(s) applied." in response.content.decode()
    failed.refresh_from_db()
    assert failed.outcome == "applied"
    assert list(Message.objects.values_list("text", "conversation__page")) == [("again", page.pk)]


def _broken(page, event):
    raise RuntimeError("a bug since fixed")


def _triggers(page) -> list[tuple[str, str, bool]]:
    return sorted(page.triggers.values_list("kind", "value", "active"))


def test_a_page_added_in_admin_is_connected_like_connect_page(
    admin_client, django_capture_on_commit_callbacks
):
    call_command(
        "connect_page",
        "--page-id",
        "41",
        "--access-token",
        "cli-token",
        "--bot-app-id",
        "42",
        "--name",
        "By command",
        stdout=StringIO(),
    )
    by_command = Page.objects.get(page_id="41")

    with (
        mock.patch("agents.realtime.broadcast") as told,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(
            "/admin/webhooks/page/add/",
            {
                "page_id": "51",
                "name": " By admin ",
                "access_token": TOKEN,
                "bot_app_id": "52",
                "conversation_routing": "on",
                **PAGE_DEFAULTS,
            },
        )

    assert response.status_code == 302
    page = Page.objects.get(page_id="51")
    assert response["Location"] == "/admin/webhooks/page/"
    assert (page.name, page.bot_app_id, page.conversation_routing, page.human_agent_enabled) == (
        "By admin",
        "52",
        True,
        False,
    )
    assert _triggers(page) == _triggers(by_command) != []
    assert TOKEN not in str(Page.objects.filter(pk=page.pk).values_list("access_token").get())
    assert token_unseal(page.access_token) == TOKEN
    assert [c.args[0] for c in told.call_args_list] == ["pages.changed"]
    assert LogEntry.objects.get().object_id == str(page.pk)


def test_a_page_changed_in_admin_keeps_its_id_and_triggers(admin_client):
    page = factories.page(access_token=TOKEN)
    page.triggers.filter(kind="keyword").delete()  # an admin removed one; it stays removed
    before = _triggers(page)

    response = admin_client.post(
        f"/admin/webhooks/page/{page.pk}/change/",
        {
            "page_id": "999",
            "name": "Acme",
            "access_token": "",
            "bot_app_id": "77",
            **PAGE_DEFAULTS,
        },
    )

    assert response.status_code == 302
    page.refresh_from_db()
    assert (page.page_id, page.bot_app_id) == (payloads.PAGE_ID, "77")
    assert _triggers(page) == before
    assert Page.objects.count() == 1


def _csat_post(admin_client, page: Page, **csat: object):
    return admin_client.post(
        f"/admin/webhooks/page/{page.pk}/change/",
        {
            "page_id": page.page_id,
            "name": page.name,
            "access_token": "",
            "bot_app_id": page.bot_app_id,
            **PAGE_DEFAULTS,
            **csat,
        },
    )


def test_the_rating_settings_are_saved_from_the_page_admin(admin_client):
    page = factories.page(access_token=TOKEN)
    form = admin_client.get(f"/admin/webhooks/page/{page.pk}/change/").content.decode()
    assert "ask for a rating when a ticket closes" in form.lower()
    assert "1 minute to 24 hours (1440)" in form

    response = _csat_post(
        admin_client,
        page,
        csat_enabled="on",
        csat_question="Rate us, 1 to 5",
        csat_thanks="",
        csat_wait_minutes=1440,
    )
    assert response.status_code == 302
    page.refresh_from_db()
    assert (page.csat_enabled, page.csat_question, page.csat_thanks, page.csat_wait_minutes) == (
        True,
        "Rate us, 1 to 5",
        "",
        1440,
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("csat_wait_minutes", 0, "Ensure this value is greater than or equal to 1."),
        ("csat_wait_minutes", 1441, "Ensure this value is less than or equal to 1440."),
        ("csat_question", "", "This field is required."),
        ("csat_question", "x" * 641, "Ensure this value has at most 640 characters"),
    ],
)
def test_bad_rating_settings_are_refused_and_change_nothing(admin_client, field, value, error):
    page = factories.page(access_token=TOKEN)
    response = _csat_post(admin_client, page, csat_enabled="on", **{field: value})
    assert response.status_code == 200
    assert error in response.content.decode()
    page.refresh_from_db()
    assert (page.csat_enabled, page.csat_wait_minutes) == (False, 10)


def test_the_rating_service_refuses_bad_values_in_words():
    page = factories.page()
    for kwargs, words in (
        ({"wait_minutes": 0}, "1 minute to 24 hours"),
        ({"wait_minutes": 1441}, "1 minute to 24 hours"),
        ({"question": "  "}, "The rating question is empty."),
        ({"thanks": "x" * 641}, "The thank-you message is longer than 640 characters."),
    ):
        values = {"enabled": True, "question": "Q?", "thanks": "Thanks", "wait_minutes": 10}
        values.update(kwargs)
        with pytest.raises(ValueError, match=words):
            services.page_csat_set(page_pk=page.pk, **values)
    page.refresh_from_db()
    assert page.csat_enabled is False
