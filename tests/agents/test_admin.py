"""Everything the loop stores is visible in Django admin, and the Page token never is."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model

from agents.models import Ticket
from tests.support import payloads

pytestmark = pytest.mark.django_db


def test_every_model_of_both_apps_is_registered():
    missing = [
        m.__name__
        for app in ("agents", "webhooks")
        for m in apps.get_app_config(app).get_models()
        if not admin.site.is_registered(m)
    ]
    assert missing == []


def test_admin_pages_show_the_loop_and_never_the_token(client, page, deliver, clock, fake_graph):
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="handover"))
    ticket = Ticket.objects.get()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client.force_login(root)
    for app in ("agents", "webhooks"):
        for model in apps.get_app_config(app).get_models():
            name = model._meta.model_name
            listing = client.get(f"/admin/{app}/{name}/")
            assert listing.status_code == 200, name
            assert b"page-token-secret" not in listing.content, name
            first = model.objects.first()
            if first is not None:
                detail = client.get(f"/admin/{app}/{name}/{first.pk}/change/")
                assert detail.status_code == 200, name
                assert b"page-token-secret" not in detail.content, name
    # The page's own admin, searched too: its name is shown, its token never.
    for response in (
        client.get("/admin/webhooks/page/"),
        client.get(f"/admin/webhooks/page/{page.pk}/change/"),
        client.get("/admin/webhooks/page/", {"q": "Acme"}),
    ):
        assert response.status_code == 200
        assert b"Acme" in response.content
        assert b"page-token-secret" not in response.content
    shown = client.get(f"/admin/agents/ticket/{ticket.pk}/change/").content.decode()
    assert "handover" in shown and "opened" in shown
    transitions = client.get("/admin/agents/conversation/").content.decode()
    assert "helpdesk owns the thread" in transitions
