"""Who said what, as the timeline shows it: each message carries who had the conversation
then (`segment`, from the thread-control history and the tickets' reopenings) and whether
it is folded (`context`); the conversation is in event-time order; a failed message says
why in words for agents, with Meta's code in a detail line."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent, ControlState, ControlTransition, Message, Ticket
from agents.services import reconcile
from agents.services.state import now_ms
from tests.support import factories, payloads
from tests.support.fakegraph import Scripted, graph_error

pytestmark = pytest.mark.django_db

EARLIER = "Earlier ticket #{} · closed by Ana Silva · resolved"
OTHER_APP = "555000000000555"


@pytest.fixture
def tick() -> Callable[[], int]:
    """Event timestamps as Meta stamps them: real time (what agents send is stamped with
    ours), strictly increasing."""
    last = [0]
    lock = threading.Lock()

    def next_ts() -> int:
        with lock:
            last[0] = max(now_ms(), last[0] + 1)
            return last[0]

    return next_ts


@pytest.fixture
def ana(agent: Agent) -> Agent:
    agent.first_name, agent.last_name = "Ana", "Silva"
    agent.save(update_fields=["first_name", "last_name"])
    return agent


def _timeline(api, ticket_id: int) -> list[tuple[str, bool, str, str]]:
    """Each message as (text, folded, segment kind, segment label)."""
    return [
        (m["text"], m["context"], m["segment"]["kind"], m["segment"]["label"])
        for m in api.get(f"/api/v1/tickets/{ticket_id}/messages").json()
    ]


def _first_ticket_with_the_agent(deliver, post, api, tick) -> Ticket:
    """The customer talks to the bot, is handed over, talks with Ana; Ana closes the
    ticket (resolved) and control goes back to the bot, which welcomes them back."""
    deliver(payloads.user_message("I need help", ts=tick()), channel="standby")
    deliver(payloads.pass_control(ts=tick(), metadata="help"))
    ticket = Ticket.objects.get()
    assert (
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hi, I'm Ana."}).status_code == 201
    )
    deliver(payloads.user_message("thanks!", ts=tick()))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/close", {"outcome": "resolved"})
    assert response.status_code == 200
    deliver(payloads.echo("Welcome back!", ts=tick()), channel="standby")
    deliver(payloads.user_message("one more thing", ts=tick()), channel="standby")
    return ticket


def test_a_reopened_tickets_earlier_messages_are_shown_as_that_ticket(
    page, ana, api, post, deliver, tick, fake_graph
):
    ticket = _first_ticket_with_the_agent(deliver, post, api, tick)
    handover = tick()
    deliver(payloads.pass_control(ts=handover, metadata="again"))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.handover_timestamp) == ("waiting", handover)  # reopened
    deliver(payloads.user_message("still there?", ts=tick()))

    earlier = EARLIER.format(ticket.pk)
    assert _timeline(api, ticket.pk) == [
        ("I need help", True, "bot", "With the bot"),
        # the whole earlier stretch of the ticket, the agent's reply too, folded as such
        ("Control passed to the helpdesk.", True, "earlier_ticket", earlier),
        ("Hi, I'm Ana.", True, "earlier_ticket", earlier),
        ("thanks!", True, "earlier_ticket", earlier),
        ("The conversation went back to the bot.", True, "earlier_ticket", earlier),
        ("Welcome back!", True, "bot", "With the bot"),
        ("one more thing", True, "bot", "With the bot"),
        ("Control passed to the helpdesk.", False, "this_ticket", "This ticket"),
        ("still there?", False, "this_ticket", "This ticket"),
    ]
    segment = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[2]["segment"]
    assert segment == {
        "kind": "earlier_ticket",
        "key": f"ticket:{ticket.pk}:0",
        "label": earlier,
        "app_id": "",
        "ticket_id": ticket.pk,
        "ticket_status": "closed",
        "closed_by": "Ana Silva",
        "outcome": "resolved",
    }
    # The ticket's own changes of that stretch fold with it; the reopening is placed at
    # the handover's time (Meta's clock), not when it was processed.
    events = api.get(f"/api/v1/tickets/{ticket.pk}").json()["events"]
    assert [(e["kind"], e["context"], e["segment"]["key"]) for e in events] == [
        ("opened", True, f"ticket:{ticket.pk}:0"),
        ("claimed", True, f"ticket:{ticket.pk}:0"),
        ("closed", True, f"ticket:{ticket.pk}:0"),
        ("reopened", False, f"ticket:{ticket.pk}"),
    ]
    assert events[-1]["timestamp"] == handover


def test_an_earlier_ticket_is_named_from_the_next_and_the_next_from_the_earlier(
    page, ana, api, post, deliver, tick, fake_graph, settings
):
    settings.TICKET_REOPEN_WINDOW_SECONDS = 0  # control coming back opens a new ticket
    first = _first_ticket_with_the_agent(deliver, post, api, tick)
    deliver(payloads.pass_control(ts=tick(), metadata="again"))
    second = Ticket.objects.exclude(pk=first.pk).get()
    deliver(payloads.user_message("still there?", ts=tick()))

    earlier = EARLIER.format(first.pk)
    assert _timeline(api, second.pk) == [
        ("I need help", True, "bot", "With the bot"),
        ("Control passed to the helpdesk.", True, "earlier_ticket", earlier),
        ("Hi, I'm Ana.", True, "earlier_ticket", earlier),
        ("thanks!", True, "earlier_ticket", earlier),
        ("The conversation went back to the bot.", True, "earlier_ticket", earlier),
        ("Welcome back!", True, "bot", "With the bot"),
        ("one more thing", True, "bot", "With the bot"),
        ("Control passed to the helpdesk.", False, "this_ticket", "This ticket"),
        ("still there?", False, "this_ticket", "This ticket"),
    ]
    later = f"Later ticket #{second.pk} · waiting"
    assert _timeline(api, first.pk)[-2:] == [
        ("Control passed to the helpdesk.", True, "later_ticket", later),
        ("still there?", True, "later_ticket", later),
    ]


def test_what_the_bot_says_before_our_hand_back_call_returns_is_the_bots(
    page, ana, api, post, deliver, tick, fake_graph
):
    deliver(payloads.user_message("I need help", ts=tick()), channel="standby")
    deliver(payloads.pass_control(ts=tick()))
    ticket = Ticket.objects.get()
    # The pass back takes Meta a moment to answer; meanwhile the bot, the owner again,
    # greets the customer: its echo is stamped during our call.
    fake_graph.fail_next("/me/pass_thread_control", Scripted(200, {"success": True}, delay=0.5))
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {"outcome": "resolved"})
    returned = now_ms()
    # The hand-back is stamped when our call was made; Meta took 0.5 s to answer it.
    handed_back = ControlTransition.objects.filter(to_state=ControlState.BOT).latest("id").at
    assert returned - handed_back >= 500
    deliver(payloads.echo("Welcome back!", ts=handed_back + 100), channel="standby")

    assert _timeline(api, ticket.pk)[-2:] == [
        ("The conversation went back to the bot.", False, "this_ticket", "This ticket"),
        ("Welcome back!", True, "bot", "With the bot"),
    ]


def test_what_the_customer_says_while_the_ticket_is_handed_back_is_the_tickets(
    page, api, deliver, tick, fake_graph
):
    # Closed, the pass back to the bot not made yet: the customer is still talking to
    # the agent; the bot, if it speaks already, is not.
    conversation = factories.conversation(page=page, control_state=ControlState.RETURNING)
    ticket = factories.ticket(
        conversation=conversation, status=Ticket.Status.CLOSED, handover_timestamp=tick()
    )
    deliver(payloads.user_message("thanks, bye!", ts=tick()))
    deliver(payloads.echo("Hello again!", ts=tick()), channel="standby")

    assert list(Message.objects.values_list("text", "ticket_id")) == [
        ("thanks, bye!", ticket.pk),
        ("Hello again!", None),
    ]
    assert _timeline(api, ticket.pk) == [
        ("thanks, bye!", False, "this_ticket", "This ticket"),
        ("Hello again!", True, "bot", "With the bot"),
    ]


def test_a_page_inbox_reply_while_the_ticket_is_open_is_shown_as_the_page_inbox(
    page, ana, api, post, deliver, tick, fake_graph
):
    deliver(payloads.user_message("I need help", ts=tick()), channel="standby")
    deliver(payloads.pass_control(ts=tick(), metadata="help"))
    ticket = Ticket.objects.get()
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hi, I'm Ana."})
    # A colleague answers from Meta's Page Inbox: under Conversation Routing it takes
    # the thread, and its message comes as an echo with the Page Inbox's app id.
    deliver(payloads.take_control(ts=tick(), new_owner=payloads.PAGE_INBOX_APP_ID))
    deliver(
        payloads.echo("Page Inbox here, sorted!", ts=tick(), app_id=payloads.PAGE_INBOX_APP_ID),
        channel="standby",
    )
    deliver(payloads.user_message("great, thanks", ts=tick()), channel="standby")
    # then the Page Inbox hands the thread to the bot, which talks on
    deliver(
        payloads.pass_control(
            ts=tick(), previous_owner=payloads.PAGE_INBOX_APP_ID, new_owner=payloads.BOT_APP_ID
        )
    )
    deliver(payloads.echo("Anything else?", ts=tick()), channel="standby")

    assert _timeline(api, ticket.pk) == [
        ("I need help", True, "bot", "With the bot"),
        ("Control passed to the helpdesk.", False, "this_ticket", "This ticket"),
        ("Hi, I'm Ana.", False, "this_ticket", "This ticket"),
        ("The Page Inbox took the conversation.", False, "this_ticket", "This ticket"),
        ("Page Inbox here, sorted!", False, "page_inbox", "With the Page Inbox"),
        ("great, thanks", False, "page_inbox", "With the Page Inbox"),
        ("Anything else?", True, "bot", "With the bot"),
    ]
    inbox = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()[4]
    assert (inbox["author_kind"], inbox["app_id"], inbox["segment"]["app_id"]) == (
        "page_inbox",
        payloads.PAGE_INBOX_APP_ID,
        payloads.PAGE_INBOX_APP_ID,
    )


def test_context_is_labelled_by_who_owned_the_thread_another_app_or_nobody(
    page, api, deliver, tick, fake_graph
):
    deliver(payloads.user_message("hello bot", ts=tick()), channel="standby")
    # the bot hands the thread to another app, which talks, then lets it go idle
    deliver(payloads.pass_control(ts=tick(), new_owner=OTHER_APP))
    deliver(payloads.echo("Survey app here", ts=tick(), app_id=OTHER_APP), channel="standby")
    deliver(payloads.user_message("5 stars", ts=tick()), channel="standby")
    deliver(payloads.pass_control(ts=tick(), previous_owner=OTHER_APP, new_owner=""))
    deliver(payloads.user_message("anyone there?", ts=tick()), channel="standby")
    deliver(payloads.pass_control(ts=tick(), previous_owner=None))
    ticket = Ticket.objects.get()

    other = f"With another app (app {OTHER_APP})"
    assert _timeline(api, ticket.pk) == [
        ("hello bot", True, "bot", "With the bot"),
        ("Survey app here", True, "other_app", other),
        ("5 stars", True, "other_app", other),
        ("anyone there?", True, "nobody", "Nobody had the conversation (idle)"),
        ("Control passed to the helpdesk.", False, "this_ticket", "This ticket"),
    ]
    segments = [m["segment"] for m in api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()]
    assert [(s["key"], s["app_id"]) for s in segments] == [
        ("bot", payloads.BOT_APP_ID),
        (f"app:{OTHER_APP}", OTHER_APP),
        (f"app:{OTHER_APP}", OTHER_APP),
        ("nobody", ""),
        (f"ticket:{ticket.pk}", ""),
    ]


def test_the_conversation_is_in_event_time_order_not_arrival(page, api, deliver, tick, fake_graph):
    first, second, third = tick(), tick(), tick()
    deliver(payloads.user_message("hello", ts=first), channel="standby")
    handover = tick()
    # Meta retried a delivery: the pass arrives first, the last message before the one
    # the customer wrote first.
    deliver(payloads.pass_control(ts=handover))
    deliver(payloads.user_message("third", ts=third), channel="standby")
    deliver(payloads.user_message("second", ts=second), channel="standby")
    ticket = Ticket.objects.get()
    assert list(
        Message.objects.exclude(author_kind="system").order_by("id").values_list("text", flat=True)
    ) == ["hello", "third", "second"]

    shown = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert [(m["text"], m["timestamp"]) for m in shown] == [
        ("hello", first),
        ("second", second),
        ("third", third),
        ("Control passed to the helpdesk.", handover),
    ]
    [opened] = api.get(f"/api/v1/tickets/{ticket.pk}").json()["events"]
    assert (opened["kind"], opened["timestamp"]) == ("opened", handover)


# --- failed messages ------------------------------------------------------------------

WINDOW = "Messenger only allows replies within 24 hours of the customer's last message."


@pytest.mark.parametrize(
    ("error", "text", "detail"),
    [
        (
            graph_error(10, 2018278, "(#10) This message is sent outside of allowed window."),
            WINDOW,
            "Meta error 10/2018278: (#10) This message is sent outside of allowed window.",
        ),
        (
            graph_error(200, 1545041, "Message Not Sent"),
            WINDOW,
            "Meta error 200/1545041: Message Not Sent",
        ),
        (
            graph_error(551, message="This person isn't available right now."),
            "This person can't be reached on Messenger right now: they may have blocked the "
            "Page or deactivated their account.",
            "Meta error 551: This person isn't available right now.",
        ),
        (
            graph_error(10, 2018108, "This person isn't receiving messages from you right now."),
            "This person isn't receiving messages from the Page right now.",
            "Meta error 10/2018108: This person isn't receiving messages from you right now.",
        ),
        (
            graph_error(
                10, 2018300, "(#10) The action is invalid since it's not the thread owner."
            ),
            "Another app has this conversation now, so Messenger refused the reply. Request "
            "control to reply again.",
            "Meta error 10/2018300: (#10) The action is invalid since it's not the thread owner.",
        ),
        (
            graph_error(200, message="(#200) Permissions error"),
            "The helpdesk isn't allowed to send this message for the Page (a permissions "
            "error). An admin needs to check the app's access to the Page.",
            "Meta error 200: (#200) Permissions error",
        ),
        (
            graph_error(100, message="(#100) Invalid parameter"),
            "Messenger rejected the message as invalid; sending it again won't help.",
            "Meta error 100: (#100) Invalid parameter",
        ),
        (
            graph_error(100, 2018001, "(#100) No matching user found"),
            "Messenger doesn't know this person any more: the conversation can't be reached.",
            "Meta error 100/2018001: (#100) No matching user found",
        ),
    ],
    # 190 (token), 230 (permission) and 10/1893063 (restricted page) do not fail a message:
    # they pause the page's outbox (tests/agents/test_outbox_pause.py).
    ids=["window", "1545041", "551", "2018108", "not-owner", "200", "100", "2018001"],
)
def test_a_failed_reply_says_why_for_the_agent_with_metas_code_apart(
    ticket, api, post, fake_graph, error, text, detail
):
    fake_graph.fail_next("/me/messages", error)
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    [shown] = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert (shown["status"], shown["error"], shown["error_detail"]) == ("failed", text, detail)
    assert (shown["error_code"], shown["error_subcode"]) == (
        error.body["error"]["code"],
        error.body["error"].get("error_subcode"),
    )
    assert len(fake_graph.sends()) == 1  # terminal: not retried


def test_outside_the_human_agent_window_the_reason_says_7_days(page, api, post, fake_graph):
    page.human_agent_enabled = True
    page.save(update_fields=["human_agent_enabled"])
    conversation = factories.conversation(
        page=page,
        control_state="agent",
        last_user_message_at=timezone.now() - timedelta(days=2),
    )
    ticket = factories.ticket(conversation=conversation)
    fake_graph.fail_next(
        "/me/messages",
        graph_error(10, 2018278, "(#10) This message is sent outside of allowed window."),
    )
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    [send] = fake_graph.sends()
    assert send.body["tag"] == "HUMAN_AGENT"
    message = Message.objects.get()
    assert message.error == (
        "Messenger only allows replies within 7 days of the customer's last message, even "
        "with the Human Agent tag."
    )


@pytest.mark.parametrize(
    ("error", "text", "detail"),
    [
        (
            graph_error(613, message="Calls to this API have exceeded the rate limit."),
            "Messenger is limiting how fast this Page can send.",
            "Meta error 613: Calls to this API have exceeded the rate limit.",
        ),
        (
            graph_error(4, 2018022, "Application request limit reached"),
            "Messenger is limiting how fast this Page can send.",
            "Meta error 4/2018022: Application request limit reached",
        ),
        (
            Scripted(502, {}),
            "Messenger's servers had a problem.",
            "HTTP 502 from the Graph API, no error code",
        ),
    ],
    ids=["613", "4", "502"],
)
def test_transient_errors_say_retrying_then_why_it_gave_up(
    ticket, api, post, fake_graph, settings, error, text, detail
):
    attempts = settings.GRAPH_RETRY_MAX + 1
    fake_graph.fail_next("/me/messages", error, times=attempts)
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    [shown] = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert (shown["status"], shown["error"], shown["error_detail"]) == (
        "failed",
        f"Gave up after {attempts} attempts: {text}",
        detail,
    )
    assert len(fake_graph.sends()) == attempts


def test_a_send_whose_outcome_stays_unknown_says_so(ticket, api, post, fake_graph, settings):
    fake_graph.fail_next("/me/messages", Scripted(200, {}, delay=2), times=1)
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.2
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "uncertain"})
    [shown] = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert (shown["status"], shown["error"], shown["error_detail"]) == (
        "confirming",
        "Meta did not answer in time: the message may have been sent. Waiting for its echo "
        "to confirm it.",
        "",
    )
    Message.objects.update(sending_since=timezone.now() - timedelta(days=1))
    reconcile.messages_unconfirmed_settle()
    [shown] = api.get(f"/api/v1/tickets/{ticket.pk}/messages").json()
    assert (shown["status"], shown["error"], shown["error_detail"]) == (
        "failed",
        "Meta never confirmed this message: it may not have been delivered. Retry to send it "
        "again.",
        f"No answer from Meta, and no echo within {settings.GRAPH_CONFIRM_SECONDS} s",
    )
    assert len(fake_graph.sends()) == 1  # never sent again on its own
