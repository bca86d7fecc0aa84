"""Schema-based fuzzing of the agent API from its own OpenAPI document (schemathesis).

Every operation of `/api/v1/openapi.json`, so a new one is fuzzed without a change here,
called in-process through Django's WSGI handler (no network), as an agent with tickets
in every state. Bounded (tens of examples per operation, plus schemathesis' coverage
cases) and seeded: see tests/fuzz/budget.py.

Path parameters are what the document allows, and half of the time the id of a real
row (`REAL_IDS`), so that the fuzzer gets past "404 not found".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import settings
from hypothesis import strategies as st
from schemathesis import checks

from agents.models import ControlState, Message, Team, Ticket
from tests.fuzz.budget import DB_HEALTH_CHECKS, examples
from tests.support import factories

APP = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APP)

# Fixed primary keys, far above what a test's sequences hand out, so that the hook
# below can name them before the rows exist.
REAL_IDS = {
    "ticket_id": [910_001, 910_002, 910_003, 910_004, 910_005],
    "message_id": [920_001, 920_002, 920_003, 920_004],
    "agent_id": [930_001, 930_002, 930_003],
}
EXAMPLES = examples(25)

# "Schema-valid input is accepted" does not hold for this API by design: a valid reply
# to a ticket whose window is closed is refused (409), an empty reply text too (400).
# Undocumented status codes are checked on their own below.
NOT_CHECKED = [checks.positive_data_acceptance, checks.status_code_conformance]


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> Any:
    return _sometimes_real(path_parameters)


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    return _sometimes_real(body)


def _sometimes_real(values: Any) -> Any:
    """`values`, or with the ids it holds replaced by real ones. Only integers are
    replaced: a value generated to be invalid (a string, null) stays invalid."""
    if not isinstance(values, dict):
        return st.just(values)
    known = [
        name
        for name, value in values.items()
        if name in REAL_IDS and isinstance(value, int) and not isinstance(value, bool)
    ]
    if not known:
        return st.just(values)
    real = st.fixed_dictionaries({name: st.sampled_from(REAL_IDS[name]) for name in known})
    return st.just(values) | real.map(lambda ids: {**values, **ids})


@pytest.fixture
def agent_token(db, fake_graph, settings) -> Iterator[str]:
    """An agent's token, with tickets in every state on two pages (one of another team)
    and messages of every kind, under the ids of REAL_IDS."""
    # The limits have their own tests (tests/agents/api/test_limits.py); here they would
    # turn the fuzzer's requests and schemathesis' bad-token probes into 429s.
    settings.API_RATE_LIMIT_PER_MINUTE = 10**6
    settings.API_TOKEN_FAILURES_PER_ADDRESS = 10**6
    ana, bo, cy = (
        factories.agent(name, id=pk)
        for name, pk in zip(("ana", "bo", "cy"), REAL_IDS["agent_id"], strict=True)
    )
    page = factories.page()
    other = factories.page(page_id="1000000000000077", name="Billing", access_token="t2")
    team = Team.objects.create(name="billing")
    team.pages.add(other)
    team.members.add(cy)
    waiting, open_, closed, taken, hidden = REAL_IDS["ticket_id"]
    tickets = [
        factories.ticket(page=page, psid="3000000000000101", id=waiting),
        factories.ticket(
            page=page, psid="3000000000000102", id=open_, status=Ticket.Status.OPEN, assignee=ana
        ),
        factories.ticket(
            page=page, psid="3000000000000103", id=closed, status=Ticket.Status.CLOSED
        ),
        factories.ticket(
            conversation=factories.conversation(
                page=page, psid="3000000000000104", control_state=ControlState.TAKEN
            ),
            id=taken,
            status=Ticket.Status.OPEN,
            assignee=bo,
        ),
        factories.ticket(page=other, psid="3000000000000105", id=hidden),
    ]
    customer, failed, context, hidden_failed = REAL_IDS["message_id"]
    factories.message(ticket=tickets[1], text="where is my parcel?", id=customer)
    factories.message(
        ticket=tickets[1],
        text="let me check",
        author_kind=Message.Author.AGENT,
        status=Message.Status.FAILED,
        error="the Graph API could not be reached",
        author=ana,
        id=failed,
    )
    factories.message(conversation=tickets[0].conversation, text="hi bot", id=context)
    factories.message(
        ticket=tickets[4],
        text="billing question",
        author_kind=Message.Author.AGENT,
        status=Message.Status.FAILED,
        id=hidden_failed,
    )
    # Django's test client does the same: the handler's signals would close the
    # connection, and with it the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield ana.api_token
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=EXAMPLES, suppress_health_check=DB_HEALTH_CHECKS)
def test_no_operation_fails_or_answers_outside_its_schema(case, agent_token):
    """No 5xx; documented answers match their schema and content type; requests without
    valid credentials are refused; invalid input is refused with a 4xx."""
    case.call_and_validate(
        headers={"Authorization": f"Bearer {agent_token}"}, excluded_checks=NOT_CHECKED
    )


def _takes_input(context: Any) -> bool:
    definition = context.operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


@schema.include(_takes_input).parametrize()
@settings(max_examples=EXAMPLES, suppress_health_check=DB_HEALTH_CHECKS)
def test_operations_that_take_input_answer_only_documented_statuses(case, agent_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {agent_token}"},
        checks=[checks.status_code_conformance],
    )


@schema.exclude(_takes_input).parametrize()
@settings(max_examples=EXAMPLES, suppress_health_check=DB_HEALTH_CHECKS)
def test_operations_without_input_answer_only_documented_statuses(case, agent_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {agent_token}"},
        checks=[checks.status_code_conformance],
    )
