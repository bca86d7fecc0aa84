"""The Graph API client: small typed functions, one typed error, a persisted record per call.

Every call carries `appsecret_proof`, an explicit timeout, and the Page token in the
`Authorization` header (never in a URL, so it cannot leak into an error message or a
log line). Every call is recorded in a `GraphCall` row under a key that says what it is
for; a call whose row already succeeded is not made again, it returns the stored answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import requests
import urllib3
from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils.timezone import now

from helpdesk import metrics
from webhooks.crypto import TokenDecryptionError, token_unseal
from webhooks.models import GraphCall, Page

logger = logging.getLogger(__name__)

# Meta's transient error codes (messenger-platform.md §4.5): retry with backoff.
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 1200})
SUBCODE_NOT_OWNER = 2018300
SUBCODES_WINDOW_CLOSED = frozenset({2018278, 2018065, 2534022, 1545041})
SUBCODE_PAGE_RESTRICTED = 1893063
SUBCODE_NO_SUCH_USER = 2018001
SUBCODE_OWNER_NOT_VISIBLE = 2018234
CODE_TAKE_UNSUPPORTED = 27  # "(#27) Take thread control is not supported when CR ..."
CODE_PERMISSION_MISSING = 230  # "(#230) Requires pages_messaging permission ..."
HANDOVER_DISABLED_TEXT = "handover protocol apis disabled"
# Thread-control calls: one that timed out or got a 5xx may have taken effect, and is
# never made again before `thread_owner` was asked (messenger-platform.md §9.3).
# Beyond the timeout, what a call in flight may still take (the rate window's waits).
IN_FLIGHT_MARGIN_SECONDS = 30

HANDOVER_KINDS = frozenset(
    {
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
        "release_thread_control",
        "extend_thread_control",
    }
)

_DESCRIPTIONS = {
    10: "Meta refused the action (permission)",
    100: "Meta rejected a parameter",
    190: "the Page access token is invalid or expired",
    200: "Meta refused the action (permissions error)",
    551: "this person isn't available right now",
    613: "Meta's rate limit was reached",
}


@dataclass(frozen=True)
class FileUpload:
    """A file to send as multipart `filedata`: its name and type as Meta is told them,
    and how to open it (the bytes are read while the request goes out, never kept)."""

    name: str
    content_type: str
    open: Callable[[], IO[bytes]]


@dataclass
class GraphError(Exception):
    """A failed Graph call. `retryable` says whether trying again can help."""

    message: str
    code: int | None = None
    subcode: int | None = None
    http_status: int | None = None
    retryable: bool = False
    # The request may have reached Meta (the answer was lost): a retry could repeat it.
    uncertain: bool = False
    # Another worker is making this very call (IN_FLIGHT): its task applies the outcome.
    # Ask again in so many seconds, when that call is over or its worker counts as
    # stopped; never give up on it meanwhile, as it may take effect.
    retry_in: float | None = None

    def __str__(self) -> str:
        return self.describe()

    @property
    def not_owner(self) -> bool:
        return self.subcode == SUBCODE_NOT_OWNER

    @property
    def window_closed(self) -> bool:
        return self.subcode in SUBCODES_WINDOW_CLOSED

    @property
    def unknown_outcome(self) -> bool:
        """The call may have taken effect: no answer in time, or a 5xx."""
        return self.uncertain or (self.http_status is not None and self.http_status >= 500)

    @property
    def page_level(self) -> str:
        """Why no message can go out from this page at all ("" when this error is about
        one message): the token, a missing permission, a restricted page."""
        if self.code == 190:
            return "token"
        if self.code == CODE_PERMISSION_MISSING or (self.code == 200 and self.subcode == 2018028):
            return "permission"
        if self.code == 10 and self.subcode == SUBCODE_PAGE_RESTRICTED:
            return "restricted"
        return ""

    @property
    def handover_refused(self) -> bool:
        """The platform refuses this way of getting control for the page, for good:
        legacy handover calls disabled on a CR page, or take without a CR default app."""
        if self.code == CODE_TAKE_UNSUPPORTED or HANDOVER_DISABLED_TEXT in self.message.lower():
            return True
        if self.retryable or self.unknown_outcome or self.not_owner or self.page_level:
            return False
        # Any other permanent refusal of the call itself (not of the person: 551, or
        # 100/2018001 for a PSID Meta does not know).
        return self.code in (10, 200) or (self.code == 100 and self.subcode is None)

    @property
    def thread_control_refused(self) -> bool:
        """The Send API refused the `thread_control` field (not the message)."""
        return self.code == 100 and "thread_control" in self.message.lower()

    def describe(self) -> str:
        """The failure in words, for agents and admins."""
        if self.not_owner:
            reason = "another app owns this conversation (we are not the thread owner)"
        elif self.window_closed:
            reason = "the messaging window is closed (the user wrote too long ago)"
        elif self.code == 10 and self.subcode == SUBCODE_PAGE_RESTRICTED:
            reason = "the Page is temporarily restricted from sending messages"
        elif self.code == CODE_PERMISSION_MISSING:
            reason = "the app lacks the pages_messaging permission for this Page"
        elif self.code == 100 and self.subcode == SUBCODE_NO_SUCH_USER:
            reason = "Messenger knows no such person for this Page"
        elif self.code == 100 and self.subcode == SUBCODE_OWNER_NOT_VISIBLE:
            reason = "Meta does not tell this app who owns the conversation"
        elif self.code == CODE_TAKE_UNSUPPORTED:
            reason = "taking control needs Conversation Routing with a default app on this Page"
        elif HANDOVER_DISABLED_TEXT in self.message.lower():
            reason = "this Page refuses handover requests (Conversation Routing with a default app)"
        elif self.code is not None:
            reason = _DESCRIPTIONS.get(self.code, "Meta returned an error")
        elif self.uncertain:
            reason = "the Graph API did not answer in time"
        elif self.http_status is not None:
            reason = f"the Graph API answered HTTP {self.http_status}"
        else:
            reason = "the Graph API could not be reached"
        codes = ""
        if self.code is not None:
            codes = f" (code {self.code}" + (f"/{self.subcode}" if self.subcode else "") + ")"
        if self.message in (DROPPED, IN_FLIGHT):
            return self.message
        detail = f": {self.message}" if self.message else ""
        return f"{reason}{codes}{detail}"


def classify(http_status: int, body: Any) -> GraphError:
    """Turn an error answer into a GraphError, keyed on Meta's code, not the HTTP status."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(
            message="unexpected answer",
            http_status=http_status,
            retryable=http_status >= 500 or http_status == 429,
        )
    code = error.get("code")
    subcode = error.get("error_subcode")
    code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    subcode = int(subcode) if isinstance(subcode, int | str) and str(subcode).isdigit() else None
    retryable = code in RETRYABLE_CODES if code is not None else http_status >= 500
    if error.get("is_transient") is True:
        retryable = True
    return GraphError(
        message=str(error.get("message") or "")[:500],
        code=code,
        subcode=subcode,
        http_status=http_status,
        retryable=retryable,
    )


def appsecret_proof(access_token: str) -> str:
    return hmac.new(
        settings.MESSENGER_APP_SECRET.encode(), access_token.encode(), hashlib.sha256
    ).hexdigest()


DROPPED = "the connection dropped before the Graph API answered"


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request could go out (refused, name not
    resolved, no route), as opposed to dropping after it was sent."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


IN_FLIGHT = "the same call is being made by another worker; its outcome comes next"


def _longest_call() -> float:
    """The longest a call can be in flight, in seconds: its timeout and a margin."""
    return settings.GRAPH_API_TIMEOUT_SECONDS + IN_FLIGHT_MARGIN_SECONDS


def _in_flight_for(record: GraphCall) -> float:
    """How much longer a call marked in flight may still be running: when it is 0, it has
    been in flight for longer than any call can take (its worker stopped during it)."""
    ends = record.updated_at + timedelta(seconds=_longest_call())
    return max(0.0, (ends - now()).total_seconds())


# The version Meta answered as, when it is not the pinned one (the pin has ended, and
# Meta answers its calls as the oldest version it still serves), for admins to see.
ANSWERING_VERSION_KEY = "graph:answering-version"


def _note_answering_version(answered_as: str | None) -> None:
    if not answered_as or answered_as == settings.GRAPH_API_VERSION:
        return  # the usual case: nothing to do, no cache call
    try:
        if cache.add(ANSWERING_VERSION_KEY, answered_as, timeout=24 * 3600):
            logger.warning(
                "Meta answers Graph calls as %s, not the pinned GRAPH_API_VERSION %s",
                answered_as,
                settings.GRAPH_API_VERSION,
            )
    except Exception:  # a note for admins must never fail a send
        logger.debug("could not note the Graph API version Meta answered as", exc_info=True)


def answering_version() -> str | None:
    """The version Meta last answered as, if not the pinned one (within a day); None
    also when the cache cannot be asked."""
    try:
        value = cache.get(ANSWERING_VERSION_KEY)
    except Exception:  # noqa: BLE001 -- the doctor says Redis is down on its own line
        return None
    return value if isinstance(value, str) else None


def _in_flight_error(seconds: float) -> GraphError:
    # A second past the point where the call counts as over, whoever made it.
    return GraphError(message=IN_FLIGHT, retryable=True, retry_in=seconds + 1)


def _http(
    page: Page,
    method: str,
    path: str,
    params: dict[str, Any],
    upload: FileUpload | None = None,
) -> dict[str, Any]:
    url = f"{settings.GRAPH_API_URL}/{path.lstrip('/')}"
    # The only place the page token is decrypted: it lives in this call's locals.
    try:
        access_token = token_unseal(page.access_token)
    except TokenDecryptionError as exc:
        raise GraphError(message=f"the page token is unusable: {exc}", retryable=False) from None
    headers = {"Authorization": f"Bearer {access_token}"}
    query = {"appsecret_proof": appsecret_proof(access_token)}
    try:
        if method == "GET":
            response = requests.get(
                url,
                params={**query, **params},
                headers=headers,
                timeout=settings.GRAPH_API_TIMEOUT_SECONDS,
            )
        elif upload is not None:
            # Multipart, as Meta's upload samples: each parameter a JSON form field, the
            # file as `filedata` with its type.
            with upload.open() as stream:
                response = requests.post(
                    url,
                    params=query,
                    data={k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()},
                    files={"filedata": (upload.name, stream, upload.content_type)},
                    headers=headers,
                    timeout=settings.GRAPH_API_TIMEOUT_SECONDS,
                )
        else:
            response = requests.post(
                url,
                params=query,
                json=params,
                headers=headers,
                timeout=settings.GRAPH_API_TIMEOUT_SECONDS,
            )
    except requests.ConnectTimeout:
        raise GraphError(message="timed out connecting", retryable=True) from None
    except requests.Timeout:
        raise GraphError(message="", retryable=True, uncertain=True) from None
    except requests.ConnectionError as exc:
        if _never_sent(exc):
            raise GraphError(message=type(exc).__name__, retryable=True) from None
        # The request went out and the connection dropped before the answer: Meta may
        # have acted on it, exactly as after a timeout.
        raise GraphError(message=DROPPED, retryable=True, uncertain=True) from None
    except requests.RequestException as exc:
        raise GraphError(message=type(exc).__name__, retryable=True) from None
    return _answer(response, {access_token: "[page token]"})


def _answer(response: requests.Response, secrets: dict[str, str]) -> dict[str, Any]:
    """Meta's answer as a JSON object, or the GraphError it says; `secrets` (text: what
    to say instead) are taken out of the error's message, since Meta may quote a token
    back ("Malformed access token …")."""
    _note_answering_version(response.headers.get("facebook-api-version"))
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or (isinstance(body, dict) and "error" in body):
        error = classify(response.status_code, body)
        for secret, instead in secrets.items():
            error.message = error.message.replace(secret, instead)
        raise error
    if not isinstance(body, dict):
        raise GraphError(
            message="the answer was not a JSON object",
            http_status=response.status_code,
            retryable=response.status_code >= 500,
        )
    return body


def _rate_wait(page: Page) -> None:
    """Keep this page's calls under GRAPH_RATE_LIMIT_PER_SECOND, across processes: a
    one-second window counted in the shared cache. Over the limit, wait for the next
    window (twice at most), then raise a retryable 613 for the task to back off. A cache
    that does not answer lets the call through: Meta's own 613 is the backstop."""
    limit = settings.GRAPH_RATE_LIMIT_PER_SECOND
    if not limit:
        return
    for _ in range(3):
        now = time.time()
        key = f"graph-rate:{page.pk}:{int(now)}"
        try:
            cache.add(key, 0, timeout=5)
            count = cache.incr(key)
        except Exception as exc:  # noqa: BLE001 -- the limiter must never stop a call
            logger.warning("graph rate window unavailable (%s)", type(exc).__name__)
            return
        if count <= limit:
            return
        time.sleep(int(now) + 1 - now)
    raise GraphError(
        message=f"more than {limit} calls a second for this page", code=613, retryable=True
    )


def call(
    page: Page,
    *,
    kind: str,
    method: str,
    path: str,
    params: dict[str, Any],
    psid: str = "",
    key: str | None = None,
    checked: bool = False,
    upload: FileUpload | None = None,
) -> dict[str, Any]:
    """Make one Graph call, recorded under `key` (with `upload`, a multipart one).

    Idempotent per key: when the key's call already succeeded its stored answer is
    returned and nothing is sent. Raises GraphError; the row then holds the error,
    `pending` when it may be retried, `failed` when it is terminal. A thread-control
    call (HANDOVER_KINDS) that timed out or got a 5xx is `uncertain`: it is not made
    again under its key (GraphError with `uncertain`, nothing sent) unless the caller
    asked `thread_owner` since and says so (`checked`). While one worker makes a call it
    is `in_flight`: another worker on the same key sends nothing and gets a retryable
    error with `retry_in`, the time left until that call is over (its retry reads the
    outcome); a thread-control call in flight for longer than any call takes (its worker
    died) counts as `uncertain`.
    """
    record, _ = GraphCall.objects.get_or_create(
        key=key or f"{kind}:{uuid.uuid4().hex}",
        defaults={"kind": kind, "page": page, "psid": psid},
    )
    if record.status == GraphCall.Status.SUCCEEDED:
        return record.response or {}
    status = GraphCall.Status(record.status)
    if status == GraphCall.Status.IN_FLIGHT and (running := _in_flight_for(record)):
        raise _in_flight_error(running)
    if status == GraphCall.Status.IN_FLIGHT and kind in HANDOVER_KINDS:
        # Its worker died during the call: the outcome is unknown, as after a timeout.
        GraphCall.objects.filter(pk=record.pk, status=status).update(
            status=GraphCall.Status.UNCERTAIN, last_error="its worker stopped during the call"
        )
        status = GraphCall.Status.UNCERTAIN
    if status == GraphCall.Status.UNCERTAIN and not checked:
        raise GraphError(
            message="its outcome is unknown; not made again before thread_owner is asked",
            uncertain=True,
        )
    # Claim the attempt: of two workers on one key (a re-driven copy of a task still
    # running), one makes the call; the other's retry reads its outcome.
    claimed = GraphCall.objects.filter(
        pk=record.pk, status=status, attempts=record.attempts
    ).update(status=GraphCall.Status.IN_FLIGHT, attempts=F("attempts") + 1, updated_at=now())
    if not claimed:
        raise _in_flight_error(_longest_call())
    started: float | None = None
    try:
        _rate_wait(page)
        started = time.monotonic()
        body = _http(page, method, path, params, upload)
    except GraphError as exc:
        if started is not None:  # not when the rate limit held it back
            metrics.observe("graph_call_seconds", time.monotonic() - started, kind=kind)
        status = GraphCall.Status.PENDING if exc.retryable else GraphCall.Status.FAILED
        if kind in HANDOVER_KINDS and exc.unknown_outcome:
            status = GraphCall.Status.UNCERTAIN
        GraphCall.objects.filter(pk=record.pk).update(status=status, last_error=exc.describe())
        outcome = "unknown" if exc.unknown_outcome else "retried" if exc.retryable else "failed"
        metrics.count("graph_calls", kind=kind, outcome=outcome)
        logger.warning("graph %s %s failed: %s", kind, record.key, exc.describe())
        raise
    metrics.observe("graph_call_seconds", time.monotonic() - (started or 0.0), kind=kind)
    metrics.count("graph_calls", kind=kind, outcome="succeeded")
    GraphCall.objects.filter(pk=record.pk).update(
        status=GraphCall.Status.SUCCEEDED, response=body, last_error=""
    )
    return body


def call_confirm(key: str, response: dict[str, Any]) -> None:
    """The call recorded under `key` is known to have taken effect (an echo confirmed a
    send whose answer was lost): its record says so, and it is never made again."""
    GraphCall.objects.filter(key=key).exclude(status=GraphCall.Status.SUCCEEDED).update(
        status=GraphCall.Status.SUCCEEDED, response=response, last_error=""
    )


# --- The calls the helpdesk makes ------------------------------------------------


def send_text(
    page: Page,
    *,
    key: str,
    psid: str,
    text: str,
    metadata: str,
    messaging_type: str = "RESPONSE",
    tag: str | None = None,
    persona_id: str = "",
    thread_control: dict[str, str] | None = None,
    quick_replies: list[dict[str, str]] | None = None,
    attachment: dict[str, Any] | None = None,
) -> str:
    """Send a text message; returns Meta's `message_id` (the `mid` of its echo).

    `thread_control` (`{"control_type": "pass"|"release", "app_id": ...}`, Conversation
    Routing) hands the thread over once the message is sent. `quick_replies`
    (`[{"title", "payload"}]`) are shown under it as text quick replies. With `attachment`
    (`{"type": "image", "payload": {"attachment_id": ...}}`, see `attachment_upload`) the
    message is that attachment instead of `text`: Messenger sends text and a file as two
    messages."""
    content: dict[str, Any] = {"text": text} if attachment is None else {"attachment": attachment}
    message: dict[str, Any] = {**content, "metadata": metadata}
    if quick_replies:
        message["quick_replies"] = [
            {"content_type": "text", "title": reply["title"], "payload": reply["payload"]}
            for reply in quick_replies
        ]
    params: dict[str, Any] = {
        "recipient": {"id": psid},
        "messaging_type": messaging_type,
        "message": message,
    }
    if tag:
        params["tag"] = tag
    if persona_id:
        params["persona_id"] = persona_id
    if thread_control:
        params["thread_control"] = thread_control
    body = call(
        page,
        kind="send_message",
        method="POST",
        path="me/messages",
        params=params,
        psid=psid,
        key=key,
    )
    return str(body.get("message_id") or "")


def attachment_upload(page: Page, *, key: str, kind: str, upload: FileUpload) -> str:
    """Upload a file with the Attachment Upload API (`POST /me/message_attachments`,
    multipart `message` + `filedata`, reusable); returns its `attachment_id`, which
    `send_text(attachment=...)` sends. Nothing reaches the customer: repeating an upload
    whose answer was lost is harmless (the call kind is not a handover's)."""
    body = call(
        page,
        kind="attachment_upload",
        method="POST",
        path="me/message_attachments",
        params={"message": {"attachment": {"type": kind, "payload": {"is_reusable": True}}}},
        key=key,
        upload=upload,
    )
    attachment_id = str(body.get("attachment_id") or "")
    if not attachment_id:
        raise GraphError(message="the upload answer has no attachment_id", retryable=False)
    return attachment_id


def sender_action(page: Page, *, psid: str, action: str, persona_id: str = "") -> None:
    params: dict[str, Any] = {"recipient": {"id": psid}, "sender_action": action}
    if persona_id:
        params["persona_id"] = persona_id
    call(page, kind="sender_action", method="POST", path="me/messages", params=params, psid=psid)


def _handover(page: Page, kind: str, *, key: str, psid: str, checked: bool, **params: Any) -> None:
    call(
        page,
        kind=kind,
        method="POST",
        path=f"me/{kind}",
        params={"recipient": {"id": psid}, **params},
        psid=psid,
        key=key,
        checked=checked,
    )


def request_thread_control(
    page: Page, *, key: str, psid: str, metadata: str, checked: bool = False
) -> None:
    _handover(
        page, "request_thread_control", key=key, psid=psid, checked=checked, metadata=metadata
    )


def take_thread_control(
    page: Page, *, key: str, psid: str, metadata: str, checked: bool = False
) -> None:
    _handover(page, "take_thread_control", key=key, psid=psid, checked=checked, metadata=metadata)


def pass_thread_control(
    page: Page, *, key: str, psid: str, target_app_id: str, metadata: str, checked: bool = False
) -> None:
    _handover(
        page,
        "pass_thread_control",
        key=key,
        psid=psid,
        checked=checked,
        target_app_id=target_app_id,
        metadata=metadata,
    )


def release_thread_control(
    page: Page, *, key: str, psid: str, metadata: str, checked: bool = False
) -> None:
    _handover(
        page, "release_thread_control", key=key, psid=psid, checked=checked, metadata=metadata
    )


def extend_thread_control(
    page: Page, *, key: str, psid: str, duration_seconds: int, checked: bool = False
) -> None:
    _handover(
        page,
        "extend_thread_control",
        key=key,
        psid=psid,
        checked=checked,
        duration=duration_seconds,
    )


@dataclass(frozen=True)
class ThreadOwner:
    """`GET /me/thread_owner`, as much as Meta shows us (§3.7, §9.3).

    `idle`: nobody owns it. `app_id`: the owner, when Meta names it (to the owner and to
    the default app); None with `idle` False: someone we are not told of owns it.
    `expiration`: when that owner's control lapses (epoch ms), if given."""

    idle: bool
    app_id: str | None = None
    expiration: int | None = None


def thread_owner(page: Page, *, psid: str) -> ThreadOwner:
    """Who owns the thread. A `100/2018234` answer (not visible to this app) means
    another app owns it."""
    try:
        body = call(
            page,
            kind="thread_owner",
            method="GET",
            path="me/thread_owner",
            params={"recipient": psid},
            psid=psid,
        )
    except GraphError as exc:
        if exc.code == 100 and exc.subcode == SUBCODE_OWNER_NOT_VISIBLE:
            return ThreadOwner(idle=False)
        raise
    for item in body.get("data") or []:
        owner = (item or {}).get("thread_owner") or {}
        if not isinstance(owner, dict):
            continue
        expiration = owner.get("expiration")
        expires_ms = int(expiration) * 1000 if isinstance(expiration, int) and expiration else None
        app_id = str(owner["app_id"]) if owner.get("app_id") else None
        return ThreadOwner(idle=False, app_id=app_id, expiration=expires_ms)
    return ThreadOwner(idle=True)


def persona_create(page: Page, *, key: str, name: str, picture_url: str) -> str:
    """Create a persona on the page (`POST /me/personas`); returns its id."""
    params: dict[str, Any] = {"name": name}
    if picture_url:
        params["profile_picture_url"] = picture_url
    body = call(
        page, kind="persona_create", method="POST", path="me/personas", params=params, key=key
    )
    return str(body.get("id") or "")


def page_probe(page: Page) -> None:
    """A cheap call that needs a working token (`GET /me?fields=id`): raises GraphError."""
    call(page, kind="page_probe", method="GET", path="me", params={"fields": "id"})


def user_profile(page: Page, *, psid: str, key: str | None = None) -> dict[str, str]:
    """first_name, last_name and profile_pic; only fields every app may ask for."""
    body = call(
        page,
        kind="user_profile",
        method="GET",
        path=psid,
        params={"fields": "first_name,last_name,profile_pic"},
        psid=psid,
        key=key,
    )
    return {k: str(body.get(k) or "") for k in ("first_name", "last_name", "profile_pic")}


# --- What the doctor page asks -------------------------------------------------------


def debug_token(page: Page) -> dict[str, Any]:
    """What Meta says of the page's token (`GET /debug_token`, asked with this app's own
    token, `<app id>|<app secret>`): its `data` (app_id, profile_id, is_valid, scopes,
    error). Not recorded as a GraphCall: it is not a call on the page's behalf."""
    try:
        page_token = token_unseal(page.access_token)
    except TokenDecryptionError as exc:
        raise GraphError(message=f"the page token is unusable: {exc}", retryable=False) from None
    app_token = f"{settings.MESSENGER_APP_ID}|{settings.MESSENGER_APP_SECRET}"
    try:
        response = requests.get(
            f"{settings.GRAPH_API_URL}/debug_token",
            params={"input_token": page_token, "appsecret_proof": appsecret_proof(app_token)},
            headers={"Authorization": f"Bearer {app_token}"},
            timeout=settings.GRAPH_API_TIMEOUT_SECONDS,
        )
    except requests.Timeout:
        raise GraphError(message="", retryable=True, uncertain=True) from None
    except requests.RequestException as exc:
        raise GraphError(message=type(exc).__name__, retryable=True) from None
    secrets = {
        page_token: "[page token]",
        app_token: "[app token]",
        settings.MESSENGER_APP_SECRET: "[app secret]",
    }
    body = _answer(response, secrets)
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def subscribed_apps(page: Page) -> list[dict[str, Any]]:
    """The apps subscribed to the page's webhooks, each with its `subscribed_fields`."""
    body = call(page, kind="subscribed_apps", method="GET", path="me/subscribed_apps", params={})
    data = body.get("data")
    return [app for app in data if isinstance(app, dict)] if isinstance(data, list) else []


def subscribe_app(page: Page, *, fields: list[str]) -> None:
    """Subscribe this app to the page's webhooks with `fields` (replacing its fields)."""
    call(
        page,
        kind="subscribe_app",
        method="POST",
        path="me/subscribed_apps",
        params={"subscribed_fields": ",".join(fields)},
    )
