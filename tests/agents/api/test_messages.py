"""Messages through the agent API: a reply is sent once (retried when Meta's error is
transient, failed in words when not), matched with its echo, refused while it could not
be sent; a failed one can be retried; a ticket's messages cost a fixed number of queries.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from agents.models import ControlState, Conversation, Message, Persona, Team, Ticket
from agents.services import outbound, reconcile
from agents.services.state import now_ms
from agents.tasks import message_send, ticket_return
from tests.support import factories, payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db


# --- reply ------------------------------------------------------------------------


def test_reply_is_sent_once_and_its_echo_is_matched(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hi, I'm Ana."})
    assert response.status_code == 201
    message = Message.objects.get(author_kind="agent")
    [send] = fake_graph.sends()
    # The agent's persona, created before their first reply on the page, and carried by it.
    [persona_call] = fake_graph.calls_to("/me/personas")
    assert persona_call.body == {"name": "ana"}
    persona = Persona.objects.get()
    assert (persona.agent.username, persona.persona_id, persona.error) == (
        "ana",
        persona_call.answered["id"],
        "",
    )
    assert (message.status, message.author.username) == ("sent", "ana")
    assert message.mid == send.answered["message_id"]
    assert send.body == {
        "recipient": {"id": payloads.PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi, I'm Ana.", "metadata": f"helpdesk:message={message.pk}"},
        "persona_id": persona.persona_id,
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
    assert message.status == "confirming"  # timed out: it may have gone through
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
    assert len(fake_graph.sends()) == 3


def test_terminal_send_errors_fail_the_message_with_the_reason(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(551, message="This person isn't available"))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "failed"
    assert len(fake_graph.sends()) == 1
    shown = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[-1]
    assert {k: shown[k] for k in ("status", "error", "error_detail", "error_code")} == {
        "status": "failed",
        # for the agent first; Meta's code and words in the detail line
        "error": "This person can't be reached on Messenger right now: they may have "
        "blocked the Page or deactivated their account.",
        "error_detail": "Meta error 551: This person isn't available",
        "error_code": 551,
    }


def test_a_failed_message_can_be_retried(handed_over, api, post, fake_graph):
    ticket = handed_over()
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
    assert (message.status, message.error, message.error_detail) == (
        "failed",
        f"Gave up after {settings.GRAPH_RETRY_MAX + 1} attempts: "
        "Messenger is limiting how fast this Page can send.",
        "Meta error 613: rate limited",
    )
    assert len(fake_graph.sends()) == settings.GRAPH_RETRY_MAX + 1


def test_not_owner_send_error_locks_the_conversation(ticket, api, post, fake_graph):
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID  # the bot took it meanwhile
    fake_graph.fail_next(
        "/me/messages",
        graph_error(10, 2018300, "(#10) The action is invalid since it's not the thread owner."),
    )
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.error, message.error_detail) == (
        "failed",
        "Another app has this conversation now, so Messenger refused the reply. Request "
        "control to reply again.",
        "Meta error 10/2018300: (#10) The action is invalid since it's not the thread owner.",
    )
    # Meta is asked who owns the thread, and the state says what it answered.
    assert [c.path for c in fake_graph.calls][-2:] == ["/me/messages", "/me/thread_owner"]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.TAKEN, "bot")
    last = conversation.transitions.last()
    assert (last.cause, last.owner_role) == ("reconcile", "bot")
    assert last.detail.startswith("Meta says: The bot has this conversation (a send was refused")
    ticket = Ticket.objects.get()
    assert (ticket.flagged, ticket.flag_reason) == (
        True,
        "The bot has this conversation; replies are locked.",
    )


def test_not_owner_send_error_on_an_idle_thread_says_nobody_owns_it(ticket, api, post, fake_graph):
    fake_graph.fail_next(
        "/me/messages",
        graph_error(10, 2018300, "(#10) The action is invalid since it's not the thread owner."),
    )
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.IDLE, "nobody")
    assert conversation.transitions.last().cause == "reconcile"
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["owner_role"], shown["owner_text"]) == ("nobody", "Nobody owns this conversation")


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
    assert fake_graph.sends() == []
    assert Ticket.objects.get().status == "waiting"


def test_reply_to_someone_elses_ticket_is_refused(ticket, api, api2, post, fake_graph):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(api2, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "me too"})
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "This ticket is assigned to ana."},
    )
    assert fake_graph.sends() == []


def test_windows_choose_the_messaging_type(ticket, api, post, fake_graph, page):
    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(hours=30))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "late"})
    assert response.status_code == 409
    assert "24-hour messaging window is closed" in response.json()["detail"]
    assert fake_graph.sends() == []

    page.human_agent_enabled = True
    page.save()
    assert post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "late"}).status_code == 201
    [send] = fake_graph.sends()
    assert (send.body["messaging_type"], send.body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")

    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(days=8))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "too late"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Messenger allows no reply until the customer writes again: they last wrote more "
        "than 7 days ago."
    )
    # A customer who never wrote (the bot passed their conversation): not "long ago".
    Conversation.objects.update(last_user_message_at=None)
    response = post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello?"})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Messenger allows no reply until the customer writes: no message of theirs has "
        "reached the helpdesk yet."
    )
    assert len(fake_graph.sends()) == 1


def _timed_out_reply(ticket, api, post, fake_graph, settings, text: str) -> Message:
    """A reply whose Send API call took effect at Meta but whose answer never came."""
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.2
    fake_graph.fail_next("/me/messages", Scripted(200, {"message_id": "m_late"}, delay=1))
    with mock.patch.object(message_send, "retry", side_effect=Retry) as retry:
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": text})
    retry.assert_not_called()  # an uncertain send is never retried on its own
    message = Message.objects.get(author_kind="agent")
    assert (message.status, message.error) == ("confirming", outbound.UNCONFIRMED)
    return message


def test_a_timed_out_send_waits_for_its_echo_and_is_not_sent_twice(
    ticket, api, post, fake_graph, deliver, clock, settings
):
    message = _timed_out_reply(ticket, api, post, fake_graph, settings, "did it arrive?")
    # The echo comes late (webhooks were delayed), still within the confirmation window.
    assert reconcile.messages_unconfirmed_settle() == {"confirming": [], "failed": []}
    assert reconcile.outbound_redrive()["messages"] == []
    deliver(
        payloads.echo(
            "did it arrive?",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid="m_late",
            metadata=f"helpdesk:message={message.pk}",
        )
    )
    message.refresh_from_db()
    assert (message.status, message.mid, message.error) == ("sent", "m_late", "")
    assert len(fake_graph.sends()) == 1
    # The Graph call's record agrees: confirmed, and never made again.
    record = GraphCall.objects.get(key=f"message:{message.pk}")
    assert (record.status, record.response) == (
        "succeeded",
        {"message_id": "m_late", "confirmed_by": "echo"},
    )
    message_send.apply(args=(message.pk,))
    assert len(fake_graph.sends()) == 1


def test_an_unconfirmed_send_fails_in_words_and_only_the_agent_sends_it_again(
    ticket, api, post, fake_graph, settings
):
    message = _timed_out_reply(ticket, api, post, fake_graph, settings, "are you there?")
    settings.GRAPH_CONFIRM_SECONDS = 0  # no echo came in time
    assert reconcile.messages_unconfirmed_settle() == {"confirming": [], "failed": [message.pk]}
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", outbound.NEVER_CONFIRMED)
    assert reconcile.outbound_redrive()["messages"] == []
    assert len(fake_graph.sends()) == 1  # nothing went out on its own

    response = post(api, f"/api/v1/messages/{message.pk}/retry")
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "sent"
    assert len(fake_graph.sends()) == 2  # the agent chose to send it again


def test_a_reply_left_sending_by_a_dead_worker_is_settled_not_resent(ticket, settings, fake_graph):
    message = factories.message(
        ticket=ticket,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.AGENT,
        status=Message.Status.SENDING,
        sending_since=timezone.now() - timedelta(seconds=60),  # its worker died
    )
    assert reconcile.messages_unconfirmed_settle() == {"confirming": [message.pk], "failed": []}
    message.refresh_from_db()
    assert (message.status, message.error) == ("confirming", outbound.WORKER_LOST)
    message_send.apply(args=(message.pk,))  # the task, redelivered, sends nothing
    settings.GRAPH_CONFIRM_SECONDS = 0
    assert reconcile.messages_unconfirmed_settle() == {"confirming": [], "failed": [message.pk]}
    message.refresh_from_db()
    assert message.status == "failed"
    assert fake_graph.sends() == []


def test_closing_waits_for_a_confirming_message_before_passing_control(
    ticket, api, post, fake_graph, deliver, clock, settings
):
    message = _timed_out_reply(ticket, api, post, fake_graph, settings, "one last thing")
    with mock.patch.object(ticket_return, "retry", side_effect=Retry) as retry:
        post(api, f"/api/v1/tickets/{ticket.pk}/close", {"outcome": "resolved"})
    assert retry.call_args.kwargs["countdown"] >= 5
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    deliver(
        payloads.echo(
            "one last thing",
            ts=clock(),
            app_id=payloads.APP_ID,
            mid="m_late",
            metadata=f"helpdesk:message={message.pk}",
        )
    )
    ticket_return.apply(args=(ticket.pk,))
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    assert Conversation.objects.get().control_state == ControlState.BOT


def _closing_message_never_confirmed(ticket, api, post, fake_graph, settings) -> Message:
    """Close with a closing message that carries the pass (Send API `thread_control`),
    whose answer is lost and whose echo never comes: it fails, never confirmed."""
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.2
    fake_graph.fail_next("/me/messages", Scripted(200, {"message_id": "m_late"}, delay=1))
    with mock.patch.object(ticket_return, "retry", side_effect=Retry):
        post(
            api,
            f"/api/v1/tickets/{ticket.pk}/close",
            {"outcome": "resolved", "closing_message": "Bye!"},
        )
    [send] = fake_graph.sends()
    assert send.body["thread_control"] == {"control_type": "pass", "app_id": payloads.BOT_APP_ID}
    settings.GRAPH_CONFIRM_SECONDS = 0
    reconcile.messages_unconfirmed_settle()
    closing = Message.objects.get(author_kind="agent")
    assert (closing.status, closing.error) == ("failed", outbound.NEVER_CONFIRMED)
    return closing


def test_a_hand_back_that_rode_on_an_unconfirmed_closing_message_is_checked_not_repeated(
    ticket, api, post, fake_graph, settings
):
    _closing_message_never_confirmed(ticket, api, post, fake_graph, settings)
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID  # the pass went with it
    calls = len(fake_graph.calls)

    ticket_return.apply(args=(ticket.pk,))

    assert [c.path for c in fake_graph.calls[calls:]] == ["/me/thread_owner"]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert conversation.transitions.last().cause == "reconcile"


def test_a_hand_back_on_an_unconfirmed_closing_message_that_had_no_effect_is_made_once(
    ticket, api, post, fake_graph, settings
):
    _closing_message_never_confirmed(ticket, api, post, fake_graph, settings)
    fake_graph.thread_owner_app_id = payloads.APP_ID  # still ours: nothing went through
    calls = len(fake_graph.calls)

    ticket_return.apply(args=(ticket.pk,))

    assert [c.path for c in fake_graph.calls[calls:]] == [
        "/me/thread_owner",
        "/me/pass_thread_control",
    ]
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_the_redrive_does_not_queue_a_reply_queued_within_the_lease(ticket, settings):
    settings.REDRIVE_GRACE_SECONDS = 0
    message = factories.message(
        ticket=ticket,
        direction=Message.Direction.OUTBOUND,
        author_kind=Message.Author.AGENT,
        status=Message.Status.PENDING,
    )
    with mock.patch.object(message_send, "delay") as delay:
        assert reconcile.outbound_redrive()["messages"] == [message.pk]
        assert reconcile.outbound_redrive()["messages"] == []  # still queued: not again
    delay.assert_called_once_with(message.pk)


def test_a_send_that_never_connected_is_retried_without_waiting(ticket, api, post, settings):
    settings.GRAPH_API_URL = "http://127.0.0.1:9/v23.0"  # nothing listens: refused
    with mock.patch.object(message_send, "retry", side_effect=Retry) as retry:
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    [(_, kwargs)] = retry.call_args_list
    assert kwargs["countdown"] <= settings.GRAPH_RETRY_BACKOFF_SECONDS


# --- a ticket's messages ------------------------------------------------------------


def test_the_messages_of_a_ticket_cost_the_same_queries_however_many(
    ticket, api, django_assert_max_num_queries
):
    factories.message(conversation=ticket.conversation, text="I need help", channel="standby")
    factories.message(
        ticket=ticket, text="Control passed to the helpdesk.", author_kind=Message.Author.SYSTEM
    )
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    with django_assert_max_num_queries(7):
        assert len(api.get(url).json()) == 2
    for n in range(10):
        factories.message(ticket=ticket, text=f"message {n}", timestamp=now_ms() + n)
    with django_assert_max_num_queries(7):
        assert len(api.get(url).json()) == 12


# --- pages of a conversation ----------------------------------------------------------


def _texts(response) -> list[str]:
    return [m["text"] for m in response.json()]


def _history(ticket: Ticket, count: int, *, start: int = 0) -> list[Message]:
    """`count` customer messages in the ticket, a millisecond apart, oldest first."""
    base = now_ms() - 10 * count
    return Message.objects.bulk_create(
        Message(
            conversation_id=ticket.conversation_id,
            ticket=ticket,
            direction=Message.Direction.INBOUND,
            author_kind=Message.Author.CUSTOMER,
            text=f"m{n}",
            timestamp=base + n,
        )
        for n in range(start, start + count)
    )


def test_messages_come_newest_page_first_and_before_goes_back(ticket, api):
    factories.message(conversation=ticket.conversation, text="c0", timestamp=1000)  # context
    # two at one instant: the id breaks the tie, nothing is skipped or repeated
    for text in ("t1", "t2", "t3", "t4"):
        factories.message(ticket=ticket, text=text, timestamp=2000 if text < "t3" else 3000)
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    newest = api.get(url, {"limit": 2})
    assert _texts(newest) == ["t3", "t4"]  # oldest first within the page
    cursor = newest.headers["X-Next-Cursor"]
    assert newest.headers["Link"] == f'<{url}?limit=2&before={cursor}>; rel="next"'
    older = api.get(url, {"limit": 2, "before": cursor})
    assert _texts(older) == ["t1", "t2"]
    oldest = api.get(url, {"limit": 2, "before": older.headers["X-Next-Cursor"]})
    assert [(m["text"], m["context"]) for m in oldest.json()] == [("c0", True)]
    assert ("X-Next-Cursor" in oldest.headers, "Link" in oldest.headers) == (False, False)


def test_a_conversation_comes_50_messages_at_a_time_by_default(ticket, api):
    _history(ticket, 51)
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    newest = api.get(url)
    assert _texts(newest) == [f"m{n}" for n in range(1, 51)]
    older = api.get(url, {"before": newest.headers["X-Next-Cursor"]})
    assert _texts(older) == ["m0"]
    assert "X-Next-Cursor" not in older.headers


def test_a_deep_page_of_messages_costs_the_same_queries_as_the_newest(
    ticket, api, django_assert_num_queries
):
    # Bearer auth (2) + visible pages (1) + the ticket (1) + the page (1) + who owned the
    # thread then and the ticket's (re)openings (2) = 7, however far back.
    _history(ticket, 1000)
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    with django_assert_num_queries(7):
        newest = api.get(url, {"limit": 100})
    assert _texts(newest)[0] == "m900"
    before = newest.headers["X-Next-Cursor"]
    for _ in range(8):
        before = api.get(url, {"limit": 100, "before": before}).headers["X-Next-Cursor"]
    with django_assert_num_queries(7):
        deepest = api.get(url, {"limit": 100, "before": before})
    assert _texts(deepest) == [f"m{n}" for n in range(100)]
    assert "X-Next-Cursor" not in deepest.headers


def test_bad_message_cursors_and_page_sizes_are_refused_in_words(ticket, page, api):
    _history(ticket, 3)
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    cursor = api.get(url, {"limit": 1}).headers["X-Next-Cursor"]
    factories.ticket(page=page, psid="3000000000000999", status=Ticket.Status.CLOSED)
    factories.ticket(page=page, psid="3000000000000998", status=Ticket.Status.CLOSED)
    ticket_cursor = api.get("/api/v1/tickets", {"queue": "closed", "limit": 1}).headers[
        "X-Next-Cursor"
    ]
    detail = (
        "`before` is not a cursor of this list: pass the X-Next-Cursor header of the "
        "previous page unchanged, or leave it out for the first page."
    )
    for bad in ["nonsense", "%%%", ticket_cursor]:
        response = api.get(url, {"before": bad})
        assert (response.status_code, response.json()) == (400, {"detail": detail}), bad
    assert api.get(url, {"before": cursor}).status_code == 200
    # a messages cursor is no ticket cursor either
    response = api.get("/api/v1/tickets", {"after": cursor})
    assert response.status_code == 400
    for limit in (0, 201):
        assert api.get(url, {"limit": limit}).status_code == 422


def test_one_message_is_shown_as_its_ticket_shows_it(ticket, page, api, api2, agent2):
    context = factories.message(conversation=ticket.conversation, text="to the bot")
    own = factories.message(ticket=ticket, text="to us")
    other = factories.ticket(page=page, psid="3000000000000997")
    elsewhere = factories.message(ticket=other, text="another conversation")
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    listed = {m["id"]: m for m in api.get(url).json()}
    for message in (context, own):
        shown = api.get(f"{url}/{message.pk}")
        assert (shown.status_code, shown.json()) == (200, listed[message.pk])
    assert api.get(f"{url}/{context.pk}").json()["context"] is True
    assert api.get(f"{url}/{own.pk}").json()["context"] is False
    missing = api.get(f"{url}/{elsewhere.pk}")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": f"Message {elsewhere.pk} is not in ticket {ticket.pk}'s conversation."},
    )
    # another team's page: the ticket, and so its messages, are not there
    team = Team.objects.create(name="billing")
    team.pages.add(page)
    team.members.add(agent2)
    assert api.get(f"{url}/{own.pk}").status_code == 404
    assert api2.get(f"{url}/{own.pk}").status_code == 200


def test_what_a_live_event_makes_the_inbox_read_costs_a_fixed_number_of_queries(
    ticket, agent, api, django_assert_num_queries
):
    # The inbox fetches the ticket and the message an event names. Bearer auth (2) +
    # visible pages (1) + the ticket (1), then its transitions, events and tags (3), or
    # the message (1) with who owned the thread then and the ticket's (re)openings (2):
    # the same for a short and a long history.
    url = f"/api/v1/tickets/{ticket.pk}"
    for size in (1, 300):
        _history(ticket, size)
        message = factories.message(
            ticket=ticket, text="new", author_kind=Message.Author.AGENT, author=agent
        )
        with django_assert_num_queries(7):
            assert api.get(url).json()["id"] == ticket.pk
        with django_assert_num_queries(7):
            assert api.get(f"{url}/messages/{message.pk}").json()["text"] == "new"


# --- receipts that overtake the send's answer -----------------------------------------


def _reply_being_confirmed(ticket, api, post, settings, fake_graph, clock) -> Message:
    """A reply that went out but whose Send API answer never came: it waits for its echo."""
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.2
    fake_graph.fail_next("/me/messages", Scripted(200, {"message_id": "m_late"}, delay=1))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "your parcel is on its way"})
    message = Message.objects.get(author_kind="agent")
    assert message.status == "confirming"
    return message


def _echo_of(message: Message, clock) -> dict:
    return payloads.echo(
        message.text,
        ts=clock(),
        app_id=payloads.APP_ID,
        mid="m_late",
        metadata=f"helpdesk:message={message.pk}",
    )


@pytest.mark.parametrize(
    ("receipt", "shown"),
    [
        (lambda watermark: payloads.read(ts=watermark + 1, watermark=watermark), "read"),
        (lambda watermark: payloads.delivered(mids=[], watermark=watermark), "delivered"),
    ],
    ids=["read", "delivered"],
)
def test_a_receipt_that_overtakes_the_confirmation_is_not_lost(
    receipt, shown, ticket, api, post, settings, fake_graph, deliver, clock
):
    # The customer's phone showed the message (and Meta sent the receipt) before our
    # worker learnt that the send went through: the receipt finds no sent message.
    message = _reply_being_confirmed(ticket, api, post, settings, fake_graph, clock)
    deliver(receipt(message.timestamp + 5))  # Meta stamps it a little after we did
    message.refresh_from_db()
    assert message.status == "confirming"

    deliver(_echo_of(message, clock))
    message.refresh_from_db()
    assert (message.status, message.mid, message.error) == (shown, "m_late", "")


def test_a_receipt_for_earlier_messages_does_not_mark_a_later_reply(
    ticket, api, post, settings, fake_graph, deliver, clock
):
    message = _reply_being_confirmed(ticket, api, post, settings, fake_graph, clock)
    before = message.timestamp - 1  # the customer read what came before our reply
    deliver(payloads.read(ts=clock(), watermark=before))
    deliver(_echo_of(message, clock))
    message.refresh_from_db()
    assert message.status == "sent"
    assert Conversation.objects.get().read_watermark == before


def test_an_older_receipt_does_not_lower_the_watermark(ticket, deliver, clock):
    later, earlier = clock(), clock() - 10_000
    deliver(payloads.read(ts=clock(), watermark=later))
    deliver(payloads.read(ts=clock(), watermark=earlier))
    deliver(payloads.delivered(mids=[], watermark=earlier))
    assert Conversation.objects.values_list("read_watermark", "delivered_watermark").get() == (
        later,
        earlier,
    )
