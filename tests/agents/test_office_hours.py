"""Office hours and honest waiting (issue 11, point 8): a team's hours in its time zone
and holidays; the honest message when control comes to us and nobody can answer (sent
once, RESPONSE, never HUMAN_AGENT), the ticket waiting or going back to the bot with
metadata saying why; and the place-in-the-queue notice, at most once per interval.

The project's clock (`helpdesk.clock`) is moved as the emulator moves it: through
DEV_CLOCK_FILE, forward to a chosen moment."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from agents.models import (
    Holiday,
    Message,
    OfficeHours,
    PageRouting,
    Team,
    TeamRouting,
    Ticket,
    TicketWait,
)
from agents.services import hours, presence, routing
from helpdesk import clock as helpdesk_clock
from tests.support import payloads
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")
CLOSED_TEXT = "We're back at {opens}. The assistant can help meanwhile."


def _next_weekday(weekday: int, at: time) -> datetime:
    """The first such weekday and time in New York at least two days from now."""
    day = (timezone.now() + timedelta(days=2)).astimezone(NEW_YORK).date()
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime.combine(day, at, tzinfo=NEW_YORK)


@pytest.fixture
def move_clock(settings, tmp_path):
    """Move the project's clock forward to `target` (as the emulator's control page does)."""
    path = tmp_path / "clock.json"
    settings.DEV_CLOCK_FILE = str(path)

    def move(target: datetime) -> None:
        offset = (target - timezone.now()).total_seconds()
        assert offset > 0
        path.write_text(json.dumps({"offset_seconds": offset}))

    return move


@pytest.fixture
def team(page, agent):
    """Support works Monday to Friday, 9:00 to 17:00 in New York."""
    team = Team.objects.create(name="Support")
    team.pages.add(page)
    team.members.add(agent)
    routing_row = TeamRouting.objects.create(team=team, time_zone="America/New_York")
    for weekday in range(5):
        OfficeHours.objects.create(
            routing=routing_row, weekday=weekday, opens=time(9), closes=time(17)
        )
    PageRouting.objects.create(page=page, team=team)
    return team


_psids = itertools.count(6001)


def ask_for_a_person(deliver) -> Ticket:
    """The customer writes (on the moved clock), and the bot passes the conversation."""
    psid = str(next(_psids))
    now = helpdesk_clock.now_ms()
    deliver(payloads.user_message("a person please", ts=now - 2000, psid=psid), channel="standby")
    deliver(payloads.pass_control(ts=now - 1000, psid=psid))
    return Ticket.objects.get(conversation__contact__psid=psid)


def texts_sent(fake_graph) -> list[tuple[str, str, str | None]]:
    return [
        (c.body["message"]["text"], c.body["messaging_type"], c.body.get("tag"))
        for c in fake_graph.sends()
        if "message" in c.body
    ]


# --- the schedule ----------------------------------------------------------------------


def test_the_schedule_is_read_in_the_teams_zone_with_holidays(team):
    schedule = hours.schedule_for(team)
    monday = _next_weekday(0, time(8, 30))  # 8:30 in New York is 13:30 or 12:30 UTC

    assert not schedule.is_open(monday.astimezone(ZoneInfo("UTC")))
    assert schedule.is_open(monday + timedelta(minutes=30))
    assert not schedule.is_open(monday.replace(hour=17))
    opening = schedule.next_opening(monday)
    assert opening == monday.replace(hour=9, minute=0)
    assert hours.opens_text(opening, now=monday, zone=NEW_YORK) == "9:00"

    friday_evening = monday - timedelta(days=3) + timedelta(hours=10)  # Friday 18:30
    opening = schedule.next_opening(friday_evening)
    assert hours.opens_text(opening, now=friday_evening, zone=NEW_YORK) == "Monday 9:00"

    Holiday.objects.create(routing=team.routing, date=monday.date(), name="Labor Day")
    schedule = hours.schedule_for(team)
    assert not schedule.is_open(monday.replace(hour=10))
    opening = schedule.next_opening(friday_evening)
    assert hours.opens_text(opening, now=friday_evening, zone=NEW_YORK) == "Tuesday 9:00"


def test_a_team_without_office_hours_works_at_any_time(page):
    team = Team.objects.create(name="Always")
    TeamRouting.objects.create(team=team)
    assert hours.schedule_for(team).is_open(_next_weekday(6, time(3)))


def test_admin_refuses_a_closing_time_before_the_opening_and_a_bad_zone(team, admin_client):
    routing_row = team.routing
    response = admin_client.post(
        f"/admin/agents/teamrouting/{routing_row.pk}/change/",
        {
            "team": team.pk,
            "auto_assign": "on",
            "capacity": 3,
            "time_zone": "Mars/Olympus",
            "queue_notice_after_seconds": 300,
            "queue_notice_interval_seconds": 600,
            "office_hours-TOTAL_FORMS": 1,
            "office_hours-INITIAL_FORMS": 0,
            "office_hours-0-weekday": 5,
            "office_hours-0-opens": "17:00",
            "office_hours-0-closes": "09:00",
            "holidays-TOTAL_FORMS": 0,
            "holidays-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200  # the form again, with the errors
    page = response.content.decode()
    assert "is not a time zone: use a name like Europe/Paris" in page
    assert "The closing time must be after the opening time (the same day)." in page
    team.routing.refresh_from_db()
    assert team.routing.time_zone == "America/New_York"
    assert not OfficeHours.objects.filter(weekday=5).exists()


# --- the honest message ----------------------------------------------------------------


def test_outside_hours_the_customer_is_told_once_when_we_open_and_the_ticket_waits(
    team, page, agent, deliver, fake_graph, move_clock, run_on_commit
):
    move_clock(_next_weekday(0, time(8, 30)))

    ticket = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == [
        ("We're back at 9:00. The assistant can help meanwhile.", "RESPONSE", None)
    ]
    assert fake_graph.calls_to("/me/pass_thread_control") == []
    assert ticket.status == "waiting"
    assert list(ticket.events.values_list("kind", "detail")) == [
        ("opened", ""),
        ("unavailable", "outside office hours; opens 9:00, America/New_York"),
    ]
    notice = Message.objects.get(ticket=ticket, direction="out")
    assert (notice.author_kind, notice.status) == ("system", "sent")

    # Control coming back to the open ticket tells nobody anything again.
    deliver(
        payloads.pass_control(ts=helpdesk_clock.now_ms(), psid=ticket.conversation.contact.psid)
    )
    assert len(texts_sent(fake_graph)) == 1

    # An agent comes online: the ticket that waited for the morning is theirs.
    run_on_commit(presence.socket_open, user_id=agent.pk, channel_name="s1")
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("open", agent)


def test_the_customer_is_told_when_the_pass_s_own_task_takes_their_message_along(
    team, page, fake_graph, move_clock, django_capture_on_commit_callbacks
):
    """The customer's message and the bot's pass wait, stored; the pass's task runs
    first and takes the message along. The message is applied first, as it came: the
    window is open when the pass asks whether the customer can be told (applied the
    other way round, nobody was told, and CI's timeline missed the notice)."""
    move_clock(_next_weekday(0, time(8, 30)))
    psid, now = "6901", helpdesk_clock.now_ms()
    ids = [
        WebhookDelivery.objects.create(digest=f"d{n}", body=payloads.body_bytes(body)).pk
        for n, body in enumerate(
            [
                payloads.delivery(
                    payloads.user_message("a person please", ts=now - 2000, psid=psid),
                    channel="standby",
                ),
                payloads.delivery(payloads.pass_control(ts=now - 1000, psid=psid)),
            ]
        )
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_services.deliveries_process(delivery_ids=ids[1:]) == 2

    assert texts_sent(fake_graph) == [
        ("We're back at 9:00. The assistant can help meanwhile.", "RESPONSE", None)
    ]
    ticket = Ticket.objects.get(conversation__contact__psid=psid)
    assert list(ticket.events.values_list("kind", flat=True)) == ["opened", "unavailable"]
    assert list(WebhookDelivery.objects.filter(pk__in=ids).values_list("status", flat=True)) == [
        "processed",
        "processed",
    ]


def test_a_customer_who_cannot_be_told_is_not_said_to_have_been_and_the_event_says_why(
    team, page, deliver, fake_graph, move_clock
):
    move_clock(_next_weekday(0, time(8, 30)))
    # The bot passes a conversation whose customer never wrote to us: the window is shut.
    deliver(payloads.pass_control(ts=helpdesk_clock.now_ms(), psid="6902"))
    ticket = Ticket.objects.get(conversation__contact__psid="6902")
    # The page has no message for it.
    PageRouting.objects.filter(page=page).update(closed_message="  ")
    quiet = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == []
    assert not Message.objects.filter(direction="out").exists()
    window = "The 24-hour messaging window is closed: Messenger allows only messages a person"
    [shut] = ticket.events.filter(kind="unavailable").values_list("detail", flat=True)
    assert shut.startswith(
        f"outside office hours; opens 9:00, America/New_York{routing.UNTOLD}{window}"
    )
    assert list(quiet.events.filter(kind="unavailable").values_list("detail", flat=True)) == [
        f"outside office hours; opens 9:00, America/New_York{routing.UNTOLD}"
        "the page has no message for this"
    ]
    assert ticket.status == quiet.status == "waiting"


NOTICE = ("We're back at 9:00. The assistant can help meanwhile.", "RESPONSE", None)
UNTOLD_SHUT = (
    f"outside office hours; opens 9:00, America/New_York{routing.UNTOLD}"
    "The 24-hour messaging window is closed"
)


def test_a_message_applied_after_the_pass_it_preceded_still_gets_the_customer_told(
    team, page, deliver, fake_graph, move_clock
):
    """Two workers: the bot's pass is applied before the customer's message that came
    first, so the window looked shut. When the message lands, the customer is told, once,
    after it (CI's timeline missed the notice this way)."""
    move_clock(_next_weekday(0, time(8, 30)))
    psid, now = "6903", helpdesk_clock.now_ms()
    deliver(payloads.pass_control(ts=now - 1000, psid=psid))
    ticket = Ticket.objects.get(conversation__contact__psid=psid)
    assert texts_sent(fake_graph) == []
    assert ticket.notice_owed

    deliver(payloads.user_message("a person please", ts=now - 2000, psid=psid), channel="standby")

    assert texts_sent(fake_graph) == [NOTICE]
    events = list(ticket.events.values_list("kind", "detail"))
    assert [kind for kind, _ in events] == ["opened", "unavailable", "unavailable"]
    assert events[1][1].startswith(UNTOLD_SHUT)
    assert events[2][1] == "outside office hours; opens 9:00, America/New_York"
    said = Message.objects.filter(conversation=ticket.conversation).order_by("pk")
    marker, asked, notice = said  # "Control passed to the helpdesk.", then theirs, ours
    assert (marker.direction, marker.author_kind) == ("in", "system")
    assert (asked.author_kind, asked.ticket_id) == ("customer", None)  # context: before it
    assert (notice.author_kind, notice.ticket_id, notice.status) == ("system", ticket.pk, "sent")
    ticket.refresh_from_db()
    assert (ticket.notice_owed, ticket.status) == (False, "waiting")

    # Once: their next message says nothing more.
    deliver(payloads.user_message("hello?", ts=helpdesk_clock.now_ms(), psid=psid))
    assert texts_sent(fake_graph) == [NOTICE]
    assert ticket.events.filter(kind="unavailable").count() == 2


def test_a_customer_who_writes_to_a_ticket_nobody_can_answer_yet_is_told_then(
    team, page, deliver, fake_graph, move_clock
):
    """The bot passes a conversation whose customer never wrote to us: nobody is told
    then, and the customer's first message gets the notice."""
    move_clock(_next_weekday(0, time(8, 30)))
    deliver(payloads.pass_control(ts=helpdesk_clock.now_ms(), psid="6904"))
    assert texts_sent(fake_graph) == []

    deliver(payloads.user_message("anyone?", ts=helpdesk_clock.now_ms(), psid="6904"))

    assert texts_sent(fake_graph) == [NOTICE]
    ticket = Ticket.objects.get(conversation__contact__psid="6904")
    assert [(m.direction, m.author_kind) for m in ticket.messages.order_by("pk")] == [
        ("in", "system"),  # "Control passed to the helpdesk."
        ("in", "customer"),
        ("out", "system"),
    ]
    assert not ticket.notice_owed


def test_no_notice_owed_once_an_agent_wrote_or_somebody_can_answer(
    team, page, agent, deliver, fake_graph, move_clock, run_on_commit
):
    monday = _next_weekday(0, time(8, 30))
    move_clock(monday)
    deliver(payloads.pass_control(ts=helpdesk_clock.now_ms(), psid="6905"))
    deliver(payloads.pass_control(ts=helpdesk_clock.now_ms(), psid="6906"))
    # Each by its customer: a filter without order_by has no order on PostgreSQL.
    wrote = Ticket.objects.get(conversation__contact__psid="6905")
    opened = Ticket.objects.get(conversation__contact__psid="6906")
    assert wrote.notice_owed and opened.notice_owed
    # An agent wrote in one (as a Human Agent reply may be sent with the window shut).
    Message.objects.create(
        conversation=wrote.conversation,
        ticket=wrote,
        direction="out",
        author_kind="agent",
        text="Hi, I am here",
        timestamp=helpdesk_clock.now_ms(),
    )
    deliver(payloads.user_message("thanks", ts=helpdesk_clock.now_ms(), psid="6905"))
    # The team opens and its agent is online: somebody can answer the other.
    move_clock(monday + timedelta(hours=1))
    run_on_commit(presence.socket_open, user_id=agent.pk, channel_name="s1")
    deliver(payloads.user_message("hello", ts=helpdesk_clock.now_ms(), psid="6906"))

    assert texts_sent(fake_graph) == []
    for ticket in (wrote, opened):
        ticket.refresh_from_db()
        assert not ticket.notice_owed
        assert ticket.events.filter(kind="unavailable").count() == 1


def test_a_ticket_that_starts_waiting_again_and_is_told_owes_nothing_more(
    team, page, deliver, fake_graph, move_clock, django_capture_on_commit_callbacks
):
    """A flag left from an earlier wait (the ticket reopened) is settled by the new
    one: told now, the customer's next message gets no second notice."""
    move_clock(_next_weekday(0, time(8, 30)))
    ticket = ask_for_a_person(deliver)
    Ticket.objects.filter(pk=ticket.pk).update(notice_owed=True)
    ticket.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        assert routing.ticket_waiting(ticket) is False

    deliver(
        payloads.user_message(
            "ok", ts=helpdesk_clock.now_ms(), psid=ticket.conversation.contact.psid
        )
    )

    assert texts_sent(fake_graph) == [NOTICE, NOTICE]
    ticket.refresh_from_db()
    assert not ticket.notice_owed


def test_a_conversation_given_back_to_the_bot_owes_no_notice(
    team, page, deliver, fake_graph, move_clock
):
    PageRouting.objects.filter(page=page).update(when_unavailable="bot")
    move_clock(_next_weekday(0, time(8, 30)))
    deliver(payloads.pass_control(ts=helpdesk_clock.now_ms(), psid="6907"))
    ticket = Ticket.objects.get(conversation__contact__psid="6907")
    assert (ticket.status, ticket.notice_owed) == ("closed", False)
    assert texts_sent(fake_graph) == []
    assert len(fake_graph.calls_to("/me/pass_thread_control")) == 1


def test_on_friday_evening_the_message_names_the_day(team, deliver, fake_graph, move_clock):
    move_clock(_next_weekday(4, time(18, 30)))

    ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == [
        ("We're back at Monday 9:00. The assistant can help meanwhile.", "RESPONSE", None)
    ]


def test_inside_hours_with_nobody_online_the_customer_is_told_so(
    team, deliver, fake_graph, move_clock
):
    move_clock(_next_weekday(1, time(10)))

    ticket = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == [
        (PageRouting._meta.get_field("nobody_message").default, "RESPONSE", None)
    ]
    assert ticket.status == "waiting"


def test_inside_hours_with_someone_online_nothing_is_said(
    team, agent, deliver, fake_graph, move_clock
):
    move_clock(_next_weekday(1, time(10)))
    presence.socket_open(user_id=agent.pk, channel_name="s1")

    ticket = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == []
    ticket.refresh_from_db()
    assert (ticket.status, ticket.assignee) == ("open", agent)


def test_a_page_without_routing_settings_says_nothing(team, page, deliver, fake_graph, move_clock):
    PageRouting.objects.all().delete()
    move_clock(_next_weekday(0, time(8, 30)))

    ticket = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == []
    assert list(ticket.events.values_list("kind", flat=True)) == ["opened"]


def test_back_to_the_bot_outside_hours_passes_with_metadata_saying_why(
    team, page, deliver, fake_graph, move_clock
):
    PageRouting.objects.filter(page=page).update(when_unavailable="bot")
    monday = _next_weekday(0, time(8, 30))
    move_clock(monday)

    ticket = ask_for_a_person(deliver)

    assert texts_sent(fake_graph) == [
        ("We're back at 9:00. The assistant can help meanwhile.", "RESPONSE", None)
    ]
    passes = fake_graph.calls_to("/me/pass_thread_control")
    assert len(passes) == 1
    assert passes[0].body["target_app_id"] == payloads.BOT_APP_ID
    assert json.loads(passes[0].body["metadata"]) == {
        "source": "helpdesk",
        "ticket": ticket.pk,
        "reason": "outside_hours",
        "opens_at": monday.replace(hour=9, minute=0).isoformat(timespec="minutes"),
    }
    # The message went first, then the pass.
    order = [c.path for c in fake_graph.business_calls() if c.path.startswith("/me/")]
    assert order[-2:] == ["/me/messages", "/me/pass_thread_control"]
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closing_note) == (
        "closed",
        "nobody available: outside office hours",
    )
    assert ticket.conversation.control_state == "bot"


# --- the place in the queue ------------------------------------------------------------


@pytest.fixture
def notices(run_on_commit):
    """The beat's run: tell waiting customers their place (and send what it queued)."""
    return lambda: run_on_commit(routing.queue_notices_send)


def test_waiting_customers_are_told_their_place_at_most_once_per_interval(
    team, deliver, fake_graph, move_clock, notices
):
    PageRouting.objects.filter(team=team).update(nobody_message="")  # only the queue notices
    tuesday = _next_weekday(1, time(10))
    move_clock(tuesday)
    first, second = ask_for_a_person(deliver), ask_for_a_person(deliver)
    assert texts_sent(fake_graph) == []

    # Not yet waited long enough (300 s):
    move_clock(tuesday + timedelta(seconds=200))
    assert notices() == []

    move_clock(tuesday + timedelta(seconds=400))
    assert notices() == [first.pk, second.pk]
    assert notices() == []  # a second run at once: nobody told twice
    sent = texts_sent(fake_graph)
    assert [text for text, _, _ in sent] == [
        "You're number 1 in line. An agent will be with you soon.",
        "You're number 2 in line. An agent will be with you soon.",
    ]
    assert {(kind, tag) for _, kind, tag in sent} == {("RESPONSE", None)}

    move_clock(tuesday + timedelta(seconds=900))  # 500 s later: under the 600 s interval
    assert notices() == []
    move_clock(tuesday + timedelta(seconds=1010))
    assert notices() == [first.pk, second.pk]
    assert TicketWait.objects.filter(position_told_at__isnull=True).count() == 0


def test_no_place_notice_after_the_ticket_is_assigned_or_outside_hours(
    team, agent, deliver, fake_graph, move_clock, notices
):
    PageRouting.objects.filter(team=team).update(nobody_message="", closed_message="")
    tuesday = _next_weekday(1, time(16, 50))
    move_clock(tuesday)
    waiting, taken = ask_for_a_person(deliver), ask_for_a_person(deliver)
    Ticket.objects.filter(pk=taken.pk).update(status="open", assignee=agent)

    move_clock(tuesday + timedelta(seconds=400))  # 16:56: open
    assert notices() == [waiting.pk]

    move_clock(tuesday + timedelta(minutes=30))  # 17:20: closed
    assert notices() == []
    assert len(texts_sent(fake_graph)) == 1
