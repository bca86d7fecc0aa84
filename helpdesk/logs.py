"""Logs: one JSON object per line in production, readable lines in development.

`LOG_FORMAT` (json | plain; json unless DEBUG) picks the formatter. Every line carries the
ids of what it is about, from the context the code runs in: the request (its
`X-Request-ID`, or one made up, sent back on the answer), the Celery task, and the
delivery, conversation and ticket ids a task was given. `bind` adds ids for a block.

Nothing secret reaches a line: Meta's tokens (`EAA…`), `access_token=` and
`appsecret_proof=` values and bearer tokens are masked, whatever logged them.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest, HttpResponse

_ids: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "helpdesk_log_ids", default=None
)
# Meta's access tokens start with EAA; query parameters and headers that carry secrets.
_SECRETS = re.compile(
    r"\bEAA[A-Za-z0-9]{16,}"
    r"|(?<=access_token=)[^&\s\"']+"
    r"|(?<=appsecret_proof=)[^&\s\"']+"
    r"|(?<=input_token=)[^&\s\"']+"
    r"|(?i:(?<=bearer )[A-Za-z0-9._~+/=-]{8,})"
)
MASK = "[secret]"
ID_NAMES = ("request_id", "task_id", "task", "delivery_id", "conversation_id", "ticket_id")


def mask(text: str) -> str:
    return _SECRETS.sub(MASK, text)


def ids() -> dict[str, Any]:
    return dict(_ids.get() or {})


@contextmanager
def bind(**values: Any) -> Iterator[None]:
    """Add these ids to every line logged in the block (None values are left out)."""
    token = _ids.set({**ids(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the bound ids,
    and the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": mask(record.getMessage()),
            **ids(),
        }
        if record.exc_info:
            line["exception"] = mask(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """Development's lines, with the bound ids at the end and secrets masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        bound = " ".join(f"{k}={v}" for k, v in ids().items())
        return mask(f"{text} [{bound}]" if bound else text)


def request_ids(get_response: Callable[[HttpRequest], HttpResponse]) -> Any:
    """Middleware: the request's id (the proxy's `X-Request-ID` if it looks like one)
    on every line logged while it is served, and on its answer."""

    def middleware(request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if re.fullmatch(r"[A-Za-z0-9._-]{8,64}", given) else uuid.uuid4().hex
        with bind(request_id=request_id):
            response = get_response(request)
        response["X-Request-ID"] = request_id
        return response

    return middleware


def task_ids(task_id: str, task_name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The ids a Celery task's lines carry: its own, and those it was given (by the
    names of its parameters)."""
    found: dict[str, Any] = {"task_id": task_id, "task": task_name}
    for name in ("delivery_id", "conversation_id", "ticket_id"):
        if name in arguments:
            found[name] = arguments[name]
    if "delivery_ids" in arguments:
        found["delivery_id"] = list(arguments["delivery_ids"])
    return found


def ids_set(values: dict[str, Any]) -> contextvars.Token[dict[str, Any] | None]:
    """Bind ids until `ids_reset` (a Celery task, between its signals)."""
    return _ids.set(values)


def ids_reset(token: contextvars.Token[dict[str, Any] | None]) -> None:
    _ids.reset(token)
