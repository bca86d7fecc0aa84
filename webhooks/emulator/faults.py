"""Graph API fault injection: the next N calls fail with a 5xx, a timeout or code 613.
With `applied`, a timeout or a 5xx happens after the call took effect.

Faults apply to Graph calls that arrive over HTTP (the app under test), never to the
demo bot's in-process calls. A fault can be narrowed to a path (substring of the path
without its version prefix, e.g. "messages" or "pass_thread_control") and to an app.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

FaultKind = Literal["5xx", "timeout", "rate_limit"]
FAULT_KINDS: tuple[str, ...] = ("5xx", "timeout", "rate_limit")


@dataclass
class GraphFault:
    kind: FaultKind
    remaining: int = 1
    # 5xx: the HTTP status (500, 502, 503, 504).
    status: int = 500
    # timeout: how long the call hangs before the connection is closed unanswered.
    seconds: float = 15.0
    # timeout, 5xx: whether the call took effect before its answer was lost or became
    # a server error (the uncertain case a client must reconcile, e.g. a message that
    # was sent after all, or a take that happened).
    applied: bool = False
    path: str | None = None
    app_id: str | None = None

    def matches(self, path: str, app_id: str | None) -> bool:
        if self.path and self.path not in path:
            return False
        return not (self.app_id and self.app_id != app_id)


class GraphFaults:
    """A queue of armed faults; the first one matching a call is used up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[GraphFault] = []

    def arm(self, fault: GraphFault) -> GraphFault:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        if fault.kind == "5xx" and not 500 <= fault.status <= 599:
            raise ValueError("status must be a 5xx")
        if fault.seconds < 0:
            raise ValueError("seconds must not be negative")
        with self._lock:
            self._armed.append(fault)
        return fault

    def take(self, path: str, app_id: str | None) -> GraphFault | None:
        with self._lock:
            for fault in self._armed:
                if fault.matches(path, app_id):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._armed.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def view(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._armed]


def server_error_body(fbtrace_id: str) -> dict[str, Any]:
    """What Graph answers on an internal error: code 2, transient."""
    return {
        "error": {
            "message": "An unexpected error has occurred. Please retry your request later.",
            "type": "OAuthException",
            "is_transient": True,
            "code": 2,
            "fbtrace_id": fbtrace_id,
        }
    }


def rate_limit_body(fbtrace_id: str) -> dict[str, Any]:
    return {
        "error": {
            "message": "(#613) Calls to this API have exceeded the rate limit.",
            "type": "OAuthException",
            "code": 613,
            "fbtrace_id": fbtrace_id,
        }
    }
