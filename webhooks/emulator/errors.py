"""Errors: Graph's error envelope (messenger-platform.md §8.19) and the emulator's own."""

from __future__ import annotations

from typing import Any

NOT_OWNER_MESSAGE = "(#10) The action is invalid since it's not the thread owner."
OUTSIDE_WINDOW_MESSAGE = "(#10) This message is sent outside of allowed window."
# §9.1, §9.4: what CR pages answer to the handover calls they do not take.
HANDOVER_DISABLED_MESSAGE = "(#10) Handover Protocol APIs disabled for this page"
TAKE_WITHOUT_CR_MESSAGE = (
    "(#27) Take thread control is not supported when Conversation Routing is not enabled"
)
# §9.4: page-level refusals (they last until the Page, token or permission is fixed).
PAGE_RESTRICTED_MESSAGE = "(#10) This Page is temporarily restricted from sending messages"
PAGE_RESTRICTED_SUBCODE = 1893063
TOKEN_EXPIRED_MESSAGE = "Error validating access token: Session has expired"
TOKEN_EXPIRED_SUBCODE = 463
TOKEN_INVALIDATED_MESSAGE = (
    "Error validating access token: The session has been invalidated because the user "
    "changed their password or Facebook has changed the session for security reasons."
)
TOKEN_INVALIDATED_SUBCODE = 460
PERMISSION_MISSING_MESSAGE = "(#230) Requires pages_messaging permission to manage the object"
OWNER_NOT_VISIBLE_MESSAGE = "(#100) Thread owner is not visible to this app"
OWNER_NOT_VISIBLE_SUBCODE = 2018234


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
