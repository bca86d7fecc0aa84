"""Standby context, triggers, requesting control, control arriving and being lost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import (
    Contact,
    ControlState,
    ControlTransition,
    Conversation,
    Message,
    Ticket,
    TicketEvent,
)
from agents.services import reconcile, tickets
from tests.support import payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db


def conversation() -> Conversation:
    return Conversation.objects.get()


def transitions() -> list[tuple[str, str, str]]:
    return list(
        ControlTransition.objects.order_by("id").values_list("from_state", "to_state", "cause")
    )


# --- standby context ------------------------------------------------------------


def test_standby_messages_and_bot_echoes_are_context_and_open_no_ticket(
    page, deliver, clock, fake_graph
):
    deliver(
        payloads.user_message("where is my order?", ts=clock(), mid="m_u1"),
        payloads.echo("Let me check that for you.", ts=clock(), mid="m_b1"),
        channel="standby",
    )

    rows = list(
        Message.objects.values_list(
            "mid", "author_kind", "direction", "app_id", "ticket", "channel", "text"
        )
    )
    assert rows == [
        ("m_u1", "customer", "in", "", None, "standby", "where is my order?"),
        ("m_b1", "bot", "out", payloads.BOT_APP_ID, None, "standby", "Let me check that for you."),
    ]
    assert Ticket.objects.count() == 0
    assert conversation().control_state == ControlState.BOT
    assert transitions() == []
    # the only Graph call is the profile lookup of the new contact
    assert [c.path for c in fake_graph.calls] == [f"/{payloads.PSID}"]


def test_contact_profile_is_fetched_once_and_cached(page, deliver, clock, fake_graph):
    fake_graph.profiles[payloads.PSID] = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "profile_pic": "https://pics.example/g.jpg",
    }
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.user_message("hello?", ts=clock()), channel="standby")
    contact = Contact.objects.get()
    assert (contact.display_name, contact.profile_pic, contact.profile_error) == (
        "Grace Hopper",
        "https://pics.example/g.jpg",
        "",
    )
    assert len(fake_graph.calls_to(f"/{payloads.PSID}")) == 1
    assert fake_graph.calls[0].query["fields"] == "first_name,last_name,profile_pic"


def test_refused_profile_falls_back_to_a_name_from_the_psid(page, deliver, clock, fake_graph):
    fake_graph.fail_next(f"/{payloads.PSID}", graph_error(100, 33, "Unsupported get request"))
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    contact = Contact.objects.get()
    assert contact.display_name == f"Messenger user …{payloads.PSID[-4:]}"
    assert "code 100/33" in contact.profile_error
    assert len(fake_graph.calls) == 1  # terminal: not retried


def test_transient_profile_errors_are_retried(page, deliver, clock, fake_graph):
    fake_graph.fail_next(f"/{payloads.PSID}", Scripted(503, {}), times=2)
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to(f"/{payloads.PSID}")) == 3
    assert Contact.objects.get().display_name == "Ada Lovelace"


# --- triggers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        lambda ts: payloads.postback("Talk to a human", ts=ts),  # standby: no payload
        lambda ts: payloads.user_message("Talk to a human", ts=ts, quick_reply="TALK_TO_HUMAN"),
        lambda ts: payloads.user_message("can I TALK TO A HUMAN please?", ts=ts),
    ],
    ids=["postback-title", "quick-reply", "keyword"],
)
def test_a_trigger_on_standby_requests_thread_control(page, deliver, clock, fake_graph, event):
    deliver(event(clock()), channel="standby")

    calls = fake_graph.calls_to("/me/request_thread_control")
    assert len(calls) == 1
    assert calls[0].body["recipient"] == {"id": payloads.PSID}
    metadata = json.loads(calls[0].body["metadata"])
    assert metadata["source"] == "helpdesk"
    assert metadata["reason"]
    assert conversation().control_state == ControlState.REQUESTED
    assert transitions() == [("bot", "requested", "webhook")]
    assert GraphCall.objects.get(kind="request_thread_control").status == "succeeded"
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize(
    "event",
    [
        lambda ts: payloads.user_message("I talked to a humanoid robot", ts=ts),
        lambda ts: payloads.postback("Talk to sales", ts=ts),
        lambda ts: payloads.user_message("ok", ts=ts, quick_reply="SOMETHING_ELSE"),
    ],
    ids=["near-keyword", "other-postback", "other-quick-reply"],
)
def test_other_standby_events_request_nothing(page, deliver, clock, fake_graph, event):
    deliver(event(clock()), channel="standby")
    assert fake_graph.calls_to("/me/request_thread_control") == []
    assert conversation().control_state == ControlState.BOT


def test_a_trigger_on_the_messaging_channel_requests_nothing(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.postback("Talk to a human", ts=clock(), payload="HUMAN"))
    assert fake_graph.calls_to("/me/request_thread_control") == []
    assert conversation().control_state == ControlState.AGENT


def test_no_second_request_while_one_is_pending(page, deliver, clock, fake_graph, settings):
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    deliver(payloads.user_message("talk to a human!!", ts=clock()), channel="standby")
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1
    assert transitions() == [("bot", "requested", "webhook")]

    # a request nobody answered for HANDOVER_REQUEST_TIMEOUT_SECONDS no longer blocks
    Conversation.objects.update(
        requested_at=timezone.now()
        - timedelta(seconds=settings.HANDOVER_REQUEST_TIMEOUT_SECONDS + 1)
    )
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 2


def test_transient_request_failures_are_retried(page, deliver, clock, fake_graph):
    fake_graph.fail_next("/me/request_thread_control", graph_error(2, message="unexpected"))
    fake_graph.fail_next("/me/request_thread_control", Scripted(502, {}))
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 3
    call = GraphCall.objects.get(kind="request_thread_control")
    assert (call.status, call.attempts) == ("succeeded", 3)
    assert conversation().control_state == ControlState.REQUESTED


def test_a_terminal_request_failure_goes_back_to_bot(page, deliver, clock, fake_graph):
    page.control_mode = "request"  # auto would try to take instead
    page.save()
    fake_graph.fail_next("/me/request_thread_control", graph_error(200, message="Permissions"))
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1
    assert conversation().control_state == ControlState.BOT
    assert transitions() == [("bot", "requested", "webhook"), ("requested", "bot", "api")]
    assert "code 200" in ControlTransition.objects.last().detail


def test_exhausted_request_retries_go_back_to_bot(page, deliver, clock, fake_graph, settings):
    fake_graph.fail_next("/me/request_thread_control", graph_error(613), times=10)
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")
    assert len(fake_graph.calls_to("/me/request_thread_control")) == settings.GRAPH_RETRY_MAX + 1
    assert conversation().control_state == ControlState.BOT
    assert "rate limit" in ControlTransition.objects.last().detail


# --- control arrives --------------------------------------------------------------


def test_pass_thread_control_opens_a_waiting_ticket_with_the_context(
    page, deliver, clock, fake_graph, api
):
    deliver(
        payloads.user_message("my parcel is lost", ts=clock(), mid="m_c1"),
        payloads.echo("Sorry to hear that!", ts=clock(), mid="m_c2"),
        payloads.postback("Talk to a human", ts=clock(), mid="m_c3"),
        channel="standby",
    )
    deliver(payloads.pass_control(ts=clock(), metadata="parcel lost"))
    deliver(payloads.user_message("hello? anyone?", ts=clock(), mid="m_t1"))

    ticket = Ticket.objects.get()
    assert (ticket.status, ticket.assignee, ticket.handover_metadata) == (
        "waiting",
        None,
        "parcel lost",
    )
    conv = conversation()
    assert (conv.control_state, conv.owner_app_id, conv.control_metadata) == (
        "agent",
        payloads.APP_ID,
        "parcel lost",
    )
    assert transitions() == [("bot", "requested", "webhook"), ("requested", "agent", "webhook")]
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["opened"]

    messages = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert [(m["mid"], m["author_kind"], m["context"]) for m in messages] == [
        ("m_c1", "customer", True),
        ("m_c2", "bot", True),
        ("m_c3", "customer", True),
        (None, "system", False),
        ("m_t1", "customer", False),
    ]
    assert messages[3]["text"] == "Control passed to the helpdesk."


def test_the_bot_may_pass_control_without_being_asked(page, deliver, clock, fake_graph):
    deliver(payloads.user_message("refund please", ts=clock()), channel="standby")
    deliver(payloads.pass_control(ts=clock(), metadata="bot gave up"))
    assert Ticket.objects.get().status == "waiting"
    assert transitions() == [("bot", "agent", "webhook")]
    assert fake_graph.calls_to("/me/request_thread_control") == []


def test_pass_to_another_app_opens_no_ticket(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock(), new_owner=payloads.PAGE_INBOX_APP_ID))
    assert Ticket.objects.count() == 0
    conv = conversation()
    assert (conv.control_state, conv.owner_app_id) == ("bot", payloads.PAGE_INBOX_APP_ID)


def test_control_coming_back_soon_after_close_reopens_the_ticket(
    page, deliver, clock, fake_graph, agent, run_on_commit, settings
):
    deliver(payloads.pass_control(ts=clock()))
    first = Ticket.objects.get()
    run_on_commit(tickets.ticket_close, ticket_id=first.pk, user=agent)
    assert conversation().control_state == ControlState.BOT

    deliver(payloads.pass_control(ts=clock(), metadata="again"))
    ticket = Ticket.objects.get()
    assert ticket.pk == first.pk
    assert (ticket.status, ticket.closed_at, ticket.handover_metadata) == ("waiting", None, "again")
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == [
        "opened",
        "closed",
        "reopened",
    ]

    run_on_commit(tickets.ticket_close, ticket_id=ticket.pk, user=agent)
    Ticket.objects.update(
        closed_at=timezone.now() - timedelta(seconds=settings.TICKET_REOPEN_WINDOW_SECONDS + 5)
    )
    deliver(payloads.pass_control(ts=clock()))
    assert Ticket.objects.count() == 2
    assert Ticket.objects.exclude(pk=first.pk).get().status == "waiting"


# --- control lost -----------------------------------------------------------------


def test_take_thread_control_flags_the_ticket_and_locks_replies(
    page, deliver, clock, fake_graph, api
):
    deliver(payloads.pass_control(ts=clock()))
    ticket = Ticket.objects.get()
    deliver(payloads.take_control(ts=clock(), metadata="bot resumes"))

    ticket.refresh_from_db()
    assert ticket.flagged is True
    assert ticket.flag_reason == "The bot took the conversation; replies are locked."
    assert ticket.status == "waiting"
    assert conversation().control_state == ControlState.TAKEN
    assert transitions()[-1] == ("agent", "taken", "webhook")
    sends_before = len(fake_graph.calls_to("/me/messages"))

    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/reply",
        {"text": "still there?"},
        content_type="application/json",
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Another app took this conversation back; request control to reply."
    }
    assert Message.objects.filter(author_kind="agent").count() == 0
    assert len(fake_graph.calls_to("/me/messages")) == sends_before == 0


def test_page_inbox_taking_control_is_named(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.take_control(ts=clock(), new_owner=payloads.PAGE_INBOX_APP_ID))
    assert Ticket.objects.get().flag_reason == (
        "The Page Inbox took the conversation; replies are locked."
    )


def test_events_are_applied_in_timestamp_order(page, deliver, clock, fake_graph):
    t_pass, t_take = clock(), clock()
    # one delivery, listed out of order: the pass (older) is applied first
    deliver(payloads.take_control(ts=t_take), payloads.pass_control(ts=t_pass))
    assert conversation().control_state == ControlState.TAKEN
    assert transitions() == [("bot", "agent", "webhook"), ("agent", "taken", "webhook")]


def test_a_late_older_handover_event_does_not_undo_a_newer_one(page, deliver, clock, fake_graph):
    t_old_take, t_pass = clock(), clock()
    deliver(payloads.pass_control(ts=t_pass))
    deliver(payloads.take_control(ts=t_old_take))  # delayed redelivery of an older event
    assert conversation().control_state == ControlState.AGENT
    assert Ticket.objects.get().flagged is False
    assert transitions() == [("bot", "agent", "webhook")]


def test_a_pass_retried_late_after_our_own_pass_back_is_checked_with_meta_not_applied(
    page, deliver, clock, fake_graph, agent, run_on_commit
):
    # Given a ticket closed and passed back to the bot after a pass whose copy (a retry
    # of a delivery that failed) is still on its way
    t_pass, t_retried = clock(), clock()
    deliver(payloads.pass_control(ts=t_pass))
    ticket = Ticket.objects.get()
    run_on_commit(tickets.ticket_close, ticket_id=ticket.pk, user=agent)
    assert conversation().control_state == ControlState.BOT
    before = transitions()
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID

    # When the older pass arrives after the pass back
    deliver(payloads.pass_control(ts=t_retried, metadata="late"))

    # Then Meta is asked who owns the thread, and nothing changes: the bot has it
    assert len(fake_graph.calls_to("/me/thread_owner")) == 1
    assert conversation().control_state == ControlState.BOT
    assert transitions() == before
    ticket.refresh_from_db()
    assert (ticket.status, ticket.handover_metadata) == ("closed", "")
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["opened", "closed"]


def test_an_older_pass_that_meta_confirms_still_gives_us_the_conversation(
    page, deliver, clock, fake_graph, agent, run_on_commit
):
    # Given a pass back to the bot, then a pass to us stamped before it (Meta's clock
    # behind ours) that did happen: Meta says we own the thread
    t_pass, t_skewed = clock(), clock()
    deliver(payloads.pass_control(ts=t_pass))
    ticket = Ticket.objects.get()
    run_on_commit(tickets.ticket_close, ticket_id=ticket.pk, user=agent)
    fake_graph.thread_owner_app_id = payloads.APP_ID

    deliver(payloads.pass_control(ts=t_skewed))

    # Then the check gives us the conversation and the ticket reopens, once
    assert conversation().control_state == ControlState.AGENT
    assert transitions()[-1] == ("bot", "agent", "reconcile")
    ticket.refresh_from_db()
    assert ticket.status == "waiting"
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == [
        "opened",
        "closed",
        "reopened",
    ]


def test_regaining_control_unflags_the_same_ticket(page, deliver, clock, fake_graph):
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.take_control(ts=clock()))
    deliver(payloads.pass_control(ts=clock(), metadata="here you go"))
    ticket = Ticket.objects.get()
    assert (ticket.flagged, ticket.flag_reason) == (False, "")
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == [
        "opened",
        "control_lost",
        "control_regained",
    ]


def test_the_bot_asking_for_the_thread_is_shown_and_changes_nothing(
    page, deliver, clock, fake_graph
):
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.request_control(ts=clock(), metadata="user idle"))
    assert conversation().control_state == ControlState.AGENT
    assert Message.objects.filter(author_kind="system").last().text == (
        "The bot asks for the conversation."
    )
    assert TicketEvent.objects.last().kind == "control_requested_by_other"


# --- echoes and receipts ------------------------------------------------------------


def test_page_inbox_echoes_are_labelled(page, deliver, clock, fake_graph):
    deliver(
        payloads.echo("Typed by a person", ts=clock(), app_id=payloads.PAGE_INBOX_APP_ID),
        channel="standby",
    )
    assert Message.objects.get().author_kind == "page_inbox"


def test_read_and_delivery_receipts_update_outbound_status(page, deliver, clock, fake_graph):
    t1, t2 = clock(), clock()
    deliver(
        payloads.echo("one", ts=t1, mid="m_o1"),
        payloads.echo("two", ts=t2, mid="m_o2"),
        channel="standby",
    )
    deliver(payloads.delivered(mids=["m_o1"], watermark=t1), channel="standby")
    assert dict(Message.objects.values_list("mid", "status")) == {
        "m_o1": "delivered",
        "m_o2": "sent",
    }
    deliver(payloads.read(ts=clock(), watermark=t2), channel="standby")
    assert dict(Message.objects.values_list("mid", "status")) == {"m_o1": "read", "m_o2": "read"}


# --- Conversation Routing: control lapses -------------------------------------------


def test_control_lapses_24_hours_after_the_users_last_message(
    page, deliver, clock, fake_graph, api
):
    deliver(payloads.pass_control(ts=clock()))
    ticket = Ticket.objects.get()
    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(hours=23))
    assert reconcile.control_lapse_reconcile() == []

    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(hours=25))
    assert reconcile.control_lapse_reconcile() == [conversation().pk]

    assert conversation().control_state == ControlState.IDLE
    assert transitions()[-1] == ("agent", "idle", "reconcile")
    ticket.refresh_from_db()
    assert ticket.flagged is True
    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hi"}, content_type="application/json"
    )
    assert (response.status_code, response.json()) == (
        409,
        {"detail": "Nobody owns this conversation; request control to reply."},
    )
    assert fake_graph.calls_to("/me/messages") == []
    assert reconcile.control_lapse_reconcile() == []  # once


def test_control_never_lapses_on_a_legacy_handover_page(page, deliver, clock, fake_graph):
    page.conversation_routing = False
    page.save()
    deliver(payloads.pass_control(ts=clock()))
    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(days=3))
    assert reconcile.control_lapse_reconcile() == []
    assert conversation().control_state == ControlState.AGENT


def test_messages_processed_before_the_handover_they_follow_join_the_ticket(
    page, deliver, clock, fake_graph, api
):
    # Deliveries are processed concurrently: a message stamped after the pass can be
    # applied before it.
    t_before, t_pass, t_after = clock(), clock(), clock()
    deliver(payloads.user_message("before", ts=t_before, mid="m_b"), channel="standby")
    deliver(payloads.user_message("after", ts=t_after, mid="m_a"))
    deliver(
        payloads.echo(
            "typed in the Page Inbox", ts=t_after + 1, mid="m_i", app_id=payloads.PAGE_INBOX_APP_ID
        )
    )
    deliver(payloads.pass_control(ts=t_pass))

    ticket = Ticket.objects.get()
    messages = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert [(m["mid"], m["author_kind"], m["context"]) for m in messages] == [
        ("m_b", "customer", True),
        (None, "system", False),
        ("m_a", "customer", False),
        ("m_i", "page_inbox", False),
    ]


def test_bot_side_messages_processed_after_the_handover_are_still_context(
    page, deliver, clock, fake_graph, api
):
    # Deliveries can be applied out of order: the customer's "talk to a human" on standby
    # may be processed after the handover it caused. It stays above the handover point,
    # and belongs to no ticket.
    before, handover = clock(), clock()
    deliver(payloads.pass_control(ts=handover))
    deliver(payloads.user_message("talk to a human", ts=before, mid="m_late"), channel="standby")
    deliver(payloads.user_message("hello?", ts=clock(), mid="m_after"))
    ticket = Ticket.objects.get()
    shown = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert [(m["mid"], m["author_kind"], m["ticket_id"], m["context"]) for m in shown] == [
        ("m_late", "customer", None, True),
        (None, "system", ticket.pk, False),
        ("m_after", "customer", ticket.pk, False),
    ]
