"""The doctor: is Meta still talking to the helpdesk, and can the helpdesk answer?

Each check ends in a verdict in plain words and, when something is wrong, the fix. Per
page: the token (Meta's `debug_token`), the webhook subscription and its fields, the
last message, how control comes in, sending. For the whole helpdesk: the Graph API
version, webhook deliveries, the database, Redis, the channel layer, the Celery workers
and beat. The page checks ask Meta (two Graph calls per page); nothing here changes
anything but `subscribe`, which an admin asks for.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone

from agents.models import Conversation
from helpdesk import health
from webhooks import graph, graph_versions
from webhooks.graph import GraphError
from webhooks.models import ControlWay, Page, WebhookDelivery

logger = logging.getLogger(__name__)

# The webhook fields the helpdesk needs, and what is lost without each.
NEEDED_FIELDS: dict[str, str] = {
    "messages": "the customer's messages while the helpdesk has the conversation",
    "standby": "everything said while the bot has the conversation, the request for a "
    "person among it (the most common silent failure: the bot goes on answering and the "
    "helpdesk hears nothing)",
    "messaging_handovers": "when the bot passes or takes the conversation",
    "message_echoes": "the bot's and the Page Inbox's own messages, and proof that a "
    "reply went out",
    "messaging_postbacks": "button taps, such as 'Talk to a person'",
    "message_reads": "when the customer read a reply",
    "message_deliveries": "when a reply reached the customer's phone",
}
# What the page token must carry: sending and thread control; reading and changing the
# Page's webhook subscription.
NEEDED_SCOPES: dict[str, str] = {
    "pages_messaging": "send messages and control threads",
    "pages_manage_metadata": "see and change the Page's webhook subscription",
}
HEARTBEAT_KEY = "doctor:heartbeat"
QUIET_DAYS = 7  # no message on a page for this long is worth a look
STUCK_SECONDS = 120  # a delivery not processed after this long: the workers are behind


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return "OK" if self is Status.OK else self.value.capitalize()


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    verdict: str
    fix: str = ""
    # A fix the doctor page can apply itself (a button): its action name.
    action: str = ""


@dataclass
class PageReport:
    page: Page
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return _worst(c.status for c in self.checks)


def _worst(statuses: Any) -> Status:
    order = [Status.OK, Status.UNKNOWN, Status.WARNING, Status.FAILING]
    return max(statuses, key=order.index, default=Status.OK)


def _ago(moment: datetime.datetime, now: datetime.datetime) -> str:
    seconds = int((now - moment).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)} seconds ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} minutes ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} hours ago"
    return f"{seconds // 86400} days ago"


def _connect_fix(page: Page) -> str:
    return (
        "Make a new Page access token for this app (Meta's app dashboard: Messenger, "
        "Access tokens) and put it on this page's admin form, or run `manage.py "
        f"connect_page --page-id {page.page_id} --access-token <token> --bot-app-id "
        f"{page.bot_app_id} --name '{page.name}'`."
    )


# --- per page ------------------------------------------------------------------------


def token_check(page: Page) -> Check:
    name = "Page token"
    try:
        data = graph.debug_token(page)
    except GraphError as error:
        if error.code == 190:
            return Check(
                name,
                Status.FAILING,
                "Meta refused this helpdesk's own app token: MESSENGER_APP_ID and "
                f"MESSENGER_APP_SECRET do not match an app ({error.describe()}).",
                "Copy the app id and secret from Meta's app dashboard (Settings, Basic) "
                "into the environment and restart.",
            )
        return Check(name, Status.UNKNOWN, f"Meta could not be asked: {error.describe()}.")
    if not data.get("is_valid"):
        problem = data.get("error")
        said = str(problem.get("message") if isinstance(problem, dict) else "") or "no reason"
        return Check(
            name, Status.FAILING, f"Meta says the token is not valid: {said}", _connect_fix(page)
        )
    if str(data.get("app_id")) != settings.MESSENGER_APP_ID:
        return Check(
            name,
            Status.FAILING,
            f"The token was made for app {data.get('app_id')}, not this helpdesk's app "
            f"{settings.MESSENGER_APP_ID}: Meta answers the bot's calls, not ours.",
            _connect_fix(page),
        )
    if str(data.get("profile_id")) != page.page_id:
        return Check(
            name,
            Status.FAILING,
            f"The token is for another Page ({data.get('profile_id')}), not {page.page_id}.",
            _connect_fix(page),
        )
    scopes = set(data.get("scopes") or [])
    missing = [s for s in NEEDED_SCOPES if s not in scopes]
    if missing:
        lost = "; ".join(f"{s}, to {NEEDED_SCOPES[s]}" for s in missing)
        return Check(
            name,
            Status.FAILING,
            f"The token lacks {lost}.",
            "Give the app these permissions (App Review, and the Page admin's consent), "
            "then make a new token. " + _connect_fix(page),
        )
    expires = data.get("expires_at")
    lasts = (
        "does not expire"
        if not expires
        else f"expires {datetime.datetime.fromtimestamp(int(expires), datetime.UTC):%d %b %Y}"
    )
    return Check(
        name,
        Status.OK,
        f"Valid for this Page and this app, with {' and '.join(NEEDED_SCOPES)}; it {lasts}.",
    )


def subscription_check(page: Page) -> Check:
    name = "Webhook subscription"
    try:
        apps = graph.subscribed_apps(page)
    except GraphError as error:
        status = Status.FAILING if error.code in (190, 200, 10) else Status.UNKNOWN
        return Check(name, status, f"Meta could not be asked: {error.describe()}.")
    ours = next((a for a in apps if str(a.get("id")) == settings.MESSENGER_APP_ID), None)
    if ours is None:
        return Check(
            name,
            Status.FAILING,
            "This app is not subscribed to the Page's webhooks: the helpdesk hears nothing "
            "from it. Meta unsubscribes an app whose webhook failed for an hour.",
            "Subscribe it with the fields below (the button does it), after checking that "
            "the webhook URL answers.",
            action="subscribe",
        )
    fields = set(ours.get("subscribed_fields") or [])
    missing = [f for f in NEEDED_FIELDS if f not in fields]
    if missing:
        lost = "; ".join(f"{f}: {NEEDED_FIELDS[f]}" for f in missing)
        return Check(
            name,
            Status.FAILING,
            f"Subscribed without {', '.join(missing)}. Without "
            f"{'it' if len(missing) == 1 else 'them'} the helpdesk misses {lost}.",
            "Subscribe again with every needed field (the button does it). The app's "
            "webhook settings in Meta's dashboard must list them too.",
            action="subscribe",
        )
    return Check(
        name, Status.OK, f"Subscribed with every needed field ({', '.join(NEEDED_FIELDS)})."
    )


def activity_check(page: Page, now: datetime.datetime) -> Check:
    name = "Last message"
    last = Conversation.objects.filter(page=page).aggregate(last=Max("last_message_at"))["last"]
    if last is None:
        return Check(
            name,
            Status.WARNING,
            "No message from this Page has reached the helpdesk yet.",
            "Write to the Page in Messenger: the message should show here within seconds. "
            "If not, check the subscription above and the webhook URL in Meta's dashboard.",
        )
    if now - last > datetime.timedelta(days=QUIET_DAYS):
        return Check(
            name,
            Status.WARNING,
            f"The last message was {_ago(last, now)} ({last:%d %b %Y %H:%M} UTC).",
            "If the Page is busier than that, Meta may have stopped sending webhooks: "
            "check the subscription above.",
        )
    return Check(name, Status.OK, f"The last message was {_ago(last, now)}.")


def control_check(page: Page) -> Check:
    name = "How control comes in"
    seen = f" (last seen {page.control_way_at:%d %b %Y %H:%M} UTC)" if page.control_way_at else ""
    if page.control_way == ControlWay.NONE:
        return Check(
            name,
            Status.FAILING,
            f"Neither request nor take worked{seen}: "
            f"{page.control_way_note or 'Meta refused both'}",
            "In the Page's settings (Advanced messaging, Conversation Routing), allow this "
            "app to take control of conversations; or have the bot pass them.",
        )
    if page.control_way:
        way = ControlWay(page.control_way).label
        note = f" {page.control_way_note}" if page.control_way_note else ""
        return Check(name, Status.OK, f"{way.capitalize()} works{seen}.{note}")
    return Check(
        name,
        Status.UNKNOWN,
        f"Not tried yet, in mode {page.get_control_mode_display()}: the first customer "
        "who asks for a person will show which way works.",
    )


def sending_check(page: Page) -> Check:
    name = "Sending"
    if not page.outbox_paused_reason:
        return Check(name, Status.OK, "Replies go out.")
    since = f" since {page.outbox_paused_at:%d %b %Y %H:%M} UTC" if page.outbox_paused_at else ""
    code = page.outbox_paused_code
    if code.startswith("190"):
        fix = _connect_fix(page)
    elif code.startswith("10"):
        fix = "Meta restricted the Page: see its Page Quality in Meta Business Suite."
    else:
        fix = "Fix what Meta says; sending resumes by itself when a probe succeeds."
    return Check(
        name,
        Status.FAILING,
        f"Paused{since}: {page.outbox_paused_reason}. Replies wait and go out once it resumes "
        f"(a probe every {settings.OUTBOX_PROBE_SECONDS} seconds).",
        fix,
    )


def page_report(page: Page, *, now: datetime.datetime | None = None) -> PageReport:
    now = now or timezone.now()
    return PageReport(
        page,
        [
            token_check(page),
            subscription_check(page),
            activity_check(page, now),
            control_check(page),
            sending_check(page),
        ],
    )


def subscribe(page: Page) -> str:
    """Subscribe this app to the page with every needed field; the outcome in words."""
    try:
        graph.subscribe_app(page, fields=list(NEEDED_FIELDS))
    except GraphError as error:
        return f"Meta refused the subscription: {error.describe()}."
    logger.info("doctor: subscribed app to page %s with %s", page.page_id, list(NEEDED_FIELDS))
    return f"Subscribed to {page.name} with {', '.join(NEEDED_FIELDS)}."


# --- the whole helpdesk --------------------------------------------------------------


def version_check(today: datetime.date) -> Check:
    pinned = settings.GRAPH_API_VERSION
    verdict = graph_versions.verdict(pinned, today)
    answered = graph.answering_version()
    text = f"GRAPH_API_VERSION is {pinned}. {verdict.text}"
    if answered:
        text += f" Meta's answers come as {answered} (within the last day)."
    return Check(
        "Graph API version",
        Status.OK if verdict.ok and not answered else Status.WARNING,
        text,
        ""
        if verdict.ok and not answered
        else "Read Meta's changelog, then raise GRAPH_API_VERSION.",
    )


def deliveries_check(now: datetime.datetime) -> Check:
    name = "Webhook deliveries"
    last = WebhookDelivery.objects.order_by("-received_at").values_list("received_at", flat=True)
    latest = last.first()
    day_ago = now - datetime.timedelta(days=1)
    failed = WebhookDelivery.objects.filter(
        status__in=(WebhookDelivery.Status.FAILED, WebhookDelivery.Status.PARTIAL),
        received_at__gte=day_ago,
    ).count()
    stuck = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.RECEIVED,
        received_at__lt=now - datetime.timedelta(seconds=STUCK_SECONDS),
    ).count()
    heard = f"the last arrived {_ago(latest, now)}" if latest else "none has arrived yet"
    if failed or stuck:
        parts = []
        if failed:
            parts.append(f"{failed} failed in the last 24 hours (some or all of their events)")
        if stuck:
            parts.append(f"{stuck} waiting for more than {STUCK_SECONDS // 60} minutes")
        return Check(
            name,
            Status.FAILING,
            f"{'; '.join(parts).capitalize()}; {heard}.",
            "Failed ones: see Webhook deliveries in admin (the error is on each). Waiting "
            "ones: the Celery workers are down or behind; see below.",
        )
    return Check(name, Status.OK, f"None failing or waiting; {heard}.")


def services_checks() -> list[Check]:
    answers = async_to_sync(health.results)()
    checks = []
    for name, ok in answers.items():
        label = name.removeprefix("the ").capitalize()
        checks.append(
            Check(label, Status.OK, "Answers.")
            if ok
            else Check(
                label,
                Status.FAILING,
                "Does not answer: the inbox's live updates, tasks or pages fail with it.",
                "Start it, or check DATABASE_URL / REDIS_URL; the process logs say why.",
            )
        )
    return checks


def workers_check() -> Check:
    from helpdesk.celery import app  # noqa: PLC0415 -- Celery's app, only when asked

    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception as error:  # noqa: BLE001 -- Redis down: said in words
        return Check("Celery workers", Status.UNKNOWN, f"Could not ask ({type(error).__name__}).")
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return Check(
            "Celery workers",
            Status.FAILING,
            "No worker answered: webhooks are stored but not applied, and replies are not sent.",
            "Start the workers (`celery -A helpdesk worker`; deploy/ has the units).",
        )
    return Check("Celery workers", Status.OK, f"{len(names)} answered: {', '.join(names)}.")


def heartbeat() -> None:
    """Beat's tick, run by a worker (agents.tasks.doctor_heartbeat)."""
    cache.set(HEARTBEAT_KEY, time.time(), timeout=None)


def beat_check(workers: Check) -> Check:
    name = "Celery beat"
    try:
        last = cache.get(HEARTBEAT_KEY)
    except Exception as error:  # noqa: BLE001 -- Redis down: said in words
        return Check(name, Status.UNKNOWN, f"Could not ask ({type(error).__name__}).")
    interval = settings.DOCTOR_HEARTBEAT_SECONDS
    if isinstance(last, int | float) and time.time() - last <= 3 * interval:
        return Check(name, Status.OK, f"Ticked {int(time.time() - last)} seconds ago.")
    when = (
        f"last ticked {_ago(datetime.datetime.fromtimestamp(last, datetime.UTC), timezone.now())}"
        if isinstance(last, int | float)
        else "has not ticked yet"
    )
    if workers.status != Status.OK:
        return Check(name, Status.UNKNOWN, f"Beat {when}, but no worker runs its ticks to tell.")
    return Check(
        name,
        # Never ticked: beat may have started less than a tick ago (a fresh deployment).
        Status.FAILING if isinstance(last, int | float) else Status.WARNING,
        f"Beat {when} (every {interval} seconds when it runs): stuck deliveries and replies "
        "are not re-driven, paused pages not probed, lapses not reconciled.",
        "Start exactly one `celery -A helpdesk beat`.",
    )


def system_checks(*, now: datetime.datetime | None = None) -> list[Check]:
    now = now or timezone.now()
    workers = workers_check()
    return [
        version_check(now.date()),
        deliveries_check(now),
        *services_checks(),
        workers,
        beat_check(workers),
    ]
