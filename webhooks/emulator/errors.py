"""Errors: Graph's error envelope (messenger-platform.md §8.19) and the emulator's own."""

from __future__ import annotations

from typing import Any

NOT_OWNER_MESSAGE = "(#10) The action is invalid since it's not the thread owner."
OUTSIDE_WINDOW_MESSAGE = "(#10) This message is sent outside of allowed window."


class PlatformRefusal(Exception):
    """The platform refuses the call; answered in Graph's error envelope (§8.19).

    HTTP 400 unless said otherwise. Not `webhooks.graph.GraphError`, which is what the
    helpdesk's client raises when it reads such an answer.
    """

    def __init__(
        self,
        code: int,
        message: str,
        subcode: int | None = None,
        *,
        status: int = 400,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.status = status
        self.transient = transient

    def envelope(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException"}
        error["code"] = self.code
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.transient:
            error["is_transient"] = True
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def not_owner() -> PlatformRefusal:
    # [conv] Meta documents no code for this; 10/2018300 is what clients see in the wild.
    return PlatformRefusal(10, NOT_OWNER_MESSAGE, 2018300)


def invalid(message: str, subcode: int | None = None) -> PlatformRefusal:
    return PlatformRefusal(100, f"(#100) {message}", subcode)


def permissions_error(detail: str) -> PlatformRefusal:
    return PlatformRefusal(200, f"(#200) Permissions error: {detail}")


class EmulatorError(Exception):
    """A bad request to the emulator's own API (customer page, control page)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
