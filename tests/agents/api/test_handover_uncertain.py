"""Issue 10 against the recording fake: handover calls whose outcome is unknown (a 5xx, a
timeout) are checked with `GET /me/thread_owner` before anything is made again (point 4);
an owner Meta will not name is shown as unknown, in words (point 5); the refusals of the
handover calls in words (point 8); the hand-back notice before a separate pass (point 3).
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry

from agents import tasks
from agents.models import ControlState, Conversation, Message, Ticket, TicketEvent
from agents.services import reconcile
from helpdesk import clock as helpdesk_clock
from tests.support import factories, payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks import graph
from webhooks.models import GraphCall

pytestmark = pytest.mark.django_db

REQUEST = "/me/request_thread_control"
TAKE = "/me/take_thread_control"
PASS = "/me/pass_thread_control"
RELEASE = "/me/release_thread_control"
EXTEND = "/me/extend_thread_control"
OWNER = "/me/thread_owner"
SEND = "/me/messages"

HOP_DISABLED_TEXT = "(#10) Handover Protocol APIs disabled for this page"
TAKE_UNSUPPORTED_TEXT = (
    "(#27) Take thread control is not supported when Conversation Routing is not enabled"
)
NOT_VISIBLE_TEXT = "(#100) Thread owner is not visible to this app"
NOT_OWNER = graph_error(10, 2018300, "(#10) The action is invalid since it's not the thread owner.")
NOTICE = "You're now chatting with our assistant again."


def _paths(fake_graph) -> list[str]:
    """The calls that change or read thread control, and sends (no profile lookups, no
    personas), in the order they were made."""
    return [c.path for c in fake_graph.business_calls() if c.method == "POST" or c.path == OWNER]


def _ask(deliver, clock) -> None:
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")


def _lose_the_answer(fake_graph, settings, path: str, how: str) -> None:
    """The next call to `path` has an unknown outcome: a 502, or no answer in time (Meta
    answers, too late)."""
    if how == "5xx":
        fake_graph.fail_next(path, Scripted(502, {}))
    else:
        settings.GRAPH_API_TIMEOUT_SECONDS = 0.5
        fake_graph.fail_next(path, Scripted(200, {"success": True}, delay=2))


def _close(api, post, ticket, **data):
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    return post(api, f"/api/v1/tickets/{ticket.pk}/close", data)


# --- Point 4: a request whose outcome is unknown -------------------------------------


@pytest.mark.parametrize("how", ["5xx", "timeout"])
def test_a_request_whose_answer_was_lost_asks_thread_owner_and_asks_again_once_if_the_bot_has_it(
    page, deliver, clock, fake_graph, settings, how
):
    # Given a request whose answer is lost, and a bot that still owns the thread
    _lose_the_answer(fake_graph, settings, REQUEST, how)
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID

    # When the customer asks for a human
    _ask(deliver, clock)

    # Then Meta is asked who owns the thread before the request is made again, once
    assert _paths(fake_graph) == [REQUEST, OWNER, REQUEST]
    first, again = fake_graph.calls_to(REQUEST)
    assert again.body == first.body  # the same intent, the same metadata
    record = GraphCall.objects.get(kind="request_thread_control")
    assert (record.status, record.attempts) == ("succeeded", 2)
    assert Conversation.objects.get().control_state == ControlState.REQUESTED
    assert Ticket.objects.count() == 0

    # The bot passes: the ticket opens as always, once.
    deliver(payloads.pass_control(ts=clock(), metadata="bot passed"))
    assert Conversation.objects.get().control_state == ControlState.AGENT
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["opened"]
    assert _paths(fake_graph) == [REQUEST, OWNER, REQUEST]


@pytest.mark.parametrize("how", ["5xx", "timeout"])
def test_a_request_whose_answer_was_lost_is_not_made_again_when_meta_says_the_helpdesk_owns_it(
    page, deliver, clock, fake_graph, settings, how
):
    # Given a request whose answer is lost, and Meta saying the helpdesk owns the thread
    # (the bot passed it meanwhile; its webhook is late)
    _lose_the_answer(fake_graph, settings, REQUEST, how)
    fake_graph.thread_owner_app_id = payloads.APP_ID

    _ask(deliver, clock)

    # Then no second request: the state is agent and the ticket opens, from the check
    assert _paths(fake_graph) == [REQUEST, OWNER]
    record = GraphCall.objects.get(kind="request_thread_control")
    assert (record.status, record.attempts) == ("uncertain", 1)
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (
        ControlState.AGENT,
        "helpdesk",
    )
    last = conversation.transitions.last()
    assert (last.from_state, last.to_state, last.cause) == ("requested", "agent", "reconcile")
    assert last.detail == (
        "Meta says the helpdesk owns the conversation (the request call's answer was lost)"
    )
    assert Ticket.objects.get().status == "waiting"

    # The bot's pass webhook arrives afterwards: nothing opens twice, nothing is called.
    deliver(payloads.pass_control(ts=clock(), metadata="bot passed"))
    assert Ticket.objects.count() == 1
    assert list(TicketEvent.objects.values_list("kind", flat=True)) == ["opened"]
    assert _paths(fake_graph) == [REQUEST, OWNER]


def test_a_request_asked_again_that_fails_again_is_never_repeated_without_a_new_check(
    page, deliver, clock, fake_graph
):
    # Given a request that gets a 502, and its checked repeat a 502 too, the bot still
    # owning the thread throughout
    fake_graph.fail_next(REQUEST, Scripted(502, {}), times=2)
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID

    _ask(deliver, clock)

    # Then every request after the first follows its own thread_owner check
    assert _paths(fake_graph) == [REQUEST, OWNER, REQUEST, OWNER, REQUEST]
    assert Conversation.objects.get().control_state == ControlState.REQUESTED


def test_the_owner_meta_names_during_the_check_is_recorded(page, deliver, clock, fake_graph):
    # Given a request that gets a 502, and the Page Inbox holding the thread (a person
    # answered there meanwhile)
    fake_graph.fail_next(REQUEST, Scripted(502, {}))
    fake_graph.thread_owner_app_id = payloads.PAGE_INBOX_APP_ID

    _ask(deliver, clock)

    # Then the request is made again after the check, and the check corrected the owner
    assert _paths(fake_graph) == [REQUEST, OWNER, REQUEST]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role, conversation.owner_app_id) == (
        ControlState.REQUESTED,
        "page_inbox",
        payloads.PAGE_INBOX_APP_ID,
    )
    checked = conversation.transitions.get(cause="reconcile")
    assert checked.detail.startswith("Meta says: The Page Inbox has this conversation (")


# --- Point 4: a release whose outcome is unknown -------------------------------------


def test_a_release_that_timed_out_and_took_effect_is_done_without_a_second_release(
    handed_over, api, post, fake_graph, page, settings
):
    # Given a page that hands back by release, whose release answers too late
    page.handback = "release"
    page.save()
    ticket = handed_over()
    _lose_the_answer(fake_graph, settings, RELEASE, "timeout")
    fake_graph.thread_owner_app_id = None  # it took effect: the thread is idle

    _close(api, post, ticket)

    # Then Meta is asked, says idle, and the hand-back is done as it said: no second call
    assert _paths(fake_graph) == [RELEASE, OWNER]
    assert fake_graph.calls_to(PASS) == []
    record = GraphCall.objects.get(kind="release_thread_control")
    assert (record.status, record.attempts) == ("uncertain", 1)
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.IDLE, "nobody")
    last = conversation.transitions.last()
    assert (last.from_state, last.to_state, last.cause) == ("returning", "idle", "reconcile")
    assert (
        Message.objects.filter(
            text="The conversation was released: the bot answers the customer's next message."
        ).count()
        == 1
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == ("closed", False)


def test_a_release_that_timed_out_without_effect_is_made_again_once_after_the_check(
    handed_over, api, post, fake_graph, page, settings
):
    # Given a page that hands back by release, whose release answers too late and did
    # not take effect: Meta still names the helpdesk
    page.handback = "release"
    page.save()
    ticket = handed_over()
    _lose_the_answer(fake_graph, settings, RELEASE, "timeout")
    fake_graph.thread_owner_app_id = payloads.APP_ID

    _close(api, post, ticket)

    # Then exactly one more release, after the check, under the same key
    assert _paths(fake_graph) == [RELEASE, OWNER, RELEASE]
    first, again = fake_graph.calls_to(RELEASE)
    assert again.body == first.body
    record = GraphCall.objects.get(kind="release_thread_control")
    assert (record.status, record.attempts) == ("succeeded", 2)
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.IDLE, "nobody")
    last = conversation.transitions.last()
    assert (last.from_state, last.to_state, last.cause) == ("returning", "idle", "api")
    assert Ticket.objects.get().status == "closed"


def test_a_hand_back_another_worker_is_passing_waits_for_that_pass_and_never_fails(
    page, fake_graph, settings
):
    """CI's chaos run: a second copy of a hand-back (re-driven, or queued twice) met the
    first copy's pass in flight on every retry, gave up, and reopened the ticket with
    "pass back failed", while that pass had given the thread to the bot."""
    settings.GRAPH_RETRY_MAX = 0  # any failure would be the last
    settings.GRAPH_RETRY_BACKOFF_SECONDS = 0.1
    conversation = factories.conversation(page=page, control_state=ControlState.RETURNING)
    ticket = factories.ticket(conversation=conversation, status=Ticket.Status.CLOSED)
    key = f"return:{ticket.pk}:{int(ticket.closed_at.timestamp() * 1000)}"
    GraphCall.objects.create(
        key=key, kind="pass_thread_control", page=page, psid=payloads.PSID, status="in_flight"
    )

    with mock.patch.object(tasks.ticket_return, "retry", side_effect=Retry()) as retry:
        tasks.ticket_return.apply(args=(ticket.pk,))

    # Then this copy asks again once that pass is over, and changes nothing meanwhile
    longest = settings.GRAPH_API_TIMEOUT_SECONDS + graph.IN_FLIGHT_MARGIN_SECONDS
    assert longest - 5 < retry.call_args.kwargs["countdown"] <= longest + 1 + 0.1
    assert fake_graph.business_calls() == []
    conversation.refresh_from_db()
    assert conversation.control_state == ControlState.RETURNING
    assert not ticket.events.filter(kind=TicketEvent.Kind.RETURN_FAILED).exists()
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == (Ticket.Status.CLOSED, False)

    # When the first copy's pass succeeded, the retry reads its outcome: no second pass
    GraphCall.objects.filter(key=key).update(status="succeeded", response={"success": True})
    tasks.ticket_return.apply(args=(ticket.pk,))
    assert fake_graph.business_calls() == []
    conversation.refresh_from_db()
    assert conversation.control_state == ControlState.BOT
    assert Ticket.objects.get().status == Ticket.Status.CLOSED


# --- The customer writes on standby while the helpdesk has the conversation -----------


def test_a_message_on_standby_while_the_helpdesk_has_the_conversation_asks_meta_once(
    handed_over, deliver, clock, fake_graph
):
    """Meta sends standby to the apps that do not own the thread: the state is wrong (in
    CI's chaos run a hand-back recorded as failed had in fact given the thread to the
    bot). Meta is asked, and the state follows; the next messages ask no more."""
    ticket = handed_over()
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID

    deliver(payloads.user_message("still there?", ts=clock()), channel="standby")
    deliver(payloads.user_message("hello?", ts=clock()), channel="standby")

    assert _paths(fake_graph) == [OWNER]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.TAKEN, "bot")
    last = conversation.transitions.last()
    assert (last.from_state, last.to_state, last.cause) == ("agent", "taken", "reconcile")
    assert last.detail.endswith(
        "(the customer's message came on standby while the helpdesk had the conversation)"
    )
    ticket.refresh_from_db()
    assert ticket.flagged and ticket.flag_reason.endswith("replies are locked.")
    assert list(
        Message.objects.filter(text__in=["still there?", "hello?"]).values_list("text", flat=True)
    ) == ["still there?", "hello?"]


def test_a_message_on_standby_meta_says_is_ours_or_written_before_control_changes_nothing(
    handed_over, deliver, clock, fake_graph, page
):
    # A message written before the pass, delivered after it: no question to Meta
    before = clock()
    ticket = handed_over()
    deliver(payloads.user_message("sent before", ts=before), channel="standby")
    assert _paths(fake_graph) == []

    # A newer one, while Meta says the helpdesk owns the thread: asked, nothing changes
    fake_graph.thread_owner_app_id = payloads.APP_ID
    deliver(payloads.user_message("hi again", ts=clock()), channel="standby")
    assert _paths(fake_graph) == [OWNER]
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.AGENT
    assert not conversation.transitions.filter(cause="reconcile").exists()
    ticket.refresh_from_db()
    assert not ticket.flagged


# --- Point 4: an extension whose outcome is unknown ----------------------------------


def test_an_extension_whose_answer_was_lost_and_that_did_not_take_effect_is_made_again_once(
    handed_over, api, post, fake_graph, page
):
    # Given an agent working an open ticket whose control lapses within the hour
    page.control_extend_max_hours = 48
    page.save()
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    last = helpdesk_clock.now() - timedelta(hours=23, minutes=30)
    Conversation.objects.update(last_user_message_at=last)
    target = int((last + timedelta(hours=48)).timestamp() * 1000)
    lapse = int((last + timedelta(hours=24)).timestamp() * 1000)
    # The extension gets a 502; Meta says we own the thread, until the old lapse only.
    fake_graph.fail_next(EXTEND, Scripted(502, {}))
    fake_graph.thread_owner_app_id = payloads.APP_ID
    fake_graph.thread_owner_expiration = lapse // 1000

    assert reconcile.control_extend_due() == [ticket.conversation_id]

    # Then the check, and exactly one more extension, the same as the first
    assert _paths(fake_graph) == [EXTEND, OWNER, EXTEND]
    first, again = fake_graph.calls_to(EXTEND)
    assert again.body == first.body
    record = GraphCall.objects.get(kind="extend_thread_control")
    assert (record.status, record.attempts) == ("succeeded", 2)
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.control_expires_at) == (
        ControlState.AGENT,
        target,
    )
    assert TicketEvent.objects.filter(kind="control_extended").count() == 1
    # Extended to the page's maximum: nothing more to do.
    assert reconcile.control_extend(conversation_id=ticket.conversation_id).value == "skipped"
    assert len(fake_graph.calls_to(EXTEND)) == 2


# --- Point 5: an owner Meta will not name --------------------------------------------


def test_a_not_owner_send_error_and_an_owner_meta_will_not_name_make_the_owner_unknown(
    handed_over, api, post, fake_graph
):
    # Given an agent's reply refused as not the owner, and thread_owner answering that
    # the owner is not visible to us (another secondary app holds the thread)
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    fake_graph.fail_next(SEND, NOT_OWNER)
    fake_graph.fail_next(OWNER, graph_error(100, 2018234, NOT_VISIBLE_TEXT))

    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hello"})

    # Then the check is made once, and the owner is unknown, said in words
    assert _paths(fake_graph) == [SEND, OWNER]
    assert Message.objects.get(author_kind="agent").status == "failed"
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role, conversation.owner_app_id) == (
        ControlState.TAKEN,
        "unknown",
        "",
    )
    last = conversation.transitions.last()
    assert (last.from_state, last.to_state, last.cause, last.owner_role) == (
        "agent",
        "taken",
        "reconcile",
        "unknown",
    )
    assert last.detail == (
        "Meta says: Another app has this conversation (Messenger does not say which) (a send "
        "was refused: another app owns this conversation (we are not the thread owner) (code "
        "10/2018300): (#10) The action is invalid since it's not the thread owner.)"
    )
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (shown["owner_role"], shown["owner_text"], shown["lock_reason"]) == (
        "unknown",
        "Another app has this conversation (Messenger does not say which)",
        "Another app has this conversation (Messenger does not say which); replies are locked.",
    )
    assert shown["flagged"] is True
    # What Meta answered is kept, in words, on the check's record.
    assert GraphCall.objects.get(kind="thread_owner").last_error == (
        "Meta does not tell this app who owns the conversation (code 100/2018234): "
        "(#100) Thread owner is not visible to this app"
    )


def test_asking_for_a_conversation_the_bot_has_keeps_the_bot_as_its_owner(
    page, deliver, clock, fake_graph
):
    # Given a customer talking to the bot on standby (no handover seen yet)
    deliver(payloads.user_message("hi", ts=clock()), channel="standby")
    assert Conversation.objects.get().owner_role == "bot"

    # When they ask for a human and the request goes out
    deliver(payloads.postback("Talk to a human", ts=clock()), channel="standby")

    # Then the bot still has the conversation until it passes it
    assert _paths(fake_graph) == [REQUEST]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (
        ControlState.REQUESTED,
        "bot",
    )


# --- Point 8: handover refusals in words ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "words"),
    [
        (
            "thread_owner",
            graph_error(100, 2018234, NOT_VISIBLE_TEXT),
            "Meta does not tell this app who owns the conversation (code 100/2018234): "
            "(#100) Thread owner is not visible to this app",
        ),
        (
            "take_thread_control",
            graph_error(27, message=TAKE_UNSUPPORTED_TEXT),
            "taking control needs Conversation Routing with a default app on this Page "
            "(code 27): (#27) Take thread control is not supported when Conversation Routing "
            "is not enabled",
        ),
        (
            "request_thread_control",
            graph_error(10, message=HOP_DISABLED_TEXT),
            "this Page refuses handover requests (Conversation Routing with a default app) "
            "(code 10): (#10) Handover Protocol APIs disabled for this page",
        ),
    ],
    ids=["100-2018234", "27", "handover-disabled"],
)
def test_handover_refusals_are_put_in_plain_words(page, fake_graph, kind, error, words):
    fake_graph.fail_next(f"/me/{kind}", error)
    psid = payloads.PSID
    if kind == "thread_owner":
        # Not an error to the caller: someone we are not told of owns the thread.
        assert graph.thread_owner(page, psid=psid) == graph.ThreadOwner(idle=False)
    else:
        call = getattr(graph, kind)
        with pytest.raises(graph.GraphError) as info:
            call(page, key=f"{kind}:x", psid=psid, metadata="m")
        assert info.value.describe() == words
        # Not worth retrying, and a refusal of this way in (auto mode tries the other).
        assert (info.value.retryable, info.value.handover_refused) == (False, True)
    record = GraphCall.objects.get(kind=kind)
    assert (record.status, record.last_error) == ("failed", words)
    assert len(fake_graph.calls) == 1


def test_when_take_is_unsupported_after_a_refused_request_the_page_says_what_to_change(
    page, deliver, clock, fake_graph
):
    # Given a page that refuses requests, and refuses takes with (#27)
    fake_graph.fail_next(REQUEST, graph_error(10, message=HOP_DISABLED_TEXT))
    fake_graph.fail_next(TAKE, graph_error(27, message=TAKE_UNSUPPORTED_TEXT))

    _ask(deliver, clock)

    # Then both were tried once, and the page and the conversation say why, in words
    assert _paths(fake_graph) == [REQUEST, TAKE]
    meta = (
        "taking control needs Conversation Routing with a default app on this Page (code 27): "
        "(#27) Take thread control is not supported when Conversation Routing is not enabled"
    )
    page.refresh_from_db()
    assert page.control_way == "none"
    assert page.control_way_note == (
        "This Page has no Conversation Routing default app, so the helpdesk cannot take "
        "conversations, and Meta refuses its requests. Set the bot as the default app in the "
        "Page's Conversation Routing settings, or let the bot pass conversations. "
        f"(Meta: {meta})"
    )
    conversation = Conversation.objects.get()
    assert conversation.control_state == ControlState.BOT
    assert conversation.waiting_reason == (
        "Waiting for the bot to pass the conversation: Meta lets the helpdesk neither ask for "
        f"it nor take it on this page ({meta})."
    )
    assert Ticket.objects.count() == 0


# --- Point 3: the hand-back notice, then a separate pass -----------------------------


def _texts_and_control(fake_graph) -> list[tuple[str, str, object]]:
    """Each POST (sends and handover calls) in order: its path, the text it sent, its
    thread_control (None: the field is absent, see the callers' `not in` checks)."""
    return [
        (c.path, c.body.get("message", {}).get("text", ""), c.body.get("thread_control"))
        for c in fake_graph.business_calls()
        if c.method == "POST"
    ]


def test_on_a_legacy_page_the_notice_goes_first_then_a_separate_pass(
    handed_over, api, post, fake_graph, page
):
    # Given a legacy Handover Protocol page (no thread_control on the Send API) with a
    # hand-back notice
    page.conversation_routing = False
    page.handback_notice = NOTICE
    page.save()
    ticket = handed_over()

    _close(api, post, ticket, closing_message="Glad I could help!")

    # Then the closing message, the notice, and only then the pass: none carries control
    assert _texts_and_control(fake_graph) == [
        (SEND, "Glad I could help!", None),
        (SEND, NOTICE, None),
        (PASS, "", None),
    ]
    assert all("thread_control" not in send.body for send in fake_graph.sends())
    [passed] = fake_graph.calls_to(PASS)
    assert passed.body["target_app_id"] == payloads.BOT_APP_ID
    notice = Message.objects.get(author_kind="system", direction="out")
    assert (notice.text, notice.status, notice.thread_control) == (NOTICE, "sent", "")
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_after_the_send_api_refused_thread_control_the_notice_goes_alone_then_a_separate_pass(
    handed_over, api, post, fake_graph, page
):
    # Given a Conversation Routing page with a hand-back notice, whose Send API refuses
    # the thread_control field
    page.handback_notice = NOTICE
    page.save()
    ticket = handed_over()
    fake_graph.fail_next(
        SEND,
        graph_error(100, message="(#100) Param thread_control is not supported for this page"),
        when=lambda call: "thread_control" in call.body,
    )

    _close(api, post, ticket, closing_message="Glad I could help!")

    # Then the notice is refused with the field, sent once without it, then the pass
    pass_in_message = {"control_type": "pass", "app_id": payloads.BOT_APP_ID}
    assert _texts_and_control(fake_graph) == [
        (SEND, "Glad I could help!", None),
        (SEND, NOTICE, pass_in_message),  # refused: nothing was sent
        (SEND, NOTICE, None),
        (PASS, "", None),
    ]
    assert "thread_control" not in fake_graph.sends()[2].body
    notice = Message.objects.get(author_kind="system", direction="out")
    assert (notice.status, notice.thread_control) == ("sent", "")
    page.refresh_from_db()
    assert page.send_api_thread_control is False
    assert Conversation.objects.get().control_state == ControlState.BOT

    # The page remembers: the next close sends the notice without the field at once.
    other = "3000000000000099"
    second = handed_over(psid=other)
    before = len(_texts_and_control(fake_graph))
    _close(api, post, second)
    assert _texts_and_control(fake_graph)[before:] == [(SEND, NOTICE, None), (PASS, "", None)]
    assert Conversation.objects.get(contact__psid=other).control_state == ControlState.BOT
