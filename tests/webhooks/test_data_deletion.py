"""Meta's Data Deletion Request Callback (issue 13, point 6): a signed request records a
deletion request, a task erases the person once, and a status page says where it is."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from agents.models import Contact, ControlState, Conversation, Message, Ticket
from tests.support import factories, payloads
from webhooks import deletion
from webhooks.models import DataDeletionRequest, GraphCall, WebhookEvent

pytestmark = pytest.mark.django_db

URL = "/webhooks/messenger/data-deletion/"
USER = payloads.PSID


@pytest.fixture(autouse=True)
def _handler(settings) -> None:
    settings.MESSENGER_DATA_DELETION_HANDLER = "agents.services.privacy.user_erase"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed(payload: dict[str, Any], secret: str = payloads.APP_SECRET) -> str:
    encoded = _b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{_b64(signature)}.{encoded}"


def _payload(user_id: Any = USER, algorithm: str = "HMAC-SHA256") -> dict[str, Any]:
    return {
        "algorithm": algorithm,
        "user_id": user_id,
        "issued_at": 1_700_000_000,
        "expires": 1_700_003_600,
    }


@pytest.fixture
def request_deletion(client, django_capture_on_commit_callbacks):
    def post(signed_request: str | None) -> Any:
        data = {} if signed_request is None else {"signed_request": signed_request}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, data)

    return post


def test_a_signed_request_erases_the_person_and_answers_with_a_status_url(
    page, client, request_deletion
):
    ticket = factories.ticket(page=page, psid=USER, status=Ticket.Status.CLOSED)
    factories.message(ticket=ticket, text="my address is 1 Main St")
    bob = factories.ticket(page=page, psid="3000000000000099", status=Ticket.Status.CLOSED)

    response = request_deletion(signed(_payload()))

    assert response.status_code == 200
    answer = response.json()
    record = DataDeletionRequest.objects.get()
    assert answer == {
        "url": f"http://testserver/webhooks/messenger/data-deletion/{record.confirmation_code}/",
        "confirmation_code": record.confirmation_code,
    }
    assert len(record.confirmation_code) >= 20
    # The task ran (eagerly): erased once, the id forgotten, the counts kept.
    assert record.status == DataDeletionRequest.Status.DONE
    assert record.user_id == ""
    assert record.user_digest == deletion.id_digest(USER)
    assert record.counts["contacts"] == 1 and record.counts["messages"] == 1
    assert not Contact.objects.filter(psid=USER).exists()
    assert not Message.objects.filter(text__contains="Main St").exists()
    assert Contact.objects.filter(pk=bob.conversation.contact_id).exists()

    status = client.get(answer["url"])
    assert status.status_code == 200
    assert status["Content-Type"].startswith("text/plain")
    assert status.content.decode() == (
        f"Your data deletion request {record.confirmation_code} is complete: the "
        "conversations and messages this helpdesk stored about you have been deleted."
    )


def test_a_person_with_an_open_ticket_waits_until_it_is_closed(page, client, request_deletion):
    ticket = factories.ticket(page=page, psid=USER)  # waiting, the helpdesk has the thread

    answer = request_deletion(signed(_payload())).json()
    again = request_deletion(signed(_payload(user_id=int(USER)))).json()

    record = DataDeletionRequest.objects.get()
    assert again == answer  # the same request, the same code
    assert (record.status, record.attempts) == (DataDeletionRequest.Status.PENDING, 1)
    assert record.note.startswith(f"Ticket {ticket.pk} is not closed")
    assert record.user_id == USER
    assert Contact.objects.filter(psid=USER).exists()
    pending = client.get(answer["url"]).content.decode()
    assert pending.startswith(f"Your data deletion request {record.confirmation_code} is pending.")

    # The ticket closes and the conversation is back with the bot: beat's re-drive erases.
    Ticket.objects.filter(pk=ticket.pk).update(
        status=Ticket.Status.CLOSED, closed_at=timezone.now()
    )
    Conversation.objects.update(control_state=ControlState.BOT)
    long_ago = timezone.now() - timedelta(hours=1)
    DataDeletionRequest.objects.update(created_at=long_ago, attempted_at=long_ago)
    assert deletion.data_deletions_redrive() == [record.pk]

    record.refresh_from_db()
    assert (record.status, record.attempts) == (DataDeletionRequest.Status.DONE, 2)
    assert not Contact.objects.filter(psid=USER).exists()
    assert deletion.data_deletions_redrive() == []
    assert deletion.data_deletion_run(request_id=record.pk) is False  # done: left alone


def test_someone_never_stored_gets_a_completed_request(db, request_deletion):
    GraphCall.objects.create(key="other", kind="profile", psid="777")

    response = request_deletion(signed(_payload(user_id="555")))

    assert response.status_code == 200
    record = DataDeletionRequest.objects.get()
    assert record.status == DataDeletionRequest.Status.DONE
    assert not any(record.counts.values())
    assert GraphCall.objects.count() == 1


@pytest.mark.parametrize(
    ("signed_request", "error"),
    [
        (None, "signed_request is missing"),
        ("", "signed_request is missing"),
        ("no-dot-here", "signed_request is not <signature>.<payload>"),
        ("a.b.c", "signed_request is not <signature>.<payload>"),
        (
            signed(_payload(), secret="another-secret"),
            "the signature does not match the app secret",
        ),
        (signed(_payload(algorithm="HMAC-SHA1")), "the algorithm is not HMAC-SHA256"),
        (signed(_payload(user_id="")), "the payload has no numeric user_id"),
        (signed(_payload(user_id="12ab")), "the payload has no numeric user_id"),
        (signed({"user_id": USER}), "the algorithm is not HMAC-SHA256"),
        ("!!!.???", "signed_request is not base64url"),
        (signed(_payload()) + "x", "the signature does not match the app secret"),
    ],
)
def test_a_bad_signed_request_is_400_and_changes_nothing(
    page, request_deletion, signed_request, error
):
    ticket = factories.ticket(page=page, psid=USER, status=Ticket.Status.CLOSED)

    response = request_deletion(signed_request)

    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert not DataDeletionRequest.objects.exists()
    assert Contact.objects.filter(pk=ticket.conversation.contact_id).exists()


def test_a_signed_payload_that_is_not_json_is_400(db, request_deletion):
    encoded = _b64(b"not json")
    signature = hmac.new(payloads.APP_SECRET.encode(), encoded.encode(), hashlib.sha256).digest()

    response = request_deletion(f"{_b64(signature)}.{encoded}")

    assert (response.status_code, response.json()) == (400, {"error": "the payload is not JSON"})
    assert not DataDeletionRequest.objects.exists()


def test_an_unknown_code_is_404_and_the_callback_is_post_only(db, client):
    response = client.get(f"{URL}0123456789abcdef01234567/")

    assert response.status_code == 404
    assert response.content.decode() == "No data deletion request has this confirmation code."
    assert client.get(URL).status_code == 405
    assert not WebhookEvent.objects.exists()
