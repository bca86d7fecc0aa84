"""Cursor pagination for the API's long lists: opaque cursors and the next-page headers.

A list answers a JSON array, as it always did; when there is a next page, the response
says where it starts in two headers: `X-Next-Cursor` (the cursor to pass back) and
`Link: <url>; rel="next"` (RFC 8288, the same request with the cursor in it). No header:
this was the last page.

A cursor is the position (sort key and id) of the last row of a page, in base64url, so
that the next page is a keyset query (`agents.selectors`) that costs the same at any
depth. It names its order: a cursor of one order given to a list of another is refused
with 400, as is anything this module did not make.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from agents import selectors
from agents.errors import InvalidInput
from agents.models import Message, Ticket

TICKETS_PAGE = 50
TICKETS_PAGE_MAX = 200
MESSAGES_PAGE = 50
MESSAGES_PAGE_MAX = 200

_MESSAGE_ORDER = "messages"


def _encode(order: str, key: str | int, pk: int) -> str:
    raw = f"{order}|{key}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad(param: str) -> InvalidInput:
    return InvalidInput(
        f"`{param}` is not a cursor of this list: pass the X-Next-Cursor header of the "
        "previous page unchanged, or leave it out for the first page."
    )


def _decode(cursor: str, order: str, param: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found, key, pk = raw.split("|")
        position = int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad(param) from None
    if found != order:
        raise _bad(param)
    return key, position


def ticket_cursor(ticket: Ticket, order: selectors.TicketOrder) -> str:
    position = selectors.ticket_position(ticket, order)
    return _encode(order, position.at.isoformat(), position.id)


def ticket_position(cursor: str, order: selectors.TicketOrder) -> selectors.TicketPosition:
    key, pk = _decode(cursor, order, "after")
    try:
        at = datetime.fromisoformat(key)
    except ValueError:
        raise _bad("after") from None
    if at.tzinfo is None:
        raise _bad("after")
    return selectors.TicketPosition(at=at, id=pk)


def message_cursor(message: Message) -> str:
    position = selectors.message_position(message)
    return _encode(_MESSAGE_ORDER, position.timestamp, position.id)


def message_position(cursor: str) -> selectors.MessagePosition:
    key, pk = _decode(cursor, _MESSAGE_ORDER, "before")
    try:
        return selectors.MessagePosition(timestamp=int(key), id=pk)
    except ValueError:
        raise _bad("before") from None


def next_page(request: HttpRequest, response: HttpResponse, param: str, cursor: str) -> None:
    """Say where the next page starts: `X-Next-Cursor`, and `Link` with the same query
    but `param` set to the cursor."""
    query = request.GET.copy()
    query[param] = cursor
    response["X-Next-Cursor"] = cursor
    response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'


def documented(param: str, what: str) -> dict[str, Any]:
    """`openapi_extra` for a paginated list: its 200 answer's headers."""
    return {
        "responses": {
            200: {
                "headers": {
                    "X-Next-Cursor": {
                        "description": f"Present when there is a next page ({what}): pass "
                        f"it as `{param}` to get it. Absent on the last page.",
                        "schema": {"type": "string"},
                    },
                    "Link": {
                        "description": 'The next page\'s URL, as `<url>; rel="next"` '
                        "(RFC 8288); absent on the last page.",
                        "schema": {"type": "string"},
                    },
                }
            }
        }
    }
