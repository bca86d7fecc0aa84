"""The agent API: auth, listing, claim, reply, close, transfer, OpenAPI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from agents.errors import Conflict
from agents.models import ControlState, Conversation, Message, Team, Ticket
from agents.services import tickets
from tests.support import payloads
from tests.support.fakegraph import Scripted, graph_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket(page, deliver, clock, fake_graph) -> Ticket:
    deliver(payloads.user_message("I need help", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="help"))
    return Ticket.objects.get()


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    def post(client: Client, url: str, data: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, json.dumps(data or {}), content_type="application/json")

    return post


def sends(fake_graph):
    return fake_graph.calls_to("/me/messages")


# --- auth and listing -------------------------------------------------------------


def test_the_api_needs_a_valid_token_or_session(ticket, agent):
    assert Client().get("/api/v1/tickets").status_code == 401
    bad = Client(headers={"Authorization": "Bearer hd_not-a-token"})
    assert bad.get("/api/v1/tickets").status_code == 401
    agent.is_active = False
    agent.save()
    gone = Client(headers={"Authorization": f"Bearer {agent.api_token}"})
    assert gone.get("/api/v1/tickets").status_code == 401


def test_session_auth_needs_csrf_on_writes(ticket, agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.get("/api/v1/tickets").status_code == 200
    response = browser.post(f"/api/v1/tickets/{ticket.pk}/claim")
    assert response.status_code == 403
    assert Ticket.objects.get().status == "waiting"


def test_tickets_are_listed_by_status_with_psid_and_page(ticket, api, agent):
    listed = api.get("/api/v1/tickets", {"status": "waiting"}).json()
    assert [
        (t["id"], t["status"], t["contact"]["psid"], t["page_id"], t["control_state"])
        for t in listed
    ] == [(ticket.pk, "waiting", payloads.PSID, payloads.PAGE_ID, "agent")]
    assert api.get("/api/v1/tickets", {"status": "closed"}).json() == []
    assert api.get("/api/v1/tickets", {"status": "nonsense"}).status_code == 422
    assert api.get("/api/v1/tickets", {"mine": "true"}).json() == []


def test_teams_limit_which_pages_an_agent_sees(ticket, api, api2, agent2, page):
    team = Team.objects.create(name="billing")
    team.pages.add(page)
    assert api.get("/api/v1/tickets").json() == []
    assert api.get(f"/api/v1/tickets/{ticket.pk}").status_code == 404
    assert api.post(f"/api/v1/tickets/{ticket.pk}/claim").status_code == 404
    team.members.add(agent2)
    assert [t["id"] for t in api2.get("/api/v1/tickets").json()] == [ticket.pk]


def test_openapi_document_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/api/v1/tickets", "get"),
        ("/api/v1/tickets/{ticket_id}/messages", "get"),
        ("/api/v1/tickets/{ticket_id}/claim", "post"),
        ("/api/v1/tickets/{ticket_id}/reply", "post"),
        ("/api/v1/tickets/{ticket_id}/close", "post"),
        ("/api/v1/tickets/{ticket_id}/transfer", "post"),
    ]:
        assert method in paths[path], path
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}


# --- claim ------------------------------------------------------------------------


def test_claim_assigns_and_a_second_claim_gets_409(ticket, api, api2, agent, post):
    response = post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["assignee"]["username"]) == ("open", "ana")
    assert post(api, f"/api/v1/tickets/{ticket.pk}/claim").status_code == 200  # idempotent
    second = post(api2, f"/api/v1/tickets/{ticket.pk}/claim")
    assert second.status_code == 409
    assert second.json() == {"detail": "This ticket was already claimed by ana."}
    assert post(api, "/api/v1/tickets/9999/claim").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_exactly_one_wins(page, agent, agent2, clock, fake_graph, settings):
    from webhooks.services import delivery_process, delivery_receive

    delivery = delivery_receive(
        body=payloads.body_bytes(payloads.delivery(payloads.pass_control(ts=clock())))
    )
    delivery_process(delivery_id=delivery.pk)
    ticket = Ticket.objects.get()
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def claim(user):
        try:
            barrier.wait()
            results[user.username] = tickets.ticket_claim(ticket_id=ticket.pk, user=user)
        except Conflict as exc:
            results[user.username] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (agent, agent2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [r for r in results.values() if isinstance(r, Ticket)]
    losers = [r for r in results.values() if isinstance(r, Conflict)]
    assert (len(winners), len(losers)) == (1, 1)
    ticket.refresh_from_db()
    assert ticket.assignee.username == winners[0].assignee.username
    assert ticket.events.filter(kind="claimed").count() == 1


# --- reply ------------------------------------------------------------------------


def test_reply_is_sent_once_and_its_echo_is_matched(ticket, api, post, fake_graph, deliver, clock):
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hi, I'm Ana."})
    assert response.status_code == 201
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.mid, message.author.username) == ("sent", "m_fake_2", "ana")
    [send] = sends(fake_graph)
    assert send.body == {
        "recipient": {"id": payloads.PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi, I'm Ana.", "metadata": f"helpdesk:message={message.pk}"},
    }
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee.username) == ("open", "ana")  # claimed by replying

    deliver(
        payloads.echo(
            "Hi, I'm Ana.",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid=message.mid,
            metadata=f"helpdesk:message={message.pk}",
        )
    )
    assert Message.objects.filter(author_kind="agent").count() == 1
    shown = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[-1]
    assert (shown["id"], shown["status"], shown["error"]) == (message.pk, "sent", "")


def test_an_echo_before_the_send_answer_confirms_the_message(
    ticket, api, post, deliver, clock, fake_graph
):
    # The echo can overtake the Send API answer; its metadata names our message.
    fake_graph.fail_next("/me/messages", Scripted(200, {}, delay=2), times=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("django.conf.settings.GRAPH_API_TIMEOUT_SECONDS", 0.2)
        mp.setattr("django.conf.settings.GRAPH_RETRY_MAX", 0)
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "uncertain"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "failed"  # timed out, retries exhausted in this test
    deliver(
        payloads.echo(
            "uncertain",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid="m_real",
            metadata=f"helpdesk:message={message.pk}",
        )
    )
    message.refresh_from_db()
    assert (message.status, message.mid, message.error) == ("sent", "m_real", "")
    assert Message.objects.filter(author_kind="agent").count() == 1


def test_transient_send_errors_are_retried(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(1200, message="Temporary failure"))
    fake_graph.fail_next("/me/messages", Scripted(500, {}))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.attempts, message.error) == ("sent", 3, "")
    assert len(sends(fake_graph)) == 3


def test_terminal_send_errors_fail_the_message_with_the_reason(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(551, message="This person isn't available"))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "failed"
    assert message.error == (
        "this person isn't available right now (code 551): This person isn't available"
    )
    assert len(sends(fake_graph)) == 1
    shown = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[-1]
    assert (shown["status"], shown["error"]) == ("failed", message.error)


def test_a_failed_message_can_be_retried(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(100, 2018001, "No matching user"))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    response = post(api, f"/api/v1/messages/{message.pk}/retry")
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    assert post(api, f"/api/v1/messages/{message.pk}/retry").status_code == 409


def test_exhausted_retries_fail_the_message(ticket, api, post, fake_graph, settings):
    fake_graph.fail_next("/me/messages", graph_error(613, message="rate limited"), times=10)
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "failed"
    assert message.error.startswith(
        f"Gave up after {settings.GRAPH_RETRY_MAX + 1} attempts: "
        "Meta's rate limit was reached (code 613)"
    )
    assert len(sends(fake_graph)) == settings.GRAPH_RETRY_MAX + 1


def test_not_owner_send_error_locks_the_conversation(ticket, api, post, fake_graph):
    fake_graph.fail_next(
        "/me/messages",
        graph_error(10, 2018300, "(#10) The action is invalid since it's not the thread owner."),
    )
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "failed"
    assert message.error.startswith("another app owns this conversation")
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.TAKEN
    assert conversation.transitions.last().cause == "reconcile"
    assert Ticket.objects.get().flagged is True


@pytest.mark.parametrize(
    "text,detail",
    [
        ("", "The message is empty."),
        ("   ", "The message is empty."),
        ("x" * 2001, "The message is longer than 2000 characters."),
    ],
)
def test_bad_replies_are_refused_and_change_nothing(ticket, api, post, fake_graph, text, detail):
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": text})
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert Message.objects.filter(author_kind="agent").count() == 0
    assert sends(fake_graph) == []
    assert Ticket.objects.get().status == "waiting"


def test_reply_to_someone_elses_ticket_is_refused(ticket, api, api2, post, fake_graph):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(api2, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "me too"})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "This ticket is assigned to ana."},
    )
    assert sends(fake_graph) == []


def test_windows_choose_the_messaging_type(ticket, api, post, fake_graph, page):
    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(hours=30))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "late"})
    assert response.status_code == 409
    assert "24-hour messaging window is closed" in response.json()["detail"]
    assert sends(fake_graph) == []

    page.human_agent_enabled = True
    page.save()
    assert post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "late"}).status_code == 201
    [send] = sends(fake_graph)
    assert (send.body["messaging_type"], send.body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")

    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(days=8))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "too late"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "The messaging window is closed: the user last wrote more than 7 days ago."
    )
    assert len(sends(fake_graph)) == 1


# --- close --------------------------------------------------------------------------


def test_close_sends_the_closing_message_then_passes_control_to_the_bot(
    ticket, api, post, fake_graph
):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(
        api,
        f"/api/v1/tickets/{ticket.pk}/close",
        {"closing_message": "Glad I could help!", "outcome": "refunded"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed"

    tail = [c.path for c in fake_graph.calls][-2:]
    assert tail == ["/me/messages", "/me/pass_thread_control"]
    [passed] = fake_graph.calls_to("/me/pass_thread_control")
    assert passed.body["recipient"] == {"id": payloads.PSID}
    assert passed.body["target_app_id"] == payloads.BOT_APP_ID
    metadata = json.loads(passed.body["metadata"])
    assert metadata == {
        "source": "helpdesk",
        "ticket": ticket.pk,
        "outcome": "refunded",
        "agent": "ana",
    }
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert [t[:2] for t in conversation.transitions.values_list("from_state", "to_state", "cause")][
        -2:
    ] == [("agent", "returning"), ("returning", "bot")]
    closing = Message.objects.get(author_kind="agent")
    assert (closing.text, closing.status) == ("Glad I could help!", "sent")
    assert post(api, f"/api/v1/tickets/{ticket.pk}/close").status_code == 409


def test_pending_replies_go_out_before_control_is_passed(ticket, api, post, fake_graph):
    from agents.tasks import message_send

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(message_send, "delay", lambda *a: None)  # the worker is slow today
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "one"})
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "two"})
        assert sends(fake_graph) == []
        post(api, f"/api/v1/tickets/{ticket.pk}/close")
    paths = [c.path for c in fake_graph.calls if c.path.startswith("/me/")]
    assert paths == ["/me/messages", "/me/messages", "/me/pass_thread_control"]
    assert [c.body["message"]["text"] for c in sends(fake_graph)] == ["one", "two"]


def test_closing_a_taken_ticket_passes_nothing(ticket, api, post, fake_graph, deliver, clock):
    deliver(payloads.take_control(ts=clock()))
    refused = post(api, f"/api/v1/tickets/{ticket.pk}/close", {"closing_message": "bye"})
    assert refused.status_code == 409
    assert Ticket.objects.get().status == "waiting"
    assert post(api, f"/api/v1/tickets/{ticket.pk}/close").status_code == 200
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    assert sends(fake_graph) == []
    assert Conversation.objects.get().control_state == ControlState.TAKEN


def test_a_failed_pass_back_reopens_the_ticket_flagged(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/pass_thread_control", graph_error(100, message="Invalid app"))
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == ("waiting", True)
    assert ticket.flag_reason.startswith("Could not hand the conversation back to the bot")
    assert Conversation.objects.get().control_state == ControlState.AGENT


def test_transient_pass_back_errors_are_retried(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/pass_thread_control", Scripted(503, {}), times=2)
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 3
    assert Conversation.objects.get().control_state == ControlState.BOT


# --- transfer and request control -------------------------------------------------


def test_transfer_gives_the_ticket_to_another_agent(ticket, api, api2, agent2, post):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(api, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": agent2.pk})
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "bo"
    assert (
        post(api, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": 12345}).status_code == 400
    )
    # ana no longer holds it
    denied = post(api, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": agent2.pk})
    assert denied.status_code == 403


def test_an_agent_can_ask_for_control_again(ticket, api, post, fake_graph, deliver, clock):
    deliver(payloads.take_control(ts=clock()))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/request-control")
    assert response.status_code == 202
    assert response.json()["control_state"] == "requested"
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1
    assert post(api, f"/api/v1/tickets/{ticket.pk}/request-control").status_code == 409
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1


def test_a_timed_out_send_waits_for_its_echo_and_is_not_sent_twice(
    ticket, api, post, fake_graph, deliver, clock, settings
):
    from unittest import mock

    from celery.exceptions import Retry

    from agents.tasks import message_send

    settings.GRAPH_API_TIMEOUT_SECONDS = 0.2
    fake_graph.fail_next("/me/messages", Scripted(200, {"message_id": "m_late"}, delay=1))
    with mock.patch.object(message_send, "retry", side_effect=Retry) as retry:
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "did it arrive?"})
    [(_, kwargs)] = retry.call_args_list
    assert kwargs["countdown"] >= settings.GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.error) == (
        "pending",
        "Retrying: the Graph API did not answer in time",
    )

    # Meta did get it: the echo names our message before the retry runs.
    deliver(
        payloads.echo(
            "did it arrive?",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid="m_late",
            metadata=f"helpdesk:message={message.pk}",
        )
    )
    message_send.apply(args=(message.pk,))  # the delayed retry
    message.refresh_from_db()
    assert (message.status, message.mid) == ("sent", "m_late")
    assert len(sends(fake_graph)) == 1


def test_a_send_that_never_connected_is_retried_without_waiting(ticket, api, post, settings):
    from unittest import mock

    from celery.exceptions import Retry

    from agents.tasks import message_send

    settings.GRAPH_API_URL = "http://127.0.0.1:9/v23.0"  # nothing listens: refused
    with mock.patch.object(message_send, "retry", side_effect=Retry) as retry:
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    [(_, kwargs)] = retry.call_args_list
    assert kwargs["countdown"] <= settings.GRAPH_RETRY_BACKOFF_SECONDS
