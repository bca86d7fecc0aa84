"""Tickets through the agent API: the list and its queues, a ticket's detail (waiting
time, windows, why the composer is locked, history); claim, transfer, close and the
hand-back to the bot, asking for control again."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.errors import Conflict
from agents.models import ControlState, Conversation, Message, Ticket
from agents.services import tickets
from agents.services.state import now_ms
from agents.tasks import message_send
from tests.support import factories, payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks.models import Page

pytestmark = pytest.mark.django_db

PSIDS = [f"30000000000001{n:02d}" for n in range(20)]


def _dt(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _ms(iso: str) -> int:
    return int(_dt(iso).timestamp() * 1000)


# --- the list and its queues ------------------------------------------------------


def test_tickets_are_listed_by_status_with_psid_and_page(handed_over, api, agent):
    ticket = handed_over()
    listed = api.get("/api/v1/tickets", {"status": "waiting"}).json()
    assert [
        (t["id"], t["status"], t["contact"]["psid"], t["page_id"], t["control_state"])
        for t in listed
    ] == [(ticket.pk, "waiting", payloads.PSID, payloads.PAGE_ID, "agent")]
    assert api.get("/api/v1/tickets", {"status": "closed"}).json() == []
    assert api.get("/api/v1/tickets", {"status": "nonsense"}).status_code == 422
    assert api.get("/api/v1/tickets", {"mine": "true"}).json() == []


def test_queues_count_and_list_the_inbox_queues(page, fake_graph, api, api2, agent, post):
    waiting, mine, theirs, closed = (factories.ticket(page=page, psid=p) for p in PSIDS[:4])
    post(api, f"/api/v1/tickets/{mine.pk}/claim")
    post(api2, f"/api/v1/tickets/{theirs.pk}/claim")
    post(api, f"/api/v1/tickets/{closed.pk}/close")

    assert api.get("/api/v1/queues").json() == {
        "waiting": 1,
        "mine": 1,
        "all_open": 3,
        "closed": 1,
    }
    assert api2.get("/api/v1/queues").json()["mine"] == 1

    def ids(queue: str) -> list[int]:
        return [t["id"] for t in api.get("/api/v1/tickets", {"queue": queue}).json()]

    assert ids("waiting") == [waiting.pk]
    assert ids("mine") == [mine.pk]
    assert ids("all_open") == [waiting.pk, mine.pk, theirs.pk]
    assert ids("closed") == [closed.pk]
    assert api.get("/api/v1/tickets", {"queue": "nonsense"}).status_code == 422


def test_closed_queue_is_newest_first_and_can_be_limited(page, fake_graph, api, post):
    made = [factories.ticket(page=page, psid=psid) for psid in PSIDS[:3]]
    for ticket in made:
        post(api, f"/api/v1/tickets/{ticket.pk}/close")
    listed = api.get("/api/v1/tickets", {"queue": "closed", "limit": 2}).json()
    assert [t["id"] for t in listed] == [made[2].pk, made[1].pk]


def test_each_ticket_has_a_preview_of_the_last_message(handed_over, api, deliver, clock):
    ticket = handed_over(text="where is my parcel?")
    [listed] = api.get("/api/v1/tickets").json()
    # the system line "Control passed to the helpdesk." is not a preview
    assert listed["last_message"] == {
        "author_kind": "customer",
        "text": "where is my parcel?",
        "attachment_types": [],
        "timestamp": listed["last_message"]["timestamp"],
    }
    picture = payloads.user_message("", ts=clock())
    picture["message"] = {
        "mid": "m_pic",
        "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}],
    }
    deliver(picture)
    [listed] = api.get("/api/v1/tickets").json()
    assert listed["id"] == ticket.pk
    assert (listed["last_message"]["text"], listed["last_message"]["attachment_types"]) == (
        "",
        ["image"],
    )


def test_the_ticket_list_costs_the_same_queries_for_1_or_15_tickets(
    page, api, agent, django_assert_max_num_queries
):
    # Bearer auth (2) + visible pages (1) + the list (1) + its tickets' tags (1) = 5,
    # whatever the number of tickets; the counts need no tags: 4.
    def replied(psid: str) -> Ticket:
        ticket = factories.ticket(page=page, psid=psid, status=Ticket.Status.OPEN, assignee=agent)
        factories.message(ticket=ticket, text="hi", author_kind=Message.Author.AGENT, author=agent)
        return ticket

    replied(PSIDS[0])
    with django_assert_max_num_queries(5):
        assert len(api.get("/api/v1/tickets", {"queue": "all_open"}).json()) == 1
    for psid in PSIDS[1:15]:
        factories.message(ticket=replied(psid), text="thanks", timestamp=now_ms() + 1000)
    with django_assert_max_num_queries(5):
        listed = api.get("/api/v1/tickets", {"queue": "all_open"}).json()
    assert len(listed) == 15
    assert all(t["last_message"]["text"] == "thanks" for t in listed[1:])
    with django_assert_max_num_queries(4):
        assert api.get("/api/v1/queues").json()["all_open"] == 15


# --- a ticket's detail ------------------------------------------------------------


def test_waiting_since_is_the_handover_then_the_oldest_unanswered_message(
    handed_over, api, post, deliver
):
    ticket = handed_over()
    [listed] = api.get("/api/v1/tickets").json()
    handed_over_at = ticket.handover_timestamp
    assert _ms(listed["waiting_since"]) == handed_over_at

    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hello, how can I help?"})
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"] is None

    # after the reply, which is stamped with our clock
    first, second = now_ms() + 1000, now_ms() + 2000
    deliver(payloads.user_message("it never came", ts=first))
    deliver(payloads.user_message("hello??", ts=second))
    assert _ms(api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"]) == first

    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"] is None


def test_window_deadlines_follow_the_last_user_message(ticket, api, page):
    last = Conversation.objects.get().last_user_message_at
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert _dt(shown["window_closes_at"]) == last + timedelta(hours=24)
    assert (shown["human_agent_enabled"], shown["human_agent_window_closes_at"]) == (False, None)

    page.human_agent_enabled = True
    page.save()
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert _dt(shown["human_agent_window_closes_at"]) == last + timedelta(days=7)


def test_lock_reason_says_why_the_composer_is_locked(ticket, api, api2, post, deliver, clock):
    url = f"/api/v1/tickets/{ticket.pk}"
    shown = api.get(url).json()
    assert (shown["lock_reason"], shown["can_request_control"]) == ("", False)

    post(api, f"{url}/claim")
    assert api2.get(url).json()["lock_reason"] == "This ticket is assigned to ana."

    Conversation.objects.update(last_user_message_at=timezone.now() - timedelta(hours=30))
    assert "24-hour messaging window is closed" in api.get(url).json()["lock_reason"]
    Conversation.objects.update(last_user_message_at=timezone.now())

    deliver(payloads.take_control(ts=clock()))
    shown = api.get(url).json()
    assert (shown["control_state"], shown["control_state_label"]) == (
        "taken",
        "taken by another app",
    )
    assert shown["lock_reason"] == "The bot took the conversation; replies are locked."
    assert shown["can_request_control"] is True

    post(api, f"{url}/request-control")
    shown = api.get(url).json()
    assert shown["lock_reason"] == "Control was requested and the bot has not passed it yet."
    assert shown["can_request_control"] is False


def test_the_ticket_shows_its_thread_control_history_and_changes(handed_over, api, post):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {"outcome": "refunded"})
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert [(t["from_state"], t["to_state"], t["cause"]) for t in shown["transitions"]] == [
        ("bot", "agent", "webhook"),
        ("agent", "returning", "agent"),
        ("returning", "bot", "api"),
    ]
    assert shown["transitions"][0]["detail"] == "the bot passed control to the helpdesk"
    assert [(e["kind"], e["actor"] and e["actor"]["username"]) for e in shown["events"]] == [
        ("opened", None),
        ("claimed", "ana"),
        ("closed", "ana"),
    ]
    assert shown["events"][-1]["detail"] == "refunded"


# --- claim ------------------------------------------------------------------------


def test_claim_assigns_and_a_second_claim_gets_409(handed_over, api, api2, agent, post):
    ticket = handed_over()
    response = post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["assignee"]["username"]) == ("open", "ana")
    assert post(api, f"/api/v1/tickets/{ticket.pk}/claim").status_code == 200  # idempotent
    second = post(api2, f"/api/v1/tickets/{ticket.pk}/claim")
    assert second.status_code == 409
    assert second.json() == {"detail": "This ticket was already claimed by ana."}
    assert post(api, "/api/v1/tickets/9999/claim").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_exactly_one_wins(page, agent, agent2):
    ticket = factories.ticket(page=page)
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


# --- transfer and request control -------------------------------------------------


def test_transfer_gives_the_ticket_to_another_agent(handed_over, api, api2, agent2, post):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(api, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": agent2.pk})
    assert response.status_code == 200
    assert response.json()["assignee"]["username"] == "bo"
    assert (
        post(api2, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": 12345}).status_code == 400
    )
    # ana no longer holds it
    denied = post(api, f"/api/v1/tickets/{ticket.pk}/transfer", {"agent_id": agent2.pk})
    assert denied.status_code == 403


def test_an_agent_can_ask_for_control_again(handed_over, api, post, fake_graph, deliver, clock):
    ticket = handed_over()
    deliver(payloads.take_control(ts=clock()))
    response = post(api, f"/api/v1/tickets/{ticket.pk}/request-control")
    assert response.status_code == 202
    assert response.json()["control_state"] == "requested"
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1
    assert post(api, f"/api/v1/tickets/{ticket.pk}/request-control").status_code == 409
    assert len(fake_graph.calls_to("/me/request_thread_control")) == 1


# --- close and the hand-back --------------------------------------------------------


def test_close_sends_the_closing_message_then_passes_control_to_the_bot(
    handed_over, api, post, fake_graph
):
    ticket = handed_over()
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    response = post(
        api,
        f"/api/v1/tickets/{ticket.pk}/close",
        {"closing_message": "Glad I could help!", "outcome": "refunded"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed"

    # Conversation Routing: the closing message carries the hand-back (one Send API call).
    assert [c.path for c in fake_graph.business_calls()][-1:] == ["/me/messages"]
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    [send] = fake_graph.sends()
    assert send.body["thread_control"] == {"control_type": "pass", "app_id": payloads.BOT_APP_ID}
    assert send.body["message"]["text"] == "Glad I could help!"
    metadata = json.loads(Conversation.objects.get().control_metadata)
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


def test_a_legacy_page_sends_the_closing_message_then_passes_control(
    handed_over, api, post, fake_graph
):
    ticket = handed_over()
    Page.objects.update(conversation_routing=False)
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    post(api, f"/api/v1/tickets/{ticket.pk}/close", {"closing_message": "Bye", "outcome": "ok"})
    tail = [c.path for c in fake_graph.business_calls()][-2:]
    assert tail == ["/me/messages", "/me/pass_thread_control"]
    [send] = fake_graph.sends()
    assert "thread_control" not in send.body
    [passed] = fake_graph.calls_to("/me/pass_thread_control")
    assert passed.body["recipient"] == {"id": payloads.PSID}
    assert passed.body["target_app_id"] == payloads.BOT_APP_ID
    assert json.loads(passed.body["metadata"])["outcome"] == "ok"
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_pending_replies_go_out_before_control_is_passed(ticket, api, post, fake_graph):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(message_send, "delay", lambda *a: None)  # the worker is slow today
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "one"})
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "two"})
        assert fake_graph.sends() == []
        post(api, f"/api/v1/tickets/{ticket.pk}/close")
    paths = [c.path for c in fake_graph.business_calls() if c.path.startswith("/me/")]
    assert paths == ["/me/messages", "/me/messages", "/me/pass_thread_control"]
    assert [c.body["message"]["text"] for c in fake_graph.sends()] == ["one", "two"]


def test_closing_a_taken_ticket_passes_nothing(ticket, api, post, fake_graph, deliver, clock):
    deliver(payloads.take_control(ts=clock()))
    refused = post(api, f"/api/v1/tickets/{ticket.pk}/close", {"closing_message": "bye"})
    assert refused.status_code == 409
    assert Ticket.objects.get().status == "waiting"
    assert post(api, f"/api/v1/tickets/{ticket.pk}/close").status_code == 200
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    assert fake_graph.sends() == []
    assert Conversation.objects.get().control_state == ControlState.TAKEN


def test_a_failed_pass_back_reopens_the_ticket_flagged(ticket, api, post, fake_graph):
    fake_graph.fail_next("/me/pass_thread_control", graph_error(100, message="Invalid app"))
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == ("waiting", True)
    assert ticket.flag_reason.startswith("Could not hand the conversation back to the bot")
    assert Conversation.objects.get().control_state == ControlState.AGENT


NOT_OWNER = graph_error(10, 2018300, "(#10) The action is invalid since it's not the thread owner.")


def test_a_pass_back_refused_as_not_the_owner_asks_who_owns_the_thread(
    ticket, api, post, fake_graph
):
    # The Page Inbox took the conversation (its webhook not here yet): Meta names it.
    fake_graph.fail_next("/me/pass_thread_control", NOT_OWNER)
    fake_graph.thread_owner_app_id = payloads.PAGE_INBOX_APP_ID
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert [c.path for c in fake_graph.business_calls()] == [
        "/me/pass_thread_control",
        "/me/thread_owner",
    ]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (
        ControlState.BOT,
        "page_inbox",
    )
    last = conversation.transitions.last()
    assert (last.cause, last.owner_app_id) == ("reconcile", payloads.PAGE_INBOX_APP_ID)
    assert last.detail.startswith("Meta says: The Page Inbox has this conversation")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == ("closed", False)


def test_a_pass_back_refused_as_not_the_owner_when_meta_says_it_is_ours_reopens_flagged(
    ticket, api, post, fake_graph
):
    fake_graph.fail_next("/me/pass_thread_control", NOT_OWNER)
    fake_graph.thread_owner_app_id = payloads.APP_ID  # contradicts the refusal
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1
    ticket.refresh_from_db()
    assert (ticket.status, ticket.flagged) == ("waiting", True)
    assert Conversation.objects.get().control_state == ControlState.AGENT


def test_a_pass_back_with_an_unknown_outcome_is_checked_before_it_is_made_again(
    ticket, api, post, fake_graph
):
    # Two 503s: each time Meta is asked who owns the thread (still us) before the pass
    # is made again; never two passes in a row.
    fake_graph.thread_owner_app_id = payloads.APP_ID
    fake_graph.fail_next("/me/pass_thread_control", Scripted(503, {}), times=2)
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    paths = [c.path for c in fake_graph.business_calls()]
    assert paths == [
        "/me/pass_thread_control",
        "/me/thread_owner",
        "/me/pass_thread_control",
        "/me/thread_owner",
        "/me/pass_thread_control",
    ]
    assert Conversation.objects.get().control_state == ControlState.BOT


def test_a_pass_back_that_took_effect_is_not_made_again(ticket, api, post, fake_graph):
    # The pass went through but its answer was a 502: the bot owns the thread, done.
    fake_graph.thread_owner_app_id = payloads.BOT_APP_ID
    fake_graph.fail_next("/me/pass_thread_control", Scripted(502, {}))
    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert [c.path for c in fake_graph.business_calls()] == [
        "/me/pass_thread_control",
        "/me/thread_owner",
    ]
    conversation = Conversation.objects.get()
    assert (conversation.control_state, conversation.owner_role) == (ControlState.BOT, "bot")
    assert conversation.transitions.last().cause == "reconcile"


# --- pages of the list ----------------------------------------------------------------


def _ids(response) -> list[int]:
    return [t["id"] for t in response.json()]


def test_ticket_pages_follow_the_cursor_to_the_end(page, api):
    made = [factories.ticket(page=page, psid=psid) for psid in PSIDS[:5]]
    # one instant for all: the id breaks the tie, and nothing is skipped or repeated
    Ticket.objects.update(opened_at=timezone.now())
    first = api.get("/api/v1/tickets", {"queue": "waiting", "limit": 2})
    assert _ids(first) == [made[0].pk, made[1].pk]
    cursor = first.headers["X-Next-Cursor"]
    assert first.headers["Link"] == (
        f'</api/v1/tickets?queue=waiting&limit=2&after={cursor}>; rel="next"'
    )
    second = api.get("/api/v1/tickets", {"queue": "waiting", "limit": 2, "after": cursor})
    assert _ids(second) == [made[2].pk, made[3].pk]
    last = api.get(
        "/api/v1/tickets",
        {"queue": "waiting", "limit": 2, "after": second.headers["X-Next-Cursor"]},
    )
    assert _ids(last) == [made[4].pk]
    assert ("X-Next-Cursor" in last.headers, "Link" in last.headers) == (False, False)


def test_a_ticket_leaving_the_first_page_does_not_shift_the_next(page, api, post, fake_graph):
    # An offset would skip made[2] once made[0] leaves the waiting queue.
    made = [factories.ticket(page=page, psid=psid) for psid in PSIDS[:4]]
    first = api.get("/api/v1/tickets", {"queue": "waiting", "limit": 2})
    post(api, f"/api/v1/tickets/{made[0].pk}/claim")
    late = factories.ticket(page=page, psid=PSIDS[4])
    after = first.headers["X-Next-Cursor"]
    second = api.get("/api/v1/tickets", {"queue": "waiting", "limit": 2, "after": after})
    assert _ids(second) == [made[2].pk, made[3].pk]
    third = api.get(
        "/api/v1/tickets",
        {"queue": "waiting", "limit": 2, "after": second.headers["X-Next-Cursor"]},
    )
    assert _ids(third) == [late.pk]


def test_the_closed_queue_pages_newest_first(page, api):
    now = timezone.now()
    made = [
        factories.ticket(
            page=page, psid=psid, status=Ticket.Status.CLOSED, closed_at=now - timedelta(minutes=n)
        )
        for n, psid in enumerate(PSIDS[:3])
    ]
    made.append(
        factories.ticket(page=page, psid=PSIDS[3], status=Ticket.Status.CLOSED, closed_at=now)
    )
    first = api.get("/api/v1/tickets", {"queue": "closed", "limit": 2})
    assert _ids(first) == [made[3].pk, made[0].pk]  # same instant: the higher id first
    second = api.get(
        "/api/v1/tickets", {"queue": "closed", "limit": 2, "after": first.headers["X-Next-Cursor"]}
    )
    assert _ids(second) == [made[1].pk, made[2].pk]
    assert "X-Next-Cursor" not in second.headers


def test_the_ticket_list_comes_in_pages_of_50_by_default(page, api):
    for n in range(51):
        factories.ticket(page=page, psid=f"3100000000{n:04d}")
    first = api.get("/api/v1/tickets")
    assert len(first.json()) == 50
    rest = api.get("/api/v1/tickets", {"after": first.headers["X-Next-Cursor"]})
    assert len(rest.json()) == 1
    assert set(_ids(first)) | set(_ids(rest)) == set(Ticket.objects.values_list("pk", flat=True))


def test_bad_ticket_cursors_and_page_sizes_are_refused_in_words(page, api):
    for psid in PSIDS[:2]:
        factories.ticket(page=page, psid=psid, status=Ticket.Status.CLOSED)
    closed = api.get("/api/v1/tickets", {"queue": "closed", "limit": 1}).headers["X-Next-Cursor"]
    detail = (
        "`after` is not a cursor of this list: pass the X-Next-Cursor header of the "
        "previous page unchanged, or leave it out for the first page."
    )
    for cursor in ["nonsense", "", "!!!", closed[:-3], closed]:  # the last: another order
        response = api.get("/api/v1/tickets", {"queue": "waiting", "after": cursor})
        assert (response.status_code, response.json()) == (400, {"detail": detail}), cursor
    for limit in (0, 201):
        assert api.get("/api/v1/tickets", {"limit": limit}).status_code == 422
    assert len(api.get("/api/v1/tickets", {"queue": "closed", "limit": 200}).json()) == 2


def test_the_first_list_on_a_connection_costs_no_more_queries_than_the_next(
    page, api, django_assert_num_queries
):
    """Django's JSONObject asks SQLite once per connection wrapper whether JSON works
    (three queries); the list's preview does not (CI's scale bench saw 8 queries, then 5)."""
    from django.db import connection  # noqa: PLC0415 -- the test's own database

    factories.message(ticket=factories.ticket(page=page), text="hello")
    connection.features.__dict__.pop("supports_json_field", None)  # as on a new wrapper
    with django_assert_num_queries(5):
        assert len(api.get("/api/v1/tickets", {"queue": "all_open"}).json()) == 1


def test_a_deep_page_of_tickets_costs_the_same_queries_as_the_first(
    page, api, agent, django_assert_num_queries
):
    # Bearer auth (2) + visible pages (1) + the page (1) + its tickets' tags (1) = 5,
    # however deep.
    for n in range(40):
        ticket = factories.ticket(page=page, psid=f"3200000000{n:04d}")
        factories.message(ticket=ticket, text=f"message {n}")
    with django_assert_num_queries(5):
        first = api.get("/api/v1/tickets", {"queue": "all_open", "limit": 5})
    after = first.headers["X-Next-Cursor"]
    for _ in range(6):
        after = api.get(
            "/api/v1/tickets", {"queue": "all_open", "limit": 5, "after": after}
        ).headers["X-Next-Cursor"]
    with django_assert_num_queries(5):
        deep = api.get("/api/v1/tickets", {"queue": "all_open", "limit": 5, "after": after})
    assert [t["last_message"]["text"] for t in deep.json()] == [
        f"message {n}" for n in range(35, 40)
    ]
    assert "X-Next-Cursor" not in deep.headers
