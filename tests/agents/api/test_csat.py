"""Issue 11, point 9: CSAT before the hand-back, against the recording fake. The exact
Send API calls in order, no hand-back before the answer or the timeout, late answers on
standby recorded once, the 24-hour window, typed answers, garbage payloads, and the
answer racing the timeout."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from agents.models import ControlState, Conversation, Csat, Message, Ticket
from agents.services import csat, tickets
from helpdesk import clock as helpdesk_clock
from tests.support import factories, payloads
from webhooks.models import Page

pytestmark = pytest.mark.django_db

QUESTION = "How did we do? Tap a number: 1 is poor, 5 is great."
THANKS = "Thank you for your rating!"
PASS = {"control_type": "pass", "app_id": payloads.BOT_APP_ID}


@pytest.fixture(autouse=True)
def csat_on(page: Page) -> Page:
    page.csat_enabled = True
    page.save()
    return page


@pytest.fixture
def move_clock(monkeypatch):
    """Move the helpdesk's clock (Messenger's, for the services) forward."""

    def move(by: timedelta) -> None:
        monkeypatch.setattr(helpdesk_clock, "offset", lambda: by)

    return move


def _close(api, post, ticket: Ticket, **data) -> None:
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(api, f"/api/v1/tickets/{ticket.pk}/close", data)
    assert response.status_code == 200, response.content


def _sent(fake_graph) -> list[tuple[str, list[str], dict | None]]:
    """Each Send API message: its text, its quick replies' payloads, its thread_control."""
    return [
        (
            c.body["message"]["text"],
            [r["payload"] for r in c.body["message"].get("quick_replies", [])],
            c.body.get("thread_control"),
        )
        for c in fake_graph.sends()
        if "message" in c.body
    ]


def _handbacks(fake_graph) -> list[str]:
    return [
        c.path
        for c in fake_graph.calls
        if c.path in ("/me/pass_thread_control", "/me/release_thread_control")
        or "thread_control" in c.body
    ]


def _state() -> str:
    return Conversation.objects.get().control_state


def _payloads(ticket: Ticket) -> list[str]:
    return [f"CSAT:{ticket.pk}:{n}" for n in range(1, 6)]


def test_close_sends_the_closing_message_then_the_question_and_keeps_control(
    handed_over, api, post, fake_graph
):
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Glad I could help!")

    assert _sent(fake_graph) == [
        ("Glad I could help!", [], None),
        (QUESTION, _payloads(ticket), None),
    ]
    [question] = [c for c in fake_graph.sends() if "quick_replies" in c.body["message"]]
    assert question.body["message"]["quick_replies"][3] == {
        "content_type": "text",
        "title": "4",
        "payload": f"CSAT:{ticket.pk}:4",
    }
    assert "persona_id" not in question.body  # automation speaks as the page
    assert _handbacks(fake_graph) == []
    assert _state() == ControlState.RETURNING
    rating = Csat.objects.get(ticket=ticket)
    assert (rating.status, rating.score) == ("waiting", None)
    assert rating.expires_at - rating.asked_at == timedelta(minutes=10)

    # The beat re-drive runs the return again: still no hand-back while the rating waits.
    tickets.ticket_return(ticket_id=ticket.pk)
    assert _handbacks(fake_graph) == []
    assert len(_sent(fake_graph)) == 2


def test_the_answer_is_recorded_then_thanked_and_the_thank_you_carries_the_hand_back(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Bye")
    deliver(payloads.user_message("4", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:4"))

    assert _sent(fake_graph) == [
        ("Bye", [], None),
        (QUESTION, _payloads(ticket), None),
        (THANKS, [], PASS),
    ]
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    rating = Csat.objects.get(ticket=ticket)
    assert (rating.status, rating.score, rating.answered_late) == ("answered", 4, False)
    assert rating.answered_at is not None
    assert _state() == ControlState.BOT
    lines = list(
        Message.objects.filter(author_kind="system", direction="in").values_list("text", flat=True)
    )
    assert "The customer rated 4/5." in lines
    assert lines[-1] == "The conversation went back to the bot."
    # The answer is the closed ticket's.
    answer = Message.objects.get(quick_reply_payload=f"CSAT:{ticket.pk}:4")
    assert answer.ticket_id == ticket.pk


def test_with_a_notice_the_thank_you_comes_first_and_the_notice_carries_the_hand_back(
    handed_over, api, post, fake_graph, deliver, clock, page
):
    page.handback_notice = "You're chatting with our assistant again."
    page.save()
    ticket = handed_over()
    _close(api, post, ticket)
    # No notice yet: the helpdesk keeps the conversation for the answer.
    assert _sent(fake_graph) == [(QUESTION, _payloads(ticket), None)]
    deliver(payloads.user_message("5", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:5"))
    assert _sent(fake_graph)[1:] == [
        (THANKS, [], None),
        ("You're chatting with our assistant again.", [], PASS),
    ]
    assert _state() == ControlState.BOT


def test_a_legacy_page_thanks_then_passes_with_its_own_call(
    handed_over, api, post, fake_graph, deliver, clock, page
):
    page.conversation_routing = False
    page.save()
    ticket = handed_over()
    _close(api, post, ticket)
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    deliver(payloads.user_message("2", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:2"))
    assert _sent(fake_graph) == [(QUESTION, _payloads(ticket), None), (THANKS, [], None)]
    paths = [c.path for c in fake_graph.business_calls()]
    assert paths[-2:] == ["/me/messages", "/me/pass_thread_control"]
    assert Csat.objects.get().score == 2
    assert _state() == ControlState.BOT


def test_a_typed_number_counts_and_other_words_wait_on_the_closed_ticket(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    _close(api, post, ticket)
    deliver(payloads.user_message("thanks a lot", ts=clock()))
    # Not an answer: it shows on the closed ticket, the wait goes on.
    assert Message.objects.get(text="thanks a lot").ticket_id == ticket.pk
    assert Csat.objects.get().status == "waiting"
    assert _handbacks(fake_graph) == []
    # Typed after the question went out (the fixture's clock starts a minute ago).
    deliver(payloads.user_message(" 5 ", ts=helpdesk_clock.now_ms()))
    assert (Csat.objects.get().status, Csat.objects.get().score) == ("answered", 5)
    # The answer, then what it recorded, in that order (the answer is written before the
    # rating reads and adds messages, though its delivery is applied as a group).
    assert list(Message.objects.order_by("id").values_list("text", flat=True))[-4:-1] == [
        " 5 ",
        "The customer rated 5/5.",
        THANKS,
    ]
    assert _sent(fake_graph)[-1] == (THANKS, [], PASS)
    assert _state() == ControlState.BOT


def test_without_an_answer_the_timeout_hands_back_without_a_thank_you(
    handed_over, api, post, fake_graph, run_on_commit, move_clock
):
    ticket = handed_over()
    _close(api, post, ticket, closing_message="Bye")
    # Not due yet: nothing happens.
    move_clock(timedelta(minutes=9))
    assert run_on_commit(csat.csat_expire_due) == []
    assert _handbacks(fake_graph) == []

    move_clock(timedelta(minutes=10, seconds=1))
    assert run_on_commit(csat.csat_expire_due) == [ticket.pk]
    assert _sent(fake_graph) == [("Bye", [], None), (QUESTION, _payloads(ticket), None)]
    [passed] = fake_graph.calls_to("/me/pass_thread_control")
    assert passed.body["target_app_id"] == payloads.BOT_APP_ID
    assert Csat.objects.get().status == "expired"
    assert _state() == ControlState.BOT
    assert Message.objects.filter(
        author_kind="system",
        text="No rating within 10 minutes: the conversation goes back to the bot.",
    ).exists()
    # Swept again: nothing more.
    assert run_on_commit(csat.csat_expire_due) == []
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1


def test_the_timeout_sends_the_notice_which_carries_the_hand_back(
    handed_over, api, post, fake_graph, run_on_commit, move_clock, page
):
    page.handback_notice = "You're chatting with our assistant again."
    page.csat_wait_minutes = 1
    page.save()
    ticket = handed_over()
    _close(api, post, ticket)
    move_clock(timedelta(minutes=1, seconds=1))
    assert run_on_commit(csat.csat_expire_due) == [ticket.pk]
    assert _sent(fake_graph) == [
        (QUESTION, _payloads(ticket), None),
        ("You're chatting with our assistant again.", [], PASS),
    ]
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    assert Message.objects.filter(
        text="No rating within 1 minute: the conversation goes back to the bot."
    ).exists()
    assert _state() == ControlState.BOT


def test_an_answer_on_standby_after_the_hand_back_is_recorded_once(
    handed_over, api, post, fake_graph, deliver, clock, run_on_commit, move_clock
):
    ticket = handed_over()
    _close(api, post, ticket)
    move_clock(timedelta(minutes=11))
    run_on_commit(csat.csat_expire_due)
    calls = len(fake_graph.calls)

    deliver(
        payloads.user_message("3", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:3"),
        channel="standby",
    )
    rating = Csat.objects.get()
    assert (rating.status, rating.score, rating.answered_late) == ("expired", 3, True)
    assert len(fake_graph.calls) == calls  # no thank-you, no hand-back: the bot has it
    assert Message.objects.filter(
        text="The customer rated 3/5 (after the conversation went back to the bot)."
    ).exists()

    # A second tap changes nothing: the first answer stands.
    deliver(
        payloads.user_message("5", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:5"),
        channel="standby",
    )
    assert Csat.objects.get().score == 3
    assert len(fake_graph.calls) == calls
    assert _state() == ControlState.BOT


def test_a_second_tap_while_handing_back_sends_no_second_thank_you(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    _close(api, post, ticket)
    deliver(payloads.user_message("1", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:1"))
    deliver(
        payloads.user_message("5", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:5"),
        channel="standby",
    )
    assert Csat.objects.get().score == 1
    assert [s[0] for s in _sent(fake_graph)].count(THANKS) == 1


def test_outside_the_24_hour_window_no_question_is_asked(
    handed_over, api, post, fake_graph, move_clock
):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    move_clock(timedelta(hours=25))
    # The close dialog says so before the agent closes.
    detail = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert detail["csat_on_close"] == "No rating question: the 24-hour messaging window is closed."
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {})
    assert _sent(fake_graph) == []
    assert Csat.objects.count() == 0
    assert Message.objects.filter(
        author_kind="system", text="No rating question: the 24-hour messaging window is closed."
    ).exists()
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    assert _state() == ControlState.BOT


def test_a_page_without_csat_hands_back_at_once(handed_over, api, post, fake_graph, page):
    page.csat_enabled = False
    page.save()
    ticket = handed_over()
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["csat_on_close"] == ""
    _close(api, post, ticket, closing_message="Bye")
    assert _sent(fake_graph) == [("Bye", [], PASS)]
    assert Csat.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        "CSAT:",
        "CSAT:abc:4",
        "CSAT:{ticket}:9",
        "CSAT:{ticket}:0",
        "CSAT:{ticket}:4:extra",
        "CSAT:999999:4",
        "CSAT:{ticket}:4 ",
        "csat:{ticket}:4",
    ],
)
def test_garbage_rating_payloads_change_nothing(
    handed_over, api, post, fake_graph, deliver, clock, payload
):
    ticket = handed_over()
    _close(api, post, ticket)
    calls = len(fake_graph.calls)
    deliver(payloads.user_message("?", ts=clock(), quick_reply=payload.format(ticket=ticket.pk)))
    rating = Csat.objects.get()
    assert (rating.status, rating.score) == ("waiting", None)
    assert len(fake_graph.calls) == calls
    assert _state() == ControlState.RETURNING
    assert Message.objects.filter(text="?").count() == 1  # kept as a message, nothing more


def test_a_payload_naming_another_customers_ticket_is_ignored(
    handed_over, api, post, fake_graph, deliver, clock
):
    mine = handed_over()
    other = handed_over(psid="3000000000000077")
    _close(api, post, other)
    deliver(payloads.user_message("5", ts=clock(), quick_reply=f"CSAT:{other.pk}:5"))
    assert Csat.objects.get(ticket=other).score is None
    assert Conversation.objects.get(contact__psid="3000000000000077").control_state == "returning"
    assert Ticket.objects.get(pk=mine.pk).status != "closed"


def test_a_ticket_reopened_and_closed_again_is_not_asked_twice(
    handed_over, api, post, fake_graph, deliver, clock
):
    ticket = handed_over()
    _close(api, post, ticket)
    deliver(payloads.user_message("4", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:4"))
    deliver(payloads.pass_control(ts=clock(), metadata="again"))
    ticket.refresh_from_db()
    assert ticket.status == "waiting"  # reopened
    before = len(_sent(fake_graph))
    _close(api, post, ticket)
    assert [s[0] for s in _sent(fake_graph)[before:]].count(QUESTION) == 0
    assert Csat.objects.get().score == 4
    assert _state() == ControlState.BOT


def test_the_rating_shows_on_the_ticket_and_in_the_api(
    handed_over, api, post, deliver, clock, fake_graph
):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert shown["csat_on_close"] == (
        "The customer is asked for a rating (1 to 5) after your closing message. The bot "
        "gets the conversation back after their answer, or after 10 minutes."
    )
    assert (shown["csat_status"], shown["csat_score"], shown["csat_text"]) == ("", None, "")
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {})
    waiting = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (waiting["csat_status"], waiting["csat_score"]) == ("waiting", None)
    assert waiting["csat_text"] == "Waiting for the customer's rating"
    assert waiting["csat_expires_at"] is not None
    assert waiting["csat_on_close"] == ""
    deliver(payloads.user_message("4", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:4"))
    detail = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert (detail["csat_status"], detail["csat_score"], detail["csat_text"]) == (
        "answered",
        4,
        "Rated 4/5",
    )
    [listed] = api.get("/api/v1/tickets?queue=closed").json()
    assert (listed["csat_score"], listed["csat_text"]) == (4, "Rated 4/5")


def test_an_answer_after_the_timeout_won_sends_no_thank_you_and_one_hand_back(
    handed_over,
    api,
    post,
    fake_graph,
    deliver,
    clock,
    move_clock,
    django_capture_on_commit_callbacks,
):
    ticket = handed_over()
    _close(api, post, ticket)
    move_clock(timedelta(minutes=11))
    # The sweep wins; its hand-back task has not run yet when the tap arrives.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert csat.csat_expire_due() == [ticket.pk]
    assert _state() == ControlState.RETURNING
    deliver(payloads.user_message("4", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:4"))
    for callback in queued:
        callback()
    rating = Csat.objects.get()
    assert (rating.status, rating.score, rating.answered_late) == ("expired", 4, True)
    assert [s[0] for s in _sent(fake_graph)] == [QUESTION]
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    assert _state() == ControlState.BOT


def test_the_sweep_after_an_answer_changes_nothing(
    handed_over, api, post, fake_graph, deliver, clock, move_clock, run_on_commit
):
    ticket = handed_over()
    _close(api, post, ticket)
    deliver(payloads.user_message("5", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:5"))
    calls = len(fake_graph.calls)
    move_clock(timedelta(minutes=11))
    assert run_on_commit(csat.csat_expire_due) == []
    assert len(fake_graph.calls) == calls
    assert Csat.objects.get().status == "answered"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_answer_and_the_timeout_racing_hand_back_once(
    page, agent, fake_graph, deliver, clock, move_clock, settings
):
    settings.SIDE_EFFECTS_IN_BACKGROUND = False
    ticket = factories.ticket(page=page, status=Ticket.Status.OPEN, assignee=agent)
    tickets.ticket_close(ticket_id=ticket.pk, user=agent)
    move_clock(timedelta(minutes=11))
    barrier = threading.Barrier(2)
    expired: list[list[int]] = []

    def expire() -> None:
        try:
            barrier.wait()
            expired.append(csat.csat_expire_due())
        finally:
            connection.close()

    thread = threading.Thread(target=expire)
    thread.start()
    barrier.wait()
    deliver(payloads.user_message("4", ts=clock(), quick_reply=f"CSAT:{ticket.pk}:4"))
    thread.join()
    assert len(expired) == 1  # the sweep ran to its end
    rating = Csat.objects.get()
    assert rating.status in ("answered", "expired")
    handbacks = len(fake_graph.calls_to("/me/pass_thread_control")) + sum(
        1 for c in fake_graph.sends() if "thread_control" in c.body
    )
    assert handbacks == 1
    thanks = [s for s in _sent(fake_graph) if s[0] == THANKS]
    assert len(thanks) == (1 if rating.status == "answered" else 0)
    assert _state() == ControlState.BOT
