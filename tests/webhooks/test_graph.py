"""The Graph client against the loopback fake: requests, error classification, the record."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import timedelta

import pytest

from tests.support import payloads
from tests.support.fakegraph import Scripted, graph_error
from webhooks import graph
from webhooks.graph import GraphError
from webhooks.models import GraphCall

TOKEN = "page-token-secret"  # the `page` fixture's token
PSID = payloads.PSID


def _proof(token: str = TOKEN) -> str:
    return hmac.new(payloads.APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()


def _header(call, name: str) -> str | None:
    return {k.lower(): v for k, v in call.headers.items()}.get(name.lower())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CALLS = {
    "send_text": lambda page: graph.send_text(
        page, key="k-send", psid=PSID, text="hi", metadata="helpdesk"
    ),
    "sender_action": lambda page: graph.sender_action(page, psid=PSID, action="typing_on"),
    "pass_thread_control": lambda page: graph.pass_thread_control(
        page, key="k-pass", psid=PSID, target_app_id=payloads.BOT_APP_ID, metadata="m"
    ),
    "request_thread_control": lambda page: graph.request_thread_control(
        page, key="k-request", psid=PSID, metadata="m"
    ),
    "release_thread_control": lambda page: graph.release_thread_control(
        page, key="k-release", psid=PSID, metadata="m"
    ),
    "thread_owner": lambda page: graph.thread_owner(page, psid=PSID),
    "user_profile": lambda page: graph.user_profile(page, psid=PSID),
}


# --- Every request: proof in the query, token only in the header -----------------


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_call_carries_appsecret_proof_and_bearer_token_never_in_url(page, fake_graph, name):
    CALLS[name](page)

    assert len(fake_graph.calls) == 1
    call = fake_graph.calls[0]
    assert call.query["appsecret_proof"] == _proof()
    assert _header(call, "Authorization") == f"Bearer {TOKEN}"
    assert TOKEN not in call.path
    assert all(TOKEN not in k and TOKEN not in v for k, v in call.query.items())
    assert "access_token" not in call.query
    assert TOKEN not in json.dumps(call.body)


# --- Request bodies and answers ---------------------------------------------------


def test_send_text_posts_exactly_the_message_and_returns_its_mid(page, fake_graph):
    mid = graph.send_text(page, key="msg:1", psid=PSID, text="Hello", metadata="helpdesk:1")

    assert mid == "m_fake_1"
    [call] = fake_graph.calls
    assert (call.method, call.path) == ("POST", "/me/messages")
    assert call.query == {"appsecret_proof": _proof()}
    assert call.body == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hello", "metadata": "helpdesk:1"},
    }


def test_send_text_with_a_tag_adds_the_tag(page, fake_graph):
    graph.send_text(
        page,
        key="msg:2",
        psid=PSID,
        text="Late reply",
        metadata="helpdesk:2",
        messaging_type="MESSAGE_TAG",
        tag="HUMAN_AGENT",
    )

    [call] = fake_graph.calls
    assert call.body == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "message": {"text": "Late reply", "metadata": "helpdesk:2"},
        "tag": "HUMAN_AGENT",
    }


def test_pass_thread_control_body(page, fake_graph):
    result = graph.pass_thread_control(
        page, key="pass:1", psid=PSID, target_app_id=payloads.BOT_APP_ID, metadata="done"
    )

    assert result is None
    [call] = fake_graph.calls
    assert (call.method, call.path) == ("POST", "/me/pass_thread_control")
    assert call.body == {
        "recipient": {"id": PSID},
        "target_app_id": payloads.BOT_APP_ID,
        "metadata": "done",
    }


@pytest.mark.parametrize("name", ["request_thread_control", "release_thread_control"])
def test_request_and_release_thread_control_bodies(page, fake_graph, name):
    getattr(graph, name)(page, key=f"{name}:1", psid=PSID, metadata="why")

    [call] = fake_graph.calls
    assert (call.method, call.path) == ("POST", f"/me/{name}")
    assert call.body == {"recipient": {"id": PSID}, "metadata": "why"}


def test_thread_owner_is_none_when_the_thread_is_idle(page, fake_graph):
    assert graph.thread_owner(page, psid=PSID) == graph.ThreadOwner(idle=True)

    [call] = fake_graph.calls
    assert (call.method, call.path) == ("GET", "/me/thread_owner")
    assert call.query == {"recipient": PSID, "appsecret_proof": _proof()}
    assert call.body == {}


@pytest.mark.parametrize("app_id", [int(payloads.BOT_APP_ID), payloads.BOT_APP_ID])
def test_thread_owner_is_the_app_id_as_a_string(page, fake_graph, app_id):
    fake_graph.fail_next(
        "/me/thread_owner", Scripted(200, {"data": [{"thread_owner": {"app_id": app_id}}]})
    )

    assert graph.thread_owner(page, psid=PSID) == graph.ThreadOwner(
        idle=False, app_id=payloads.BOT_APP_ID
    )


def test_user_profile_asks_only_for_name_and_picture(page, fake_graph):
    fake_graph.profiles[PSID] = {
        "first_name": "Peter",
        "last_name": "Chang",
        "profile_pic": "https://pics.example/p.jpg",
    }

    profile = graph.user_profile(page, psid=PSID)

    assert profile == {
        "first_name": "Peter",
        "last_name": "Chang",
        "profile_pic": "https://pics.example/p.jpg",
    }
    [call] = fake_graph.calls
    assert (call.method, call.path) == ("GET", f"/{PSID}")
    assert call.query == {"fields": "first_name,last_name,profile_pic", "appsecret_proof": _proof()}


# --- Classification ---------------------------------------------------------------


def _send(page, key: str = "msg:x") -> GraphError:
    with pytest.raises(GraphError) as info:
        graph.send_text(page, key=key, psid=PSID, text="hi", metadata="m")
    return info.value


@pytest.mark.parametrize("code", [1, 2, 4, 17, 32, 613, 1200])
def test_transient_codes_are_retryable_and_leave_the_call_pending(page, fake_graph, code):
    fake_graph.fail_next("/me/messages", graph_error(code, message="try later"))

    error = _send(page)

    assert error.retryable is True
    assert (error.code, error.http_status) == (code, 400)
    assert (error.not_owner, error.window_closed) == (False, False)
    record = GraphCall.objects.get()
    assert (record.key, record.kind, record.status, record.attempts) == (
        "msg:x",
        "send_message",
        GraphCall.Status.PENDING,
        1,
    )
    assert record.last_error == error.describe()
    assert f"(code {code})" in record.last_error
    assert len(fake_graph.calls) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("body", [{}, None])
def test_http_5xx_without_an_error_body_is_retryable(page, fake_graph, status, body):
    fake_graph.fail_next("/me/messages", Scripted(status, body))

    error = _send(page)

    assert error.retryable is True
    assert (error.code, error.subcode, error.http_status) == (None, None, status)
    assert f"HTTP {status}" in error.describe()
    assert GraphCall.objects.get().status == GraphCall.Status.PENDING


def test_a_terminal_code_is_terminal_even_with_http_500(page, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(100, status=500))

    error = _send(page)

    assert error.retryable is False
    assert GraphCall.objects.get().status == GraphCall.Status.FAILED


def test_not_owner_is_terminal(page, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(10, 2018300, message="(#10) not owner"))

    error = _send(page)

    assert (error.retryable, error.not_owner, error.window_closed) == (False, True, False)
    assert (error.code, error.subcode) == (10, 2018300)
    assert "not the thread owner" in error.describe()
    assert "(code 10/2018300)" in error.describe()
    record = GraphCall.objects.get()
    assert (record.status, record.attempts) == (GraphCall.Status.FAILED, 1)
    assert record.last_error == error.describe()


def test_window_closed_is_terminal(page, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(10, 2018278, message="(#10) outside window"))

    error = _send(page)

    assert (error.retryable, error.not_owner, error.window_closed) == (False, False, True)
    assert "messaging window is closed" in error.describe()
    assert "(code 10/2018278)" in error.describe()
    assert GraphCall.objects.get().status == GraphCall.Status.FAILED


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (100, "Meta rejected a parameter"),
        (190, "the Page access token is invalid or expired"),
        (200, "Meta refused the action"),
        (551, "this person isn't available right now"),
    ],
)
def test_terminal_codes_fail_at_once_in_words(page, fake_graph, code, words):
    fake_graph.fail_next("/me/messages", graph_error(code, message="Meta says no"))

    error = _send(page)

    assert error.retryable is False
    assert (error.not_owner, error.window_closed) == (False, False)
    described = error.describe()
    assert described.startswith(words)
    assert f"(code {code})" in described
    assert described.endswith(": Meta says no")
    assert TOKEN not in described
    record = GraphCall.objects.get()
    assert (record.status, record.attempts, record.last_error) == (
        GraphCall.Status.FAILED,
        1,
        described,
    )
    assert record.response is None
    assert len(fake_graph.calls) == 1


def test_a_timeout_is_retryable_and_says_it_timed_out(page, fake_graph, settings):
    settings.GRAPH_API_TIMEOUT_SECONDS = 0.3
    fake_graph.fail_next("/me/messages", Scripted(200, {"message_id": "m_late"}, delay=2))

    error = _send(page)

    assert (error.retryable, error.uncertain) == (True, True)
    assert error.describe() == "the Graph API did not answer in time"
    record = GraphCall.objects.get()
    assert record.status == GraphCall.Status.PENDING
    assert record.last_error == "the Graph API did not answer in time"


def test_connection_refused_is_retryable(page, settings):
    settings.GRAPH_API_URL = f"http://127.0.0.1:{_closed_port()}/v23.0"

    error = _send(page)

    assert error.retryable is True
    assert error.code is None
    assert "could not be reached" in error.describe()
    assert TOKEN not in error.describe()
    record = GraphCall.objects.get()
    assert (record.status, record.attempts) == (GraphCall.Status.PENDING, 1)
    assert TOKEN not in record.last_error


def test_describe_never_contains_the_token_even_when_meta_echoes_it(page, fake_graph, caplog):
    fake_graph.fail_next(
        "/me/messages", graph_error(190, message=f"Malformed access token {TOKEN}")
    )

    error = _send(page)

    assert TOKEN not in error.describe()
    assert TOKEN not in str(error)
    assert TOKEN not in GraphCall.objects.get().last_error
    assert TOKEN not in caplog.text


# --- The persisted record -----------------------------------------------------------


def test_a_successful_call_is_recorded_with_its_answer(page, fake_graph):
    graph.send_text(page, key="msg:ok", psid=PSID, text="hi", metadata="m")

    record = GraphCall.objects.get()
    assert (record.key, record.kind, record.page, record.psid) == (
        "msg:ok",
        "send_message",
        page,
        PSID,
    )
    assert (record.status, record.attempts, record.last_error) == (
        GraphCall.Status.SUCCEEDED,
        1,
        "",
    )
    assert record.response == {"recipient_id": PSID, "message_id": "m_fake_1"}


def test_a_succeeded_key_is_not_sent_again_and_returns_the_stored_answer(page, fake_graph):
    first = graph.send_text(page, key="msg:once", psid=PSID, text="hi", metadata="m")

    second = graph.send_text(page, key="msg:once", psid=PSID, text="hi", metadata="m")

    assert first == second == "m_fake_1"
    assert len(fake_graph.calls) == 1
    record = GraphCall.objects.get()
    assert (record.status, record.attempts) == (GraphCall.Status.SUCCEEDED, 1)


def test_a_pending_key_is_tried_again_and_counts_each_attempt(page, fake_graph):
    fake_graph.fail_next("/me/messages", graph_error(2), times=2)

    _send(page, key="msg:retry")
    _send(page, key="msg:retry")
    mid = graph.send_text(page, key="msg:retry", psid=PSID, text="hi", metadata="m")

    assert mid == "m_fake_1"
    assert len(fake_graph.calls) == 3
    record = GraphCall.objects.get()
    assert (record.status, record.attempts, record.last_error) == (
        GraphCall.Status.SUCCEEDED,
        3,
        "",
    )


def test_calls_without_a_key_get_distinct_rows(page, fake_graph):
    graph.thread_owner(page, psid=PSID)
    graph.thread_owner(page, psid=PSID)

    records = list(GraphCall.objects.order_by("pk"))
    assert len(records) == 2
    assert records[0].key != records[1].key
    assert all(r.key.startswith("thread_owner:") for r in records)
    assert [(r.kind, r.status, r.attempts) for r in records] == [
        ("thread_owner", GraphCall.Status.SUCCEEDED, 1),
        ("thread_owner", GraphCall.Status.SUCCEEDED, 1),
    ]
    assert len(fake_graph.calls) == 2


# --- per-page rate limit ----------------------------------------------------------------


class FakeClock:
    """time.time and time.sleep for the limiter: sleeping moves the clock (and
    time.monotonic, which times a call for its metric)."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_calls_to_one_page_stay_under_the_rate_limit_across_windows(
    page, fake_graph, settings, monkeypatch
):
    settings.GRAPH_RATE_LIMIT_PER_SECOND = 2
    clock = FakeClock(1_000.25)
    monkeypatch.setattr(graph, "time", clock)
    windows = []
    answer = fake_graph.answer

    def answer_recording_the_window(call):
        # Recorded before the reply leaves: an `on_call` hook runs after it, racing the
        # client's next call (and its clock), and lost that race now and then.
        windows.append(int(clock.now))
        return answer(call)

    monkeypatch.setattr(fake_graph, "answer", answer_recording_the_window)

    for n in range(5):
        graph.send_text(page, key=f"k-{n}", psid=PSID, text="hi", metadata="m")

    assert windows == [1000, 1000, 1001, 1001, 1002]  # two a second, none dropped
    assert clock.slept == [0.75, 1.0]


def test_a_page_still_over_the_limit_gets_a_retryable_613(page, fake_graph, settings, monkeypatch):
    settings.GRAPH_RATE_LIMIT_PER_SECOND = 1
    clock = FakeClock(1_000.0)
    clock.sleep = lambda seconds: None  # the windows stay full: other workers fill them
    monkeypatch.setattr(graph, "time", clock)
    graph.send_text(page, key="k-first", psid=PSID, text="hi", metadata="m")

    with pytest.raises(GraphError) as info:
        graph.send_text(page, key="k-second", psid=PSID, text="hi", metadata="m")

    assert (info.value.code, info.value.retryable) == (613, True)
    assert len(fake_graph.sends()) == 1
    assert GraphCall.objects.get(key="k-second").status == GraphCall.Status.PENDING


def test_a_connection_dropped_after_the_request_went_out_is_an_unknown_outcome(page, settings):
    """The request reached the server, which closed without answering (Meta may have acted
    on it): a handover call made so is `uncertain`, never retried blindly."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        settings.GRAPH_API_URL = f"http://127.0.0.1:{server.getsockname()[1]}/v23.0"
        received: list[bytes] = []

        def hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(65536))

        thread = threading.Thread(target=hang_up)
        thread.start()
        with pytest.raises(GraphError) as info:
            graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")
        thread.join()

    error = info.value
    assert received and received[0].startswith(b"POST /v23.0/me/take_thread_control")
    assert (error.retryable, error.uncertain, error.unknown_outcome) == (True, True, True)
    assert error.describe() == "the connection dropped before the Graph API answered"
    record = GraphCall.objects.get()
    assert (record.status, record.attempts) == (GraphCall.Status.UNCERTAIN, 1)
    with pytest.raises(GraphError) as again:
        graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")
    assert again.value.uncertain is True
    assert GraphCall.objects.get().attempts == 1  # not made again before thread_owner


def test_connection_refused_leaves_a_handover_call_pending_not_uncertain(page, settings):
    settings.GRAPH_API_URL = f"http://127.0.0.1:{_closed_port()}/v23.0"

    with pytest.raises(GraphError) as info:
        graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")

    assert (info.value.retryable, info.value.uncertain) == (True, False)
    assert GraphCall.objects.get().status == GraphCall.Status.PENDING


def test_a_call_in_flight_is_not_made_again_by_another_worker(page, fake_graph):
    """A re-driven copy of a task whose call is still in flight sends nothing: its retry
    reads the first call's outcome (CI once saw two takes for one intent this way)."""
    GraphCall.objects.create(
        key="take:1", kind="take_thread_control", page=page, status="in_flight", attempts=1
    )

    with pytest.raises(GraphError) as info:
        graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")

    assert (info.value.retryable, info.value.uncertain) == (True, False)
    assert info.value.describe() == graph.IN_FLIGHT
    assert fake_graph.calls == []
    assert GraphCall.objects.values_list("status", "attempts").get() == ("in_flight", 1)


def test_a_call_in_flight_says_when_it_is_over_for_the_other_worker_to_ask_again(
    page, fake_graph, settings
):
    """Until the call is over (answered, or its worker counted as stopped) the other
    worker waits; then its retry reads the outcome, or finds the call uncertain."""
    settings.GRAPH_API_TIMEOUT_SECONDS = 5
    record = GraphCall.objects.create(
        key="take:1", kind="take_thread_control", page=page, status="in_flight", attempts=1
    )
    GraphCall.objects.filter(pk=record.pk).update(
        updated_at=record.updated_at - timedelta(seconds=20)
    )
    longest = 5 + graph.IN_FLIGHT_MARGIN_SECONDS

    with pytest.raises(GraphError) as info:
        graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")

    assert info.value.retry_in is not None
    assert longest - 20 < info.value.retry_in <= longest - 20 + 1
    assert fake_graph.calls == []


def test_a_handover_call_whose_worker_died_in_flight_counts_as_uncertain(
    page, fake_graph, settings
):
    settings.GRAPH_API_TIMEOUT_SECONDS = 1
    record = GraphCall.objects.create(
        key="take:1", kind="take_thread_control", page=page, status="in_flight", attempts=1
    )
    long_ago = record.updated_at - timedelta(seconds=1 + graph.IN_FLIGHT_MARGIN_SECONDS + 1)
    GraphCall.objects.filter(pk=record.pk).update(updated_at=long_ago)

    with pytest.raises(GraphError) as info:
        graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m")
    assert info.value.uncertain is True
    assert fake_graph.calls == []
    assert GraphCall.objects.values_list("status", "attempts").get() == ("uncertain", 1)

    # Once thread_owner was asked, the call may be made again.
    graph.take_thread_control(page, key="take:1", psid=PSID, metadata="m", checked=True)
    assert len(fake_graph.calls) == 1
    assert GraphCall.objects.values_list("status", "attempts").get() == ("succeeded", 2)
