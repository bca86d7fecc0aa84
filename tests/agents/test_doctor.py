"""The doctor page's checks, each against the Messenger emulator with the fault it is
there to find; the page itself in admin (who may see it, the subscribe button, bad
input). The checks of the processes (workers, beat, Redis) are in
tests/e2e/test_doctor_processes.py."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from agents.models import Conversation
from agents.services import doctor
from agents.services.doctor import Status
from helpdesk.settings import _graph_api
from tests.emulator.support import (
    BOT,
    BOT_TOKEN,
    HELPDESK,
    HELPDESK_SECRET,
    HELPDESK_TOKEN,
    PAGE,
    config,
)
from tests.support import factories
from webhooks.emulator import Emulator
from webhooks.emulator.platform import appsecret_proof
from webhooks.models import ControlWay, Page, WebhookDelivery

ALL_FIELDS = list(doctor.NEEDED_FIELDS)
PROOF = appsecret_proof(HELPDESK_SECRET, HELPDESK_TOKEN)


@pytest.fixture
def emulator(settings) -> Iterator[Emulator]:
    with Emulator(config("cr")) as emulator:
        settings.MESSENGER_APP_ID = HELPDESK
        settings.MESSENGER_APP_SECRET = HELPDESK_SECRET
        settings.GRAPH_API_URL, settings.GRAPH_API_VERSION = _graph_api(emulator.base_url, "")
        yield emulator


@pytest.fixture
def page(db, emulator) -> Page:
    return factories.page(page_id=PAGE, access_token=HELPDESK_TOKEN, bot_app_id=BOT)


def _checks(page: Page) -> dict[str, tuple[Status, str, str]]:
    return {c.name: (c.status, c.verdict, c.fix) for c in doctor.page_report(page).checks}


def _subscribe(emulator: Emulator, fields: list[str]) -> None:
    """The helpdesk's app subscribes itself with `fields`, as a Page admin's tool might."""
    response = requests.post(
        f"{emulator.base_url}/v23.0/me/subscribed_apps",
        params={
            "access_token": HELPDESK_TOKEN,
            "appsecret_proof": PROOF,
            "subscribed_fields": ",".join(fields),
        },
        timeout=5,
    )
    assert response.json() == {"success": True}


def _our_fields(emulator: Emulator) -> list[str]:
    [ours] = [
        a for a in emulator.graph_call(
            "GET", "/me/subscribed_apps", {}, access_token=HELPDESK_TOKEN, appsecret_proof=PROOF
        ).body["data"]
        if a["id"] == HELPDESK
    ]  # fmt: skip
    return list(ours["subscribed_fields"])


# --- the token ---------------------------------------------------------------------------


def test_a_healthy_page(page):
    checks = _checks(page)
    assert checks["Page token"] == (
        Status.OK,
        "Valid for this Page and this app, with pages_messaging and pages_manage_metadata; "
        "it does not expire.",
        "",
    )
    assert checks["Webhook subscription"][0] == Status.OK
    assert checks["Sending"] == (Status.OK, "Replies go out.", "")


def test_an_expired_token(page, emulator):
    emulator.platform.token_expire(page_id=PAGE, app_id=HELPDESK, expired=True)
    status, verdict, fix = _checks(page)["Page token"]
    assert status == Status.FAILING
    assert verdict.startswith("Meta says the token is not valid: Error validating access token")
    assert f"connect_page --page-id {PAGE} --access-token <token>" in fix
    # the subscription cannot be read with it either: failing, with Meta's reason
    status, verdict, _ = _checks(page)["Webhook subscription"]
    assert status == Status.FAILING
    assert "(code 190/463)" in verdict


def test_a_token_without_the_messaging_permission(page, emulator):
    emulator.platform.permission_revoke(page_id=PAGE, app_id=HELPDESK, revoked=True)
    status, verdict, _ = _checks(page)["Page token"]
    assert (status, verdict) == (
        Status.FAILING,
        "The token lacks pages_messaging, to send messages and control threads.",
    )


def test_the_bots_token_given_by_mistake(db, emulator):
    page = factories.page(page_id=PAGE, access_token=BOT_TOKEN, bot_app_id=BOT)
    status, verdict, _ = _checks(page)["Page token"]
    assert (status, verdict) == (
        Status.FAILING,
        f"The token was made for app {BOT}, not this helpdesk's app {HELPDESK}: Meta answers "
        "the bot's calls, not ours.",
    )


def test_a_wrong_app_secret(page, settings):
    settings.MESSENGER_APP_SECRET = "not-the-secret"
    status, verdict, fix = _checks(page)["Page token"]
    assert status == Status.FAILING
    assert verdict.startswith("Meta refused this helpdesk's own app token")
    assert "not-the-secret" not in verdict
    assert fix.startswith("Copy the app id and secret from Meta's app dashboard")


def test_meta_out_of_reach_is_unknown_not_failing(page, settings):
    settings.GRAPH_API_URL = "http://127.0.0.1:9/v23.0"
    checks = _checks(page)
    assert checks["Page token"] == (
        Status.UNKNOWN,
        "Meta could not be asked: the Graph API could not be reached: ConnectionError.",
        "",
    )
    assert checks["Webhook subscription"][0] == Status.UNKNOWN


# --- the subscription ------------------------------------------------------------------


def test_a_subscription_without_standby_names_what_is_lost(page, emulator):
    _subscribe(emulator, [f for f in ALL_FIELDS if f != "standby"])
    status, verdict, _ = _checks(page)["Webhook subscription"]
    assert status == Status.FAILING
    assert verdict.startswith("Subscribed without standby. Without it the helpdesk misses ")
    assert "the bot goes on answering and the helpdesk hears nothing" in verdict
    assert doctor.page_report(page).checks[1].action == "subscribe"


def test_subscribe_fixes_it(page, emulator):
    _subscribe(emulator, ["messages"])
    assert doctor.subscribe(page) == (f"Subscribed to {page.name} with {', '.join(ALL_FIELDS)}.")
    assert sorted(_our_fields(emulator)) == sorted(ALL_FIELDS)
    assert _checks(page)["Webhook subscription"][0] == Status.OK


def test_an_unsubscribed_app(page, emulator):
    answer = emulator.graph_call(
        "DELETE", "/me/subscribed_apps", {}, access_token=HELPDESK_TOKEN, appsecret_proof=PROOF
    )
    assert answer.body == {"success": True}
    status, verdict, _ = _checks(page)["Webhook subscription"]
    assert status == Status.FAILING
    assert verdict.startswith("This app is not subscribed to the Page's webhooks")


# --- what the helpdesk saw ---------------------------------------------------------------


def test_the_last_message(page):
    now = timezone.now()
    assert doctor.activity_check(page, now).status == Status.WARNING
    conversation = Conversation.objects.create(
        page=page, contact=factories.contact(page=page), last_message_at=now
    )
    assert doctor.activity_check(page, now + datetime.timedelta(minutes=5)) == doctor.Check(
        "Last message", Status.OK, "The last message was 5 minutes ago."
    )
    conversation.last_message_at = now - datetime.timedelta(days=10)
    conversation.save()
    check = doctor.activity_check(page, now)
    assert (check.status, check.verdict.split(" (")[0]) == (
        Status.WARNING,
        "The last message was 10 days ago",
    )


def test_how_control_comes_in(page):
    assert doctor.control_check(page).status == Status.UNKNOWN
    page.control_way, page.control_way_at = ControlWay.TAKE, timezone.now()
    assert doctor.control_check(page).status == Status.OK
    assert doctor.control_check(page).verdict.startswith("Take works (last seen ")
    page.control_way, page.control_way_note = ControlWay.NONE, "Meta refused the take: (#10)"
    check = doctor.control_check(page)
    assert check.status == Status.FAILING
    assert check.verdict.endswith(": Meta refused the take: (#10)")
    assert "allow this app to take control" in check.fix


def test_a_paused_outbox_says_why_and_what_to_do(page, settings):
    page.outbox_paused_reason = "the page token expired (code 190/463)"
    page.outbox_paused_code = "190/463"
    page.outbox_paused_at = timezone.now()
    check = doctor.sending_check(page)
    assert check.status == Status.FAILING
    assert check.verdict.endswith(
        ": the page token expired (code 190/463). Replies wait and go out once it resumes "
        f"(a probe every {settings.OUTBOX_PROBE_SECONDS} seconds)."
    )
    assert f"connect_page --page-id {PAGE}" in check.fix


def test_deliveries(db):
    now = timezone.now()
    assert doctor.deliveries_check(now) == doctor.Check(
        "Webhook deliveries", Status.OK, "None failing or waiting; none has arrived yet."
    )
    failed = WebhookDelivery.objects.create(body=b"{}", digest="a", status="failed")
    WebhookDelivery.objects.create(body=b"{}", digest="b", status="received")
    WebhookDelivery.objects.filter(digest="b").update(
        received_at=now - datetime.timedelta(minutes=5)
    )
    check = doctor.deliveries_check(now)
    assert check.status == Status.FAILING
    assert check.verdict.startswith(
        "1 failed in the last 24 hours (some or all of their events); 1 waiting for more "
        "than 2 minutes; the last arrived "
    )
    failed.delete()


def test_the_version_check(settings):
    today = datetime.date(2026, 12, 1)
    settings.GRAPH_API_VERSION = "v23.0"
    assert doctor.version_check(today).status == Status.OK
    settings.GRAPH_API_VERSION = "v21.0"
    check = doctor.version_check(today)
    assert (check.status, check.verdict) == (
        Status.WARNING,
        "GRAPH_API_VERSION is v21.0. v21.0 ends on 21 Jan 2027, in 51 days. Move "
        "GRAPH_API_VERSION to v27.0 before then.",
    )


# --- the page in admin -------------------------------------------------------------------


def _staff(*perms: str) -> User:
    user = User.objects.create_user("lead", password="x", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_the_page_lists_every_check_in_words(client, page, admin_user):
    client.force_login(admin_user)
    response = client.get("/admin/doctor/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("Page token", "Webhook subscription", "Last message", "How control comes in",
                 "Sending", "Graph API version", "Webhook deliveries", "Database", "Redis",
                 "Channel layer", "Celery workers", "Celery beat"):  # fmt: skip
        assert f'data-check="{name}"' in html, name
    assert HELPDESK_TOKEN not in html and HELPDESK_SECRET not in html
    # the index and the page list link to it
    assert 'href="/admin/doctor/"' in client.get("/admin/").content.decode()
    assert (
        f'href="/admin/doctor/?page={page.pk}"'
        in client.get("/admin/webhooks/page/").content.decode()
    )


def test_who_may_see_it_and_who_may_fix(client, page, emulator):
    _subscribe(emulator, ["messages"])
    user = _staff()
    client.force_login(user)
    assert client.get("/admin/doctor/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_page"))
    user = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    html = client.get("/admin/doctor/").content.decode()
    assert 'value="subscribe"' not in html  # no button without the change permission
    response = client.post("/admin/doctor/", {"page": page.pk, "action": "subscribe"})
    assert response.status_code == 403
    assert _our_fields(emulator) == ["messages"]


def test_the_subscribe_button(client, page, emulator, admin_user):
    _subscribe(emulator, ["messages"])
    client.force_login(admin_user)
    assert 'value="subscribe"' in client.get("/admin/doctor/").content.decode()
    response = client.post("/admin/doctor/", {"page": page.pk, "action": "subscribe"})
    assert (response.status_code, response["Location"]) == (
        302,
        f"/admin/doctor/?page={page.pk}#page-{page.pk}",
    )
    assert sorted(_our_fields(emulator)) == sorted(ALL_FIELDS)
    html = client.get(response["Location"]).content.decode()
    assert f"Subscribed to {page.name} with messages, standby" in html


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"page": "999999", "action": "subscribe"}, 404),
        ({"page": "abc", "action": "subscribe"}, 404),
        ({"action": "subscribe"}, 404),
    ],
)
def test_bad_input_changes_nothing(client, page, emulator, admin_user, data, status):
    _subscribe(emulator, ["messages"])
    client.force_login(admin_user)
    assert client.post("/admin/doctor/", data).status_code == status
    assert client.get("/admin/doctor/?page=abc").status_code == 404
    assert _our_fields(emulator) == ["messages"]


def test_an_unknown_action_changes_nothing(client, page, emulator, admin_user):
    _subscribe(emulator, ["messages"])
    client.force_login(admin_user)
    response = client.post(
        "/admin/doctor/", {"page": page.pk, "action": "unsubscribe"}, follow=True
    )
    assert "Unknown action: nothing was changed." in response.content.decode()
    assert _our_fields(emulator) == ["messages"]
