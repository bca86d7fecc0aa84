"""An agent's reply does not wait behind a backlog of webhook processing (issue 12,
point 4): the webhooks' tasks have a queue of their own, and a worker takes from both
queues in turn (helpdesk.settings: CELERY_TASK_QUEUES, CELERY_TASK_ROUTES).

Real processes: Redis, Daphne, the Celery worker and beat, the recording Graph fake.
The backlog is thousands of processing tasks published at once (deliveries for a page
this helpdesk does not know: each is applied, cheaply, with no task of its own after).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import psycopg
import pytest
import requests

from tests.support import payloads
from tests.support.fakegraph import Call
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, waiting_ticket_claimed

pytestmark = pytest.mark.e2e

BACKLOG = 3000
UNKNOWN_PAGE = "9000000000000009"


def _unprocessed_counter(stack: Stack) -> Callable[[], int]:
    url = stack.env["DATABASE_URL"]
    sql = "SELECT count(*) FROM webhooks_webhookdelivery WHERE processed_at IS NULL"
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return lambda: sqlite3.connect(path, timeout=30).execute(sql).fetchone()[0]

    def count() -> int:
        with psycopg.connect(url) as db:
            return db.execute(sql).fetchone()[0]

    return count


# Run by the stack's Python (manage.py shell): stores the backlog as intake stores it
# and publishes a task per delivery, as a re-drive of a long outage would.
BACKLOG_SCRIPT = f"""
import hashlib
from tests.support import payloads
from webhooks import tasks
from webhooks.models import WebhookDelivery
rows = []
page = "{UNKNOWN_PAGE}"
for n in range({BACKLOG}):
    event = payloads.user_message(f"backlog {{n}}", ts=1700000000000 + n, page_id=page)
    body = payloads.body_bytes(payloads.delivery(event, channel="standby", page_id=page))
    rows.append(WebhookDelivery(digest=hashlib.sha256(body).hexdigest(), body=body))
ids = [row.pk for row in WebhookDelivery.objects.bulk_create(rows)]
for pk in ids:
    tasks.delivery_process.delay(pk)
print("published", len(ids))
"""


def test_a_reply_is_sent_before_a_backlog_of_webhook_tasks_is_done(stack):
    fake, clock = stack.fake, Clock()
    token = stack.agent_token("ana")
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{stack.base_url}/api/v1"
    stack.post_webhook(payloads.user_message("hello", ts=clock()), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock()))
    _, url = waiting_ticket_claimed(api, headers)
    unprocessed = _unprocessed_counter(stack)
    left_when_sent: list[int] = []

    def on_send(call: Call) -> None:
        if call.path == "/me/messages" and (call.body.get("message") or {}).get("text") == "on it":
            left_when_sent.append(unprocessed())

    fake.on_call.append(on_send)

    assert f"published {BACKLOG}" in stack.manage("shell", "-c", BACKLOG_SCRIPT)
    response = requests.post(f"{url}/reply", json={"text": "on it"}, headers=headers, timeout=10)
    assert response.status_code == 201, response.text

    eventually(lambda: left_when_sent, timeout=120, what="the reply sent")
    # Sent while much of the backlog still waited (in one queue, behind all of it, the
    # reply would have gone out at the backlog's end, with at most a task per thread
    # still running) ...
    assert left_when_sent[0] > 100, left_when_sent
    # ... and the backlog is processed all the same, each delivery once.
    eventually(lambda: unprocessed() == 0, timeout=300, what="the backlog processed")
    assert len(fake.calls_to("/me/messages")) == 1
