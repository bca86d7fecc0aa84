"""`/metrics` on a real deployment (Daphne, a Celery worker, beat, Redis): the counts of
every process add up to what the database recorded, and only a token reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpdesk.localservices import free_port
from tests.support import payloads
from tests.support.polling import eventually
from tests.support.stack import Clock, Stack, daphne_start, fake_graph_stack, waiting_ticket_claimed

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-e2e"

# What the database recorded, grouped as the metrics are (from a process of the stack).
RECORDED = """
import json
from django.db.models import Count
from agents.models import ControlTransition, Ticket
from webhooks.models import GraphCall, WebhookDelivery, WebhookEvent
print(json.dumps({
    "events": [[k, o, n] for k, o, n in WebhookEvent.objects.values_list("kind", "outcome")
               .annotate(n=Count("pk")).values_list("kind", "outcome", "n")],
    "calls": [[k, n] for k, n in GraphCall.objects.filter(status="succeeded")
              .values_list("kind").annotate(n=Count("pk")).values_list("kind", "n")],
    "handovers": [[f, t, c, n] for f, t, c, n in ControlTransition.objects
                  .values_list("from_state", "to_state", "cause").annotate(n=Count("pk"))
                  .values_list("from_state", "to_state", "cause", "n")],
    "processed": WebhookDelivery.objects.filter(status="processed").count(),
    "tickets": {s: Ticket.objects.filter(status=s).count() for s in ("waiting", "open")},
}))
"""


@pytest.fixture
def stack(tmp_path) -> Iterator[Stack]:
    with fake_graph_stack(tmp_path, METRICS_TOKEN=TOKEN) as stack:
        yield stack


def _scrape(base_url: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{base_url}/metrics", headers=headers, timeout=15)


def _samples(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = _scrape(stack.base_url)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _named(samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


def test_the_counts_of_every_process_add_up_to_what_was_recorded(stack):
    clock = Clock()
    token = stack.agent_token("ana")
    api = f"{stack.base_url}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    # the handover story: a message while the bot talks, the bot passes, a reply
    stack.post_webhook(payloads.user_message("help me", ts=clock()), channel="standby")
    stack.post_webhook(payloads.pass_control(ts=clock(), metadata="a human"))
    _, url = waiting_ticket_claimed(api, headers, timeout=30)
    response = requests.post(f"{url}/reply", json={"text": "On it."}, headers=headers, timeout=10)
    assert response.status_code == 201, response.text
    stack.fake.wait_for("/me/messages")
    # and one forged delivery, refused
    forged = requests.post(
        f"{stack.base_url}/webhooks/messenger/",
        data=b'{"object": "page", "entry": []}',
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"},
        timeout=10,
    )
    assert forged.status_code == 403

    def settled():
        samples = _samples(stack)
        sent = _named(samples, "helpdesk_graph_calls_total").get(
            (("kind", "send_message"), ("outcome", "succeeded"))
        )
        return samples if sent == 1 else None

    samples = eventually(settled, timeout=60, what="the reply's Graph call counted")
    recorded = json.loads(stack.manage("shell", "-c", RECORDED).splitlines()[-1])

    assert _named(samples, "helpdesk_webhooks_received_total") == {(): 2.0}
    assert _named(samples, "helpdesk_webhooks_rejected_total") == {(("reason", "signature"),): 1.0}
    assert _named(samples, "helpdesk_events_applied_total") == {
        (("kind", kind), ("outcome", outcome)): float(n) for kind, outcome, n in recorded["events"]
    }
    succeeded = {
        labels: value
        for labels, value in _named(samples, "helpdesk_graph_calls_total").items()
        if ("outcome", "succeeded") in labels
    }
    assert succeeded == {
        (("kind", kind), ("outcome", "succeeded")): float(n) for kind, n in recorded["calls"]
    }
    assert _named(samples, "helpdesk_handovers_total") == {
        (("cause", c), ("from_state", f), ("to_state", t)): float(n)
        for f, t, c, n in recorded["handovers"]
    }
    assert (("cause", "webhook"), ("from_state", "bot"), ("to_state", "agent")) in _named(
        samples, "helpdesk_handovers_total"
    )
    # histograms: one observation per processed delivery, per Graph call
    assert _named(samples, "helpdesk_webhook_lag_seconds_count") == {
        (): float(recorded["processed"])
    }
    calls = sum(_named(samples, "helpdesk_graph_calls_total").values())
    assert sum(_named(samples, "helpdesk_graph_call_seconds_count").values()) == calls
    # gauges, from the database at scrape time
    assert _named(samples, "helpdesk_tickets") == {
        (("status", s),): float(n) for s, n in recorded["tickets"].items()
    }
    assert recorded["tickets"] == {"waiting": 0, "open": 1}
    assert _named(samples, "helpdesk_outbox_queue") == {
        (("status", "pending"),): 0.0,
        (("status", "sending"),): 0.0,
        (("status", "confirming"),): 0.0,
    }


def test_only_the_token_reads_them(stack):
    assert _scrape(stack.base_url, None).status_code == 401
    response = _scrape(stack.base_url, "wrong")
    assert (response.status_code, response.headers["WWW-Authenticate"]) == (
        401,
        'Bearer realm="metrics"',
    )
    assert "helpdesk_" not in response.text
    assert requests.post(f"{stack.base_url}/metrics", timeout=10).status_code == 405


def test_without_a_token_or_network_they_are_off(stack):
    port = free_port()
    stack.env = {**stack.env, "METRICS_TOKEN": ""}
    daphne_start(stack, "daphne-nometrics", port)
    response = _scrape(f"http://127.0.0.1:{port}")
    assert (response.status_code, response.text) == (404, "metrics are off: set METRICS_TOKEN\n")


def test_a_network_setting_lets_a_scraper_in_without_a_token(stack):
    port = free_port()
    stack.env = {**stack.env, "METRICS_TOKEN": "", "METRICS_ALLOWED_NETWORKS": "127.0.0.0/8"}
    daphne_start(stack, "daphne-network", port)
    response = _scrape(f"http://127.0.0.1:{port}", None)
    assert response.status_code == 200
    assert "helpdesk_webhooks_received_total" in response.text
