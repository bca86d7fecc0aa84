"""Page access tokens are encrypted at rest (TOKEN_ENCRYPTION_KEY): the column never
holds a token, only the Graph client decrypts it, and the migration encrypted the
rows stored before."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.support import factories, payloads
from webhooks import graph
from webhooks.crypto import TokenDecryptionError, token_seal, token_unseal
from webhooks.models import GraphCall, Page

TOKEN = "EAAB-page-token-do-not-store"
BEFORE = [("webhooks", "0003_delivery_progress_and_failed_events")]
AFTER = [("webhooks", "0004_page_access_token_encrypted")]


def _raw_tokens() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM webhooks_page ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_column_holds_no_token_whichever_way_it_is_written():
    page = factories.page(access_token=TOKEN)  # page_connect: update_or_create
    Page.objects.create(page_id="1000000000000099", name="Other", access_token=TOKEN)
    Page.objects.filter(pk=page.pk).update(access_token=TOKEN)  # even a bulk update

    raw = _raw_tokens()

    assert len(raw) == 2
    for stored in raw:
        assert TOKEN not in stored
        assert stored.startswith("fernet:")
        assert token_unseal(stored) == TOKEN
    assert raw[0] != raw[1]  # a fresh nonce each time: equal tokens do not look equal
    page.refresh_from_db()
    assert page.access_token == raw[0]  # the model hands out the encrypted form only


@pytest.mark.django_db
def test_a_saved_instance_no_longer_holds_the_plaintext():
    page = Page(page_id="1000000000000098", name="New", access_token=TOKEN, bot_app_id="1")
    page.save()

    assert TOKEN not in page.access_token
    assert token_unseal(page.access_token) == TOKEN


@pytest.mark.django_db
def test_the_graph_client_decrypts_it_for_the_call_only(page, fake_graph):
    graph.thread_owner(page, psid=payloads.PSID)

    [call] = fake_graph.calls
    assert {k.lower(): v for k, v in call.headers.items()}["authorization"] == (
        "Bearer page-token-secret"
    )
    assert "page-token-secret" not in page.access_token


@pytest.mark.django_db
def test_a_token_under_another_key_fails_the_call_in_words_without_retry(
    page, fake_graph, settings
):
    settings.TOKEN_ENCRYPTION_KEY = Fernet.generate_key().decode()

    with pytest.raises(graph.GraphError) as info:
        graph.thread_owner(page, psid=payloads.PSID)

    assert info.value.retryable is False
    assert "TOKEN_ENCRYPTION_KEY" in info.value.message
    assert fake_graph.calls == []
    assert "page-token-secret" not in str(list(GraphCall.objects.values_list()))


def test_keys_rotate_new_key_first(settings):
    old = Fernet.generate_key().decode()
    new = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEY = old
    sealed_under_old = token_seal(TOKEN)

    settings.TOKEN_ENCRYPTION_KEY = f"{new},{old}"

    assert token_unseal(sealed_under_old) == TOKEN
    settings.TOKEN_ENCRYPTION_KEY = new
    with pytest.raises(TokenDecryptionError):
        token_unseal(sealed_under_old)
    with pytest.raises(TokenDecryptionError):
        token_unseal(TOKEN)  # a plaintext is never "decrypted" to itself


@pytest.mark.django_db
def test_the_page_admin_shows_neither_the_token_nor_its_encrypted_form(client):
    page = factories.page(access_token=TOKEN)
    get_user_model().objects.create_superuser("root", "root@example.org", "pw-12345678")
    client.login(username="root", password="pw-12345678")

    html = client.get(f"/admin/webhooks/page/{page.pk}/change/").content.decode()

    assert TOKEN not in html
    assert page.access_token not in html
    assert "fernet:" not in html


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_tokens_already_stored_and_back():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    OldPage = old_apps.get_model("webhooks", "Page")
    OldPage.objects.create(page_id="1", name="A", access_token=TOKEN, bot_app_id="2")
    OldPage.objects.create(page_id="3", name="B", access_token="EAAB-second", bot_app_id="2")
    assert _raw_tokens() == [TOKEN, "EAAB-second"]

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    raw = _raw_tokens()
    assert [TOKEN not in value and value.startswith("fernet:") for value in raw] == [True, True]
    assert [token_unseal(value) for value in raw] == [TOKEN, "EAAB-second"]

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    assert _raw_tokens() == [TOKEN, "EAAB-second"]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
