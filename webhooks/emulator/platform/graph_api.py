"""The Graph API's front door: the access token, `appsecret_proof`, and which node or
edge answers a call.

`graph_call` never raises `PlatformRefusal`: a refusal becomes Graph's error envelope
in the `Result`. Callers hold `Platform.lock`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from webhooks.emulator.config import AppConfig, PageConfig
from webhooks.emulator.errors import (
    TOKEN_EXPIRED_MESSAGE,
    TOKEN_EXPIRED_SUBCODE,
    TOKEN_INVALIDATED_MESSAGE,
    TOKEN_INVALIDATED_SUBCODE,
    PlatformRefusal,
    invalid,
)
from webhooks.emulator.platform import graph_nodes, send_api, thread_control
from webhooks.emulator.platform.state import PlatformState, Result

Edge = Callable[[PlatformState, AppConfig, PageConfig, dict[str, Any]], Result]

# The page's edges (`/me/<edge>` or `/<page id>/<edge>`); None is the page node itself.
POST_EDGES: dict[str | None, Edge] = {
    "messages": send_api.send,
    "message_attachments": send_api.attachment_upload,
    "pass_thread_control": thread_control.pass_call,
    "take_thread_control": thread_control.take_call,
    "request_thread_control": thread_control.request_call,
    "release_thread_control": thread_control.release_call,
    "extend_thread_control": thread_control.extend_call,
    "personas": graph_nodes.persona_create,
    "subscribed_apps": graph_nodes.subscribe_call,
}
GET_EDGES: dict[str | None, Edge] = {
    None: graph_nodes.page_info,
    "thread_owner": thread_control.thread_owner,
    "secondary_receivers": thread_control.secondary_receivers,
    "personas": graph_nodes.personas_list,
    "subscribed_apps": graph_nodes.subscribed_apps,
}
DELETE_EDGES: dict[str | None, Edge] = {
    "subscribed_apps": graph_nodes.unsubscribe_call,
}
EDGES = {"POST": POST_EDGES, "GET": GET_EDGES, "DELETE": DELETE_EDGES}


def appsecret_proof(secret: str, token: str) -> str:
    """HMAC-SHA256(app secret, access token), hex: what Graph checks (§4.8)."""
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def app_for_token(state: PlatformState, token: str | None) -> str | None:
    """The app a page access token belongs to; None for no or an unknown token."""
    found = state.tokens.get(token or "")
    return found[0] if found else None


def graph_call(
    state: PlatformState,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    access_token: str | None,
    proof: str | None,
) -> Result:
    """One Graph API call (path without the version prefix, e.g. `/me/messages`).

    Never raises PlatformRefusal: errors come back as a Result with Graph's envelope.
    """
    try:
        if path.strip("/") == "debug_token":
            return debug_token(state, method.upper(), params, access_token, proof)
        app, page = authenticate(state, access_token, proof)
        return dispatch(state, method.upper(), path, params, app, page)
    except PlatformRefusal as error:
        return Result(error.envelope(state.fbtrace_id()), status=error.status)


# What Meta grants a Page token of an app with Messenger set up (debug_token's scopes).
PAGE_TOKEN_SCOPES = ("pages_manage_metadata", "pages_messaging", "pages_show_list")


def debug_token(
    state: PlatformState,
    method: str,
    params: dict[str, Any],
    access_token: str | None,
    proof: str | None,
) -> Result:
    """GET /debug_token?input_token=: what a token is, asked with an app access token
    (`<app id>|<app secret>`). An expired or replaced page token is `is_valid: false`
    with its 190 error; an app whose Send API permission was revoked lacks
    `pages_messaging`."""
    if method != "GET":
        raise invalid(f"Unsupported {method.lower()} request.")
    app_id, _, secret = (access_token or "").partition("|")
    app = state.apps.get(app_id)
    if app is None or not secret or not hmac.compare_digest(secret, app.secret):
        raise PlatformRefusal(190, "Invalid OAuth access token - Cannot parse access token")
    if proof and not hmac.compare_digest(
        proof.lower(), appsecret_proof(app.secret, access_token or "")
    ):
        raise invalid("Invalid appsecret_proof provided in the API argument")
    input_token = params.get("input_token")
    if not isinstance(input_token, str) or not input_token:
        raise invalid("The parameter input_token is required")
    found = state.tokens.get(input_token)
    if found is None:
        error = (
            {
                "code": 190,
                "message": TOKEN_INVALIDATED_MESSAGE,
                "subcode": TOKEN_INVALIDATED_SUBCODE,
            }
            if input_token in state.invalidated_tokens
            else {"code": 190, "message": "Invalid OAuth access token."}
        )
        return Result({"data": {"error": error, "is_valid": False, "scopes": []}})
    owner, page_id = found
    scopes = [
        s
        for s in PAGE_TOKEN_SCOPES
        if s != "pages_messaging" or found not in state.revoked_permissions
    ]
    data: dict[str, Any] = {
        "app_id": owner,
        "type": "PAGE",
        "application": state.apps[owner].name,
        "expires_at": 0,
        "is_valid": found not in state.expired_tokens,
        "profile_id": page_id,
        "scopes": scopes,
    }
    if found in state.expired_tokens:
        data["error"] = {
            "code": 190,
            "message": TOKEN_EXPIRED_MESSAGE,
            "subcode": TOKEN_EXPIRED_SUBCODE,
        }
    return Result({"data": data})


def authenticate(
    state: PlatformState, token: str | None, proof: str | None
) -> tuple[AppConfig, PageConfig]:
    """The app and page of a page access token, with its appsecret_proof checked.

    A token replaced by `token_reissue` answers 190/460, one marked expired 190/463.
    """
    if not token:
        raise PlatformRefusal(104, "An access token is required to request this resource.")
    found = state.tokens.get(token)
    if found is None:
        if token in state.invalidated_tokens:
            raise PlatformRefusal(190, TOKEN_INVALIDATED_MESSAGE, TOKEN_INVALIDATED_SUBCODE)
        raise PlatformRefusal(190, "Invalid OAuth access token - Cannot parse access token")
    if found in state.expired_tokens:
        raise PlatformRefusal(190, TOKEN_EXPIRED_MESSAGE, TOKEN_EXPIRED_SUBCODE)
    app = state.apps[found[0]]
    if proof:
        expected = appsecret_proof(app.secret, token)
        if not hmac.compare_digest(proof.lower(), expected):
            raise invalid("Invalid appsecret_proof provided in the API argument")
    elif app.require_appsecret_proof:
        raise invalid("API calls from the server require an appsecret_proof argument")
    return app, state.pages[found[1]]


def dispatch(
    state: PlatformState,
    method: str,
    path: str,
    params: dict[str, Any],
    app: AppConfig,
    page: PageConfig,
) -> Result:
    """The node: the token's page (and its edges), one of its users, or a persona."""
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise PlatformRefusal(2500, f"Unknown path components: {path}")
    node, edge = parts[0], (parts[1] if len(parts) == 2 else None)
    if node == "me" or node == page.page_id:
        return page_call(state, method, edge, params, app, page)
    if node in state.pages:
        # A page node with another page's token.
        raise invalid("The access token does not belong to this page", 33)
    if edge is None and (page.page_id, node) in state.users:
        if method != "GET":
            raise invalid(f"Unsupported {method.lower()} request.")
        return graph_nodes.profile(state, app, state.users[(page.page_id, node)], params)
    persona = state.personas.get(node)
    if edge is None and persona is not None and persona["page_id"] == page.page_id:
        return graph_nodes.persona_node(state, method, node)
    raise invalid(
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation",
        33,
    )


def page_call(
    state: PlatformState,
    method: str,
    edge: str | None,
    params: dict[str, Any],
    app: AppConfig,
    page: PageConfig,
) -> Result:
    """An edge of the page: a known edge with another method is an unsupported request."""
    handler = EDGES.get(method, {}).get(edge)
    if handler is not None:
        return handler(state, app, page, params)
    if any(edge in edges for edges in EDGES.values()):
        raise invalid(f"Unsupported {method.lower()} request.")
    raise PlatformRefusal(2500, f"Unknown path components: /{edge}")
