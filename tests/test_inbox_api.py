"""What the inbox page reads from the API: queues and counts, previews, waiting times,
windows, lock reasons, history, the typing indicator; and the cost of the ticket list."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Conversation, Team, Ticket
from agents.services import outbound
from agents.services.state import Outcome, now_ms
from tests.support import payloads

pytestmark = pytest.mark.django_db

PSIDS = [f"30000000000001{n:02d}" for n in range(20)]


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    def post(client, url: str, data: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, json.dumps(data or {}), content_type="application/json")

    return post


@pytest.fixture
def open_ticket(page, deliver, clock, fake_graph):
    """A customer talks to the bot, then the bot passes the thread: a waiting ticket."""

    def make(psid: str = payloads.PSID, text: str = "I need help") -> Ticket:
        deliver(payloads.user_message(text, ts=clock(), psid=psid), channel="standby")
        deliver(payloads.pass_control(ts=clock(), psid=psid, metadata="help"))
        return Ticket.objects.get(conversation__contact__psid=psid)

    return make


def test_queues_count_and_list_the_inbox_queues(open_ticket, api, api2, agent, post):
    waiting = open_ticket(PSIDS[0])
    mine = open_ticket(PSIDS[1])
    theirs = open_ticket(PSIDS[2])
    closed = open_ticket(PSIDS[3])
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


def test_counts_follow_teams(open_ticket, api, api2, agent2, page):
    open_ticket()
    team = Team.objects.create(name="billing")
    team.pages.add(page)
    assert api.get("/api/v1/queues").json() == {
        "waiting": 0,
        "mine": 0,
        "all_open": 0,
        "closed": 0,
    }
    team.members.add(agent2)
    assert api2.get("/api/v1/queues").json()["waiting"] == 1


def test_closed_queue_is_newest_first_and_can_be_limited(open_ticket, api, post):
    tickets = [open_ticket(psid) for psid in PSIDS[:3]]
    for ticket in tickets:
        post(api, f"/api/v1/tickets/{ticket.pk}/close")
    listed = api.get("/api/v1/tickets", {"queue": "closed", "limit": 2}).json()
    assert [t["id"] for t in listed] == [tickets[2].pk, tickets[1].pk]


def test_each_ticket_has_a_preview_of_the_last_message(open_ticket, api, deliver, clock):
    ticket = open_ticket(text="where is my parcel?")
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


def test_waiting_since_is_the_handover_then_the_oldest_unanswered_message(
    open_ticket, api, post, deliver
):
    ticket = open_ticket()
    [listed] = api.get("/api/v1/tickets").json()
    handed_over = ticket.handover_timestamp
    assert _ms(listed["waiting_since"]) == handed_over

    post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "Hello, how can I help?"})
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"] is None

    # after the reply, which is stamped with our clock
    first, second = now_ms() + 1000, now_ms() + 2000
    deliver(payloads.user_message("it never came", ts=first))
    deliver(payloads.user_message("hello??", ts=second))
    assert _ms(api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"]) == first

    post(api, f"/api/v1/tickets/{ticket.pk}/close")
    assert api.get(f"/api/v1/tickets/{ticket.pk}").json()["waiting_since"] is None


def test_window_deadlines_follow_the_last_user_message(open_ticket, api, page):
    ticket = open_ticket()
    last = Conversation.objects.get().last_user_message_at
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert _dt(shown["window_closes_at"]) == last + timedelta(hours=24)
    assert (shown["human_agent_enabled"], shown["human_agent_window_closes_at"]) == (False, None)

    page.human_agent_enabled = True
    page.save()
    shown = api.get(f"/api/v1/tickets/{ticket.pk}").json()
    assert _dt(shown["human_agent_window_closes_at"]) == last + timedelta(days=7)


def test_lock_reason_says_why_the_composer_is_locked(
    open_ticket, api, api2, post, deliver, clock, page
):
    ticket = open_ticket()
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


def test_the_ticket_shows_its_thread_control_history_and_changes(open_ticket, api, post):
    ticket = open_ticket()
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


def test_a_burst_of_typing_sends_one_throttled_typing_indicator(open_ticket, api, post, fake_graph):
    ticket = open_ticket()
    url = f"/api/v1/tickets/{ticket.pk}/typing"
    answers = [post(api, url) for _ in range(12)]
    assert [a.status_code for a in answers] == [202] * 12
    assert [a.json()["sent"] for a in answers] == [True] + [False] * 11
    [call] = [c for c in fake_graph.calls if "sender_action" in c.body]
    assert call.path == "/me/messages"
    assert call.body == {"recipient": {"id": payloads.PSID}, "sender_action": "typing_on"}

    # once the throttle has passed, the next keystroke sends again
    Conversation.objects.update(typing_sent_at=timezone.now() - timedelta(seconds=11))
    assert post(api, url).json() == {"sent": True}
    assert len([c for c in fake_graph.calls if "sender_action" in c.body]) == 2


def test_no_typing_indicator_while_the_composer_is_locked(
    open_ticket, api, api2, post, deliver, clock, fake_graph, page, agent2
):
    ticket = open_ticket()
    url = f"/api/v1/tickets/{ticket.pk}/typing"
    post(api, f"/api/v1/tickets/{ticket.pk}/claim")
    assert post(api2, url).json() == {"sent": False}  # someone else's ticket
    deliver(payloads.take_control(ts=clock()))
    assert post(api, url).json() == {"sent": False}  # the bot has the thread
    assert [c for c in fake_graph.calls if "sender_action" in c.body] == []
    assert Conversation.objects.get().typing_sent_at is None

    team = Team.objects.create(name="billing")
    team.pages.add(page)
    assert post(api2, url).status_code == 404


def test_the_typing_task_sends_nothing_once_control_is_gone(
    open_ticket, fake_graph, deliver, clock
):
    ticket = open_ticket()
    deliver(payloads.take_control(ts=clock()))
    outcome = outbound.typing_send(conversation_id=ticket.conversation_id)
    assert outcome == Outcome.SKIPPED
    assert [c for c in fake_graph.calls if "sender_action" in c.body] == []


def test_a_failed_typing_indicator_is_not_retried(open_ticket, api, post, fake_graph):
    from tests.support.fakegraph import Scripted

    ticket = open_ticket()
    fake_graph.fail_next("/me/messages", Scripted(503, {}))
    assert post(api, f"/api/v1/tickets/{ticket.pk}/typing").json() == {"sent": True}
    assert len([c for c in fake_graph.calls if "sender_action" in c.body]) == 1


def test_the_ticket_list_costs_the_same_queries_for_1_or_15_tickets(
    open_ticket, api, post, deliver, django_assert_max_num_queries
):
    # Bearer auth (2) + visible pages (3) + the list (1) = 6, whatever the number of tickets.
    first = open_ticket(PSIDS[0])
    post(api, f"/api/v1/tickets/{first.pk}/reply", {"text": "hi"})
    with django_assert_max_num_queries(6):
        assert len(api.get("/api/v1/tickets", {"queue": "all_open"}).json()) == 1
    for psid in PSIDS[1:15]:
        ticket = open_ticket(psid)
        post(api, f"/api/v1/tickets/{ticket.pk}/reply", {"text": "hi"})
        deliver(payloads.user_message("thanks", ts=now_ms() + 1000, psid=psid))
    with django_assert_max_num_queries(6):
        listed = api.get("/api/v1/tickets", {"queue": "all_open"}).json()
    assert len(listed) == 15
    assert all(t["last_message"]["text"] == "thanks" for t in listed[1:])
    with django_assert_max_num_queries(6):
        assert api.get("/api/v1/queues").json()["all_open"] == 15


def _ms(iso: str) -> int:
    return int(_dt(iso).timestamp() * 1000)


def _dt(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


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


def test_the_messages_of_a_ticket_cost_the_same_queries_however_many(
    open_ticket, api, deliver, django_assert_max_num_queries
):
    ticket = open_ticket()
    url = f"/api/v1/tickets/{ticket.pk}/messages"
    with django_assert_max_num_queries(7):
        assert len(api.get(url).json()) == 2
    for n in range(10):
        deliver(payloads.user_message(f"message {n}", ts=now_ms() + n))
    with django_assert_max_num_queries(7):
        assert len(api.get(url).json()) == 12


def test_the_inbox_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/queues"]
    assert "post" in paths["/api/v1/tickets/{ticket_id}/typing"]
    queue = next(p for p in paths["/api/v1/tickets"]["get"]["parameters"] if p["name"] == "queue")
    assert "all_open" in json.dumps(queue)
