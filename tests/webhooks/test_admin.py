"""The Page admin keeps the page's access token out of sight (see also
agents/test_admin.py, which checks every admin page of both apps for it)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.support import factories
from webhooks.crypto import token_unseal

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
