"""The Page admin keeps the page's access token out of sight (see also
agents/test_admin.py, which checks every admin page of both apps for it)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from agents.models import Message
from tests.support import factories, payloads
from webhooks import services
from webhooks.crypto import token_unseal
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

TOKEN = "EAAB-page-token-do-not-leak"


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
