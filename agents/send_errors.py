"""Why a message was not sent, in words for agents: the one place that turns Meta's
error codes into sentences.

An agent reads the sentence first (`SendFailure.text`: what happened and what to do);
Meta's code and message follow in a detail line (`SendFailure.detail`, "Meta error
551: …") for whoever digs further. The services store both on the message
(`Message.error`, `Message.error_detail`) and the API returns them, so the inbox shows
these texts and invents none. The codes are those of messenger-platform.md §4.5 and §9.4.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from webhooks.graph import RETRYABLE_CODES, SUBCODE_NOT_OWNER, SUBCODES_WINDOW_CLOSED, GraphError

WINDOW_CLOSED = "Messenger only allows replies within 24 hours of the customer's last message."
WINDOW_CLOSED_HUMAN_AGENT = (
    "Messenger only allows replies within 7 days of the customer's last message, even with "
    "the Human Agent tag."
)
NOT_OWNER = (
    "Another app has this conversation now, so Messenger refused the reply. Request "
    "control to reply again."
)
UNAVAILABLE = (
    "This person can't be reached on Messenger right now: they may have blocked the Page "
    "or deactivated their account."
)
NOT_RECEIVING = "This person isn't receiving messages from the Page right now."
NO_SUCH_USER = "Messenger doesn't know this person any more: the conversation can't be reached."
INVALID = "Messenger rejected the message as invalid; sending it again won't help."
PERMISSIONS = (
    "The helpdesk isn't allowed to send this message for the Page (a permissions error). "
    "An admin needs to check the app's access to the Page."
)
APP_NOT_LIVE = (
    "The helpdesk's Meta app can only message the Page's admins, developers and testers "
    "until Meta approves it."
)
PAGE_RESTRICTED = "Meta has temporarily restricted this Page from sending messages."
NOT_PERMITTED = "Meta didn't allow the helpdesk to send this message."
TOKEN = "The Page's access token expired or was revoked: an admin needs to reconnect the Page."
RATE_LIMITED = "Messenger is limiting how fast this Page can send."
TEMPORARY = "Messenger had a temporary problem."
REFUSED = "Messenger refused the message."
SERVER_ERROR = "Messenger's servers had a problem."
UNREACHABLE = "The helpdesk couldn't reach Messenger."
# A send whose answer was lost may have reached the customer: its echo decides.
UNCONFIRMED = (
    "Meta did not answer in time: the message may have been sent. Waiting for its echo "
    "to confirm it."
)
WORKER_LOST = (
    "The worker sending it stopped before Meta answered: the message may have been "
    "sent. Waiting for its echo to confirm it."
)
NEVER_CONFIRMED = (
    "Meta never confirmed this message: it may not have been delivered. Retry to send it again."
)

PERMISSION_MISSING = (
    "The helpdesk's app lacks the pages_messaging permission for this Page: an admin must "
    "grant it again."
)

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})
SUBCODE_NOT_RECEIVING = 2018108
SUBCODE_NO_SUCH_USER = 2018001
SUBCODE_APP_NOT_LIVE = 2018028
SUBCODE_PAGE_RESTRICTED = 1893063
# A file an agent sent (agents.services.attachments), refused by Meta.
SUBCODE_ATTACHMENT_TOO_BIG = 2018109
SUBCODE_UPLOAD_FAILED = 2018047
ATTACHMENT_TOO_BIG = "Messenger refused the file: it is larger than Meta accepts (25 MB)."
UPLOAD_FAILED = "Messenger could not take the file (empty, or not of the type its name says)."
RETRYING = "Retrying: "


@dataclass(frozen=True)
class SendFailure:
    """A send that failed (or is retried): the sentence for the agent, Meta's side."""

    text: str
    detail: str = ""
    code: int | None = None
    subcode: int | None = None


def _sentence(code: int | None, subcode: int | None, *, tag: str | None) -> str:
    if subcode == SUBCODE_NOT_OWNER:
        return NOT_OWNER
    if subcode in SUBCODES_WINDOW_CLOSED:
        return WINDOW_CLOSED_HUMAN_AGENT if tag == "HUMAN_AGENT" else WINDOW_CLOSED
    if subcode == SUBCODE_NOT_RECEIVING:
        return NOT_RECEIVING
    if subcode == SUBCODE_PAGE_RESTRICTED:
        return PAGE_RESTRICTED
    if code == 100 and subcode == SUBCODE_NO_SUCH_USER:
        return NO_SUCH_USER
    if code == 100 and subcode == SUBCODE_ATTACHMENT_TOO_BIG:
        return ATTACHMENT_TOO_BIG
    if code == 100 and subcode == SUBCODE_UPLOAD_FAILED:
        return UPLOAD_FAILED
    if code == 200 and subcode == SUBCODE_APP_NOT_LIVE:
        return APP_NOT_LIVE
    if code == 230:
        return PERMISSION_MISSING
    if code in RATE_LIMIT_CODES:
        return RATE_LIMITED
    if code in RETRYABLE_CODES:
        return TEMPORARY
    return {
        10: NOT_PERMITTED,
        100: INVALID,
        190: TOKEN,
        200: PERMISSIONS,
        551: UNAVAILABLE,
    }.get(code or 0, REFUSED)


def graph_failure(error: GraphError, *, tag: str | None = None) -> SendFailure:
    """A Send API error as the agent reads it. `tag`: the message tag the send used
    (`HUMAN_AGENT` widens the window to 7 days, and so the sentence)."""
    if error.code is not None:
        codes = f"{error.code}" + (f"/{error.subcode}" if error.subcode else "")
        return SendFailure(
            text=_sentence(error.code, error.subcode, tag=tag),
            detail=f"Meta error {codes}: {error.message}"
            if error.message
            else f"Meta error {codes}",
            code=error.code,
            subcode=error.subcode,
        )
    if error.uncertain:
        return SendFailure(
            text=UNCONFIRMED,
            detail=f"No answer from the Graph API within {settings.GRAPH_API_TIMEOUT_SECONDS} s",
        )
    if error.http_status is not None:
        return SendFailure(
            text=SERVER_ERROR, detail=f"HTTP {error.http_status} from the Graph API, no error code"
        )
    return SendFailure(text=UNREACHABLE, detail="No connection to the Graph API")


def refused(reason: str) -> SendFailure:
    """The helpdesk itself did not send it: `reason` is already a sentence for agents."""
    return SendFailure(text=f"Not sent: {reason}")


def paused(reason: str) -> SendFailure:
    """The page cannot send at all: the message waits and goes out when it can."""
    return SendFailure(text=f"Waiting: sending is paused for this page ({reason}).")


def never_confirmed() -> SendFailure:
    """Meta's answer was lost and no echo came: the outcome is unknown."""
    return SendFailure(
        text=NEVER_CONFIRMED,
        detail=f"No answer from Meta, and no echo within {settings.GRAPH_CONFIRM_SECONDS} s",
    )


def retrying(failure: SendFailure) -> SendFailure:
    """A transient failure: the message is sent again on its own."""
    return SendFailure(
        text=RETRYING + failure.text,
        detail=failure.detail,
        code=failure.code,
        subcode=failure.subcode,
    )


def gave_up(*, attempts: int, last: SendFailure) -> SendFailure:
    """Retries are exhausted; `last` is the failure the last retry was for."""
    return SendFailure(
        text=f"Gave up after {attempts} attempts: {last.text.removeprefix(RETRYING)}",
        detail=last.detail,
        code=last.code,
        subcode=last.subcode,
    )
