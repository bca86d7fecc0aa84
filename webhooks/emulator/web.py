"""What the emulator server's route handlers get and give, and the route patterns.

A route is (methods, path pattern, handler). Patterns read like the endpoint list in
`server`'s docstring: `<page>`, `<psid>`, `<app_id>` and `<page_id>` are numeric ids,
`<file>` is the rest of the path. A handler takes a `Request` and returns a `Reply`, or
raises `ApiError` / `EmulatorError`, which the server answers as `{"error": "..."}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webhooks.emulator.emulator import Emulator

PLACEHOLDERS = {
    "page": r"\d+",
    "psid": r"\d+",
    "app_id": r"\d+",
    "page_id": r"\d+",
    "file": r".*",
}
PLACEHOLDER = re.compile(r"<(\w+)>")


class ApiError(Exception):
    """A bad request to the server itself (not a Graph error): `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class Request:
    emulator: Emulator
    args: dict[str, str]  # the path's <placeholders>
    query: dict[str, list[str]]
    body: dict[str, Any]  # a POST's JSON object; {} for GET and HEAD


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload).encode(), "application/json; charset=UTF-8")


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    path: str
    handler: Callable[[Request], Reply]
    pattern: re.Pattern[str]


def route(methods: str, path: str, handler: Callable[[Request], Reply]) -> Route:
    """`route("GET|HEAD", "/emulator/static/<file>", handler)`; unknown placeholders fail
    at import."""
    # re.escape leaves < > and word characters alone, so the placeholders survive it.
    pattern = PLACEHOLDER.sub(lambda m: f"(?P<{m[1]}>{PLACEHOLDERS[m[1]]})", re.escape(path))
    return Route(frozenset(methods.split("|")), path, handler, re.compile(pattern))


def find_route(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The first route for this method whose pattern matches the whole path."""
    for candidate in routes:
        if method in candidate.methods:
            match = candidate.pattern.fullmatch(path)
            if match:
                return candidate, match.groupdict()
    return None


def json_object(content_type: str, raw: bytes) -> dict[str, Any]:
    """A POST body of the JSON API: application/json only (a cross-site form cannot
    send it), empty or one JSON object."""
    if content_type != "application/json":
        raise ApiError("POST bodies must be application/json", 415)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError("invalid JSON") from None
    if not isinstance(body, dict):
        raise ApiError("the body must be a JSON object")
    return body
