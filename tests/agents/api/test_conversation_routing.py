"""Issue 10 against the recording fake: how control comes in (request, take, auto), the
hand-back (pass, release, in the last message), unknown outcomes checked with
`thread_owner` before anything is made again, the lapse, extension, a paused page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents.models import ControlState, Conversation, Message, Ticket, TicketEvent
from agents.services import outbound, reconcile
from helpdesk import clock as helpdesk_clock
from tests.support import payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db

HOP_DISABLED = graph_error(10, message="(#10) Handover Protocol APIs disabled for this page")
NO_TAKE = graph_error(
    200, message="(#200) Permissions error: this app is not allowed to take control"
)
TAKE_UNSUPPORTED = graph_error(
    27,
    message="(#27) Take thread control is not supported when Conversation Routing is not enabled",
)


def _paths(fake_graph) -> list[str]:
    return [c.path for c in fake_graph.business_calls() if c.method == "POST" or "owner" in c.path]


def _ask(deliver, clock) -> None:
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")


def test_auto_takes_when_the_request_is_refused_and_opens_the_ticket_once(
    page, deliver, clock, fake_graph
):
    fake_graph.fail_next("/me/request_thread_control", HOP_DISABLED)
    _ask(deliver, clock)

    assert _paths(fake_graph) == ["/me/request_thread_control", "/me/take_thread_control"]
    [take] = fake_graph.calls_to("/me/take_thread_control")
    assert (
        '"reason":"trigger' in take.body["metadata"] or "Talk to a human" in take.body["metadata"]
    )
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.AGENT, "helpdesk")
    [ticket] = Ticket.objects.all()
    assert ticket.status == "waiting"
    assert ticket.handover_metadata == take.body["metadata"]  # the trigger, as metadata
    # The bot-side context stays context; the ticket starts at the take.
    context = Message.objects.filter(ticket__isnull=True, author_kind="customer")
    assert [m.text for m in context] == ["hi", "Talk to a human"]
    page.refresh_from_db()
    assert (page.control_way, page.control_way_note) == ("take", "")

    # A take webhook naming us arrives afterwards: nothing opens twice.
    deliver(
        payloads.take_control(
            ts=clock(), new_owner=payloads.APP_ID, previous_owner=payloads.BOT_APP_ID
        )
    )
    assert Ticket.objects.count() == 1
    assert TicketEvent.objects.filter(kind="opened").count() == 1

    # The page remembers: the next trigger goes straight to take.
    ticket_close(ticket)
    fake_graph.calls.clear()
    deliver(
        payloads.postback("Talk to a human", ts=clock(), psid="3000000000000099"), channel="standby"
    )
    assert _paths(fake_graph) == ["/me/take_thread_control"]


def ticket_close(ticket: Ticket) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(status="closed", closed_at=helpdesk_clock.now())


def test_when_neither_request_nor_take_works_the_customer_waits_and_the_page_says_why(
    page, deliver, clock, fake_graph
):
    fake_graph.fail_next("/me/request_thread_control", HOP_DISABLED)
    fake_graph.fail_next("/me/take_thread_control", NO_TAKE)
    _ask(deliver, clock)

    assert _paths(fake_graph) == ["/me/request_thread_control", "/me/take_thread_control"]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert conversation.waiting_reason.startswith(
        "Waiting for the bot to pass the conversation: Meta lets the helpdesk neither ask "
        "for it nor take it on this page"
    )
    assert Ticket.objects.count() == 0
    page.refresh_from_db()
    assert page.control_way == "none"
    assert "Allow this app to take control of conversations" in page.control_way_note

    # The bot can still pass it: the ticket opens as always, and the waiting ends.
    deliver(payloads.pass_control(ts=clock(), metadata="bot passed"))
    conversation.refresh_from_db()
    assert (conversation.control_state, conversation.waiting_reason) == (ControlState.AGENT, "")
    assert Ticket.objects.count() == 1


def test_take_without_a_default_app_falls_back_to_request(page, deliver, clock, fake_graph):
    page.control_way = "take"  # what worked before the Page's settings changed
    page.save()
    fake_graph.fail_next("/me/take_thread_control", TAKE_UNSUPPORTED)
    _ask(deliver, clock)
    assert _paths(fake_graph) == ["/me/take_thread_control", "/me/request_thread_control"]
    page.refresh_from_db()
    assert page.control_way == "request"
    assert Conversation.objects.get().control_state == ControlState.REQUESTED


def test_request_mode_never_takes_and_says_what_to_change(page, deliver, clock, fake_graph):
    page.control_mode = "request"
    page.save()
    fake_graph.fail_next("/me/request_thread_control", HOP_DISABLED)
    _ask(deliver, clock)
    assert _paths(fake_graph) == ["/me/request_thread_control"]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert conversation.waiting_reason.startswith(
        "Waiting for the bot to pass the conversation: Meta does not let the helpdesk ask "
        "for it on this page ("
    )
    page.refresh_from_db()
    assert (page.control_mode, page.control_way) == ("request", "none")
    assert page.control_way_note.startswith(
        "This page is set to ask the bot for conversations, and Meta refuses requests on it. "
        "Set the page's control mode to auto or take"
    )


@pytest.mark.parametrize(
    ("refusal", "fix"),
    [
        (NO_TAKE, "This page is set to take conversations, and Meta refuses: in the Page's "),
        (TAKE_UNSUPPORTED, "This page is set to take conversations, but it has no Conversation "),
    ],
)
def test_take_mode_refused_never_requests_and_says_what_to_change(
    page, deliver, clock, fake_graph, refusal, fix
):
    page.control_mode = "take"
    page.save()
    fake_graph.fail_next("/me/take_thread_control", refusal)
    _ask(deliver, clock)
    assert _paths(fake_graph) == ["/me/take_thread_control"]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert conversation.waiting_reason.startswith(
        "Waiting for the bot to pass the conversation: Meta does not let the helpdesk take "
        "it on this page ("
    )
    assert Ticket.objects.count() == 0
    page.refresh_from_db()
    assert page.control_way == "none"
    assert page.control_way_note.startswith(fix)

    # The bot can still pass it: the ticket opens, the waiting ends.
    deliver(payloads.pass_control(ts=clock()))
    conversation.refresh_from_db()
    assert (conversation.control_state, conversation.waiting_reason) == (ControlState.AGENT, "")
    assert Ticket.objects.count() == 1


def test_a_take_that_timed_out_after_taking_effect_is_reconciled_without_a_second_take(
    page, deliver, clock, fake_graph, settings
):
    page.control_mode = "take"
    page.save()
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.5
    fake_graph.fail_next("/me/take_thread_control", Scripted(200, {"success": True}, delay=2))
    fake_graph.thread_owner_app_id = payloads.APP_ID  # it took effect
    _ask(deliver, clock)

    assert _paths(fake_graph) == ["/me/take_thread_control", "/me/thread_owner"]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.AGENT
    assert conversation.transitions.last().cause == "reconcile"
    assert Ticket.objects.count() == 1
    call = GraphCall.objects.get(kind="take_thread_control")
    assert (call.status, call.attempts) == ("uncertain", 1)


def test_a_take_that_got_a_5xx_without_effect_is_made_again_once_meta_said_so(
    page, deliver, clock, fake_graph
):
    page.control_mode = "take"
    page.save()
    fake_graph.fail_next("/me/take_thread_control", Scripted(502, {}))
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID  # the bot still has it
    _ask(deliver, clock)
    assert _paths(fake_graph) == [
        "/me/take_thread_control",
        "/me/thread_owner",
        "/me/take_thread_control",
    ]
    assert Conversation.objects.get().control_state == ControlState.AGENT
    assert Ticket.objects.count() == 1


def _close(api, post, ticket, **data):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    return post(api, f"/api/v1/tickets/{ticket.pk}/close", data)


def test_release_on_close_goes_idle_with_no_webhook_expected(
    handed_over, api, post, fake_graph, page
):
    page.handback = "release"
    page.save()
    ticket = handed_over()
    _close(api, post, ticket)
    assert _paths(fake_graph)[-1:] == ["/me/release_thread_control"]
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.IDLE, "nobody")
    assert conversation.owner_note.startswith("released by the helpdesk")
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert shown["owner_text"] == "Nobody owns this conversation"


def test_the_notice_then_the_hand_back_in_one_send(handed_over, api, post, fake_graph, page):
    page.handback = "release"
    page.handback_notice = "You're now chatting with our assistant again."
    page.save()
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Glad I could help!")
    sends = fake_graph.sends()
    assert [s.body["message"]["text"] for s in sends] == [
        "Glad I could help!",
        "You're now chatting with our assistant again.",
    ]
    assert "thread_control" not in sends[0].body
    assert sends[1].body["thread_control"] == {"control_type": "release"}
    assert "persona_id" not in sends[1].body  # automation speaks as the page
    assert fake_graph.calls_to("/me/release_thread_control") == []
    notice = Message.objects.get(author_kind="system", direction="out")
    assert (notice.status, notice.thread_control) == ("sent", "release")
    assert Conversation.objects.get().control_state == ControlState.IDLE


def test_a_refused_thread_control_field_falls_back_to_the_separate_call(
    handed_over, api, post, fake_graph, page
):
    ticket = handed_over()
    fake_graph.fail_next(
        "/me/messages",
        graph_error(100, message="(#100) Param thread_control is not supported for this page"),
    )
    _close(api, post, ticket, closing_message="Bye")
    sends = fake_graph.sends()
    assert ["thread_control" in s.body for s in sends] == [True, False]
    assert [s.body["message"]["text"] for s in sends] == ["Bye", "Bye"]  # sent once, after
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    assert Message.objects.get(author_kind="agent").status == "sent"
    page.refresh_from_db()
    assert page.send_api_thread_control is False
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_the_lapse_is_checked_with_thread_owner_then_taken_again(
    handed_over, api, post, fake_graph, page
):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    last = helpdesk_clock.now() - timedelta(hours=25)
    Conversation.objects.update(last_user_message_at=last)
    fake_graph.thread_owner_app_id = None  # idle: Messenger gave control back

    assert reconcile.control_lapse_reconcile() == [ticket.conversation_id]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.IDLE, "nobody")
    assert conversation.owner_note == (
        "Messenger gives control back after 24 h without a customer message"
    )
    assert conversation.owner_since == int((last + timedelta(hours=24)).timestamp() * 1000)
    assert conversation.transitions.last().cause == "reconcile"
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["owner_text"], shown["lock_reason"]) == (
        "Nobody owns this conversation",
        "Nobody owns this conversation (Messenger gives control back after 24 h without a "
        "customer message); replies are locked.",
    )
    # The window is closed: taking it again would lapse at once, and the agent is told.
    assert shown["can_take_over"] is False
    assert shown["take_over_refusal"].startswith("The customer last wrote more than 24 hours")
    refused = post(api, f"/api/v1/tickets/{ticket.pk}/take-control")
    assert refused.status_code == 409
    assert fake_graph.calls_to("/me/take_thread_control") == []

    # The customer writes again (on standby: the bot answers idle threads): take it back.
    Conversation.objects.update(last_user_message_at=helpdesk_clock.now())
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["can_take_over"] is True
    assert post(api, f"/api/v1/tickets/{ticket.pk}/take-control").status_code == 202
    conversation.refresh_from_db()
    assert conversation.control_state == ControlState.AGENT
    ticket.refresh_from_db()
    assert (ticket.flagged, Ticket.objects.count()) == (False, 1)


def test_control_is_extended_while_an_agent_works_up_to_the_pages_maximum(
    handed_over, api, post, fake_graph, page
):
    page.control_extend_max_hours = 48
    page.save()
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    last = helpdesk_clock.now() - timedelta(hours=23, minutes=30)
    Conversation.objects.update(last_user_message_at=last)

    # The beat finds it due and queues the extension (tasks run eagerly here).
    start = helpdesk_clock.now_ms()
    assert reconcile.control_extend_due() == [ticket.conversation_id]
    end = helpdesk_clock.now_ms()
    [extend] = fake_graph.calls_to("/me/extend_thread_control")
    target = int((last + timedelta(hours=48)).timestamp() * 1000)
    # Up to the page's maximum after the customer's last message, from when it was asked.
    asked = extend.body["duration"]
    assert target - end <= asked * 1000 <= target - start + 999
    conversation = Conversation.objects.get()
    assert conversation.control_expires_at == target
    assert conversation.transitions.last().detail.startswith("control extended until")
    assert TicketEvent.objects.filter(kind="control_extended").count() == 1
    # At the maximum: no further extension.
    assert reconcile.control_extend(conversation_id=ticket.conversation_id).value == "skipped"
    assert len(fake_graph.calls_to("/me/extend_thread_control")) == 1


def test_a_restricted_page_pauses_its_outbox_and_resumes_with_nothing_lost_or_doubled(
    handed_over, api, post, fake_graph, page
):
    ticket = handed_over()
    restricted = graph_error(
        10, 1893063, "(#10) This Page is temporarily restricted from sending messages"
    )
    fake_graph.fail_next("/me/messages", restricted)
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "one"})
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "two"})
    page.refresh_from_db()
    assert page.outbox_paused_code == "restricted"
    assert [m.status for m in Message.objects.filter(author_kind="agent")] == [
        "pending",
        "pending",
    ]
    # Only the first reply was tried: the second waits without a call.
    assert len(fake_graph.sends()) == 1
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert shown["outbox_paused_reason"].startswith(
        "Sending is paused for Acme: the Page is temporarily restricted from sending messages"
    )
    # The probe: still restricted.
    fake_graph.fail_next("/me/messages", restricted)
    assert outbound.outbox_probe(page_id=page.pk).value == "failed"
    # The restriction is lifted: the next probe sends the oldest, then the rest, in order.
    with pytest.MonkeyPatch.context():
        assert outbound.outbox_probe(page_id=page.pk).value == "done"
    page.refresh_from_db()
    assert page.outbox_paused_reason == ""
    texts = [s.body["message"]["text"] for s in fake_graph.sends()]
    assert texts == ["one", "one", "one", "two"]  # two refusals of "one", then each once
    assert [m.status for m in Message.objects.filter(author_kind="agent")] == ["sent", "sent"]
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["outbox_paused_reason"] == ""


def test_a_new_token_resumes_a_page_paused_for_its_token(handed_over, api, post, fake_graph, page):
    from webhooks.services import page_connect  # noqa: PLC0415

    ticket = handed_over()
    fake_graph.fail_next("/me/messages", graph_error(190, message="Session has expired"))
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    page.refresh_from_db()
    assert page.outbox_paused_code == "token"
    page_connect(
        page_id=page.page_id, access_token="a-new-token", bot_app_id=page.bot_app_id, name="Acme"
    )
    page.refresh_from_db()
    assert page.outbox_paused_reason == ""
    outbound.outbox_resume(page_id=page.pk)
    assert Message.objects.get(author_kind="agent").status == "sent"
    assert fake_graph.sends()[-1].headers["Authorization"] == "Bearer a-new-token"


def test_personas_are_created_once_per_agent_and_page_and_a_refusal_is_recorded_once(
    handed_over, api, post, fake_graph, page
):
    from agents.models import Persona  # noqa: PLC0415

    ticket = handed_over()
    put = api.put(
        "/api/v1/me",
        {"public_name": "Ana from Acme", "picture_url": "http://x.example/a.png"},
        content_type="application/json",
    )
    assert put.status_code == 400
    assert put.json() == {"detail": "The picture must be a public https:// address of an image."}
    put = api.put("/api/v1/me", {"public_name": "Ana from Acme"}, content_type="application/json")
    assert put.json()["public_name"] == "Ana from Acme"
    fake_graph.fail_next("/me/personas", graph_error(100, message="(#100) Invalid name"))
    for text in ("one", "two"):
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": text})
    assert len(fake_graph.calls_to("/me/personas")) == 1  # refused once, not asked again
    assert [("persona_id" in s.body) for s in fake_graph.sends()] == [False, False]
    assert [m.status for m in Message.objects.filter(author_kind="agent")] == ["sent", "sent"]
    persona = Persona.objects.get()
    assert (persona.persona_id, persona.error) == (
        "",
        "Meta rejected a parameter (code 100): (#100) Invalid name",
    )
    # A new public name: a new persona, used from then on.
    api.put("/api/v1/me", {"public_name": "Ana"}, content_type="application/json")
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "three"})
    assert fake_graph.calls_to("/me/personas")[-1].body == {"name": "Ana"}
    assert fake_graph.sends()[-1].body["persona_id"] == Persona.objects.get().persona_id != ""


def test_mark_seen_is_sent_once_when_an_agent_opens_an_owned_conversation(
    handed_over, api, post, fake_graph
):
    ticket = handed_over()
    first = post(api, f"/api/v1/tickets/{ticket.pk}/seen")
    again = post(api, f"/api/v1/tickets/{ticket.pk}/seen")
    assert (first.json(), again.json()) == ({"sent": True}, {"sent": False})
    [seen] = [c for c in fake_graph.sender_actions() if c.body["sender_action"] == "mark_seen"]
    assert seen.body["persona_id"] != ""


def test_a_reopened_ticket_closed_again_hands_back_anew(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Bye")  # the hand-back rides on "Bye"
    deliver(payloads.pass_control(ts=clock(), metadata="again"))  # the bot passes it back
    ticket.refresh_from_db()
    assert ticket.status == "waiting"  # reopened
    # Closed again without a message: the earlier close's carrier does not count.
    _close(api, post, ticket)
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_the_hand_back_in_the_last_message_is_placed_after_the_close(
    handed_over, api, post, fake_graph
):
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Bye")
    returning, back = Conversation.objects.get().transitions.order_by("-id")[:2][::-1]
    assert (returning.to_state, back.to_state) == ("returning", "bot")
    # Stamped when the send was made, after the close that started it: the timeline
    # shows "went back to the bot" after the close, and the bot's answers as the bot's.
    assert back.at >= returning.at
    line = Message.objects.get(text="The conversation went back to the bot.")
    assert line.timestamp == back.at


def test_an_extension_whose_answer_was_lost_is_checked_and_not_made_again(
    handed_over, api, post, fake_graph, page
):
    page.control_extend_max_hours = 48
    page.save()
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    last = helpdesk_clock.now() - timedelta(hours=23, minutes=30)
    Conversation.objects.update(last_user_message_at=last)
    target = int((last + timedelta(hours=48)).timestamp() * 1000)
    # It took effect: Meta says we own the thread until the extended time.
    fake_graph.fail_next("/me/extend_thread_control", Scripted(502, {}))
    fake_graph.thread_owner_app_id = payloads.APP_ID
    fake_graph.thread_owner_expiration = target // 1000 + 1
    assert reconcile.control_extend_due() == [ticket.conversation_id]
    assert [c.path for c in fake_graph.business_calls()][-2:] == [
        "/me/extend_thread_control",
        "/me/thread_owner",
    ]
    assert Conversation.objects.get().control_expires_at == target
    assert TicketEvent.objects.filter(kind="control_extended").count() == 1


def test_the_notice_is_not_sent_outside_the_24_hour_window(
    handed_over, api, post, fake_graph, page
):
    # Automation may not use the Human Agent tag: after 24 h the notice is left out, and
    # the agent's own closing message (human-written) still goes with HUMAN_AGENT.
    page.human_agent_enabled = True
    page.handback_notice = "You're now chatting with our assistant again."
    page.save()
    ticket = handed_over()
    Conversation.objects.update(last_user_message_at=helpdesk_clock.now() - timedelta(days=2))
    _close(api, post, ticket, closing_message="Sorry for the wait, all sorted.")
    [send] = fake_graph.sends()
    assert (send.body["message"]["text"], send.body["messaging_type"], send.body["tag"]) == (
        "Sorry for the wait, all sorted.",
        "MESSAGE_TAG",
        "HUMAN_AGENT",
    )
    assert Message.objects.filter(author_kind="system", direction="out").count() == 0


def test_a_missing_permission_pauses_the_page_too(handed_over, api, post, fake_graph, page):
    ticket = handed_over()
    fake_graph.fail_next(
        "/me/messages",
        graph_error(230, message="(#230) Requires pages_messaging permission to manage the object"),
    )
    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})
    page.refresh_from_db()
    assert (page.outbox_paused_code, page.outbox_paused_reason) == (
        "permission",
        "the app lacks the pages_messaging permission for this Page (code 230): (#230) "
        "Requires pages_messaging permission to manage the object",
    )
    assert Message.objects.get(author_kind="agent").status == "pending"


@pytest.mark.parametrize(
    ("taker", "role", "words"),
    [
        (payloads.PAGE_INBOX_APP_ID, "page_inbox", "The Page Inbox has this conversation"),
        ("777000000000007", "other_app", "Another app (777000000000007) has this conversation"),
    ],
)
def test_take_over_is_offered_only_where_the_bot_holds_the_conversation(
    page, deliver, clock, api, post, fake_graph, taker, role, words
):
    page.control_mode = "take"
    page.save()
    deliver(payloads.pass_control(ts=clock()))
    deliver(payloads.user_message("hello?", ts=clock()))  # the 24-hour window is open
    ticket = Ticket.objects.get()

    # The bot takes it back: taking it again is offered.
    deliver(payloads.take_control(ts=clock(), new_owner=payloads.BOT_APP_ID))
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["can_take_over"], shown["take_over_refusal"]) == (True, "")

    # A person in the Page Inbox, or another app, takes it: never taken from them.
    deliver(payloads.take_control(ts=clock(), new_owner=taker, previous_owner=payloads.BOT_APP_ID))
    assert Conversation.objects.get().owner_role == role
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert shown["can_take_over"] is False
    assert shown["take_over_refusal"] == (
        f"{words}: the helpdesk takes a conversation only from the bot, never from a person "
        "at the page or another known app. Ask for it instead."
    )
    refused = post(api, f"/api/v1/tickets/{ticket.pk}/take-control")
    assert refused.status_code == 409
    assert refused.json() == {"detail": shown["take_over_refusal"]}
    assert fake_graph.calls_to("/me/take_thread_control") == []
