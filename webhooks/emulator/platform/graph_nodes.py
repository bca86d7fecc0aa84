"""Graph nodes and edges outside messaging and thread control (§5, §8.20).

A user's profile, the page itself, personas, and `subscribed_apps`. Each answers for
the app whose token made the call; callers hold `Platform.lock`.
"""

from __future__ import annotations

from typing import Any

from webhooks.emulator.config import AppConfig, PageConfig
from webhooks.emulator.errors import invalid
from webhooks.emulator.messages import URL
from webhooks.emulator.platform.params import fields_param
from webhooks.emulator.platform.state import PlatformState, Result, Subscription, User

PROFILE_FIELDS = frozenset({"id", "name", "first_name", "last_name", "profile_pic"})
GATED_PROFILE_FIELDS = {
    "locale": "pages_user_locale",
    "timezone": "pages_user_timezone",
    "gender": "pages_user_gender",
}


def avatar_url(state: PlatformState, user: User) -> str:
    """The user's profile picture, served by the emulator (fetchable offline)."""
    return f"{state.public_url}/emulator/avatar/{user.page_id}/{user.psid}.svg"


def profile(state: PlatformState, app: AppConfig, user: User, params: dict[str, Any]) -> Result:
    """[doc] §5, §8.20: the basic fields; gated ones fail the whole request."""
    fields = fields_param(params, default="first_name,last_name,profile_pic")
    for name in fields:
        if name in GATED_PROFILE_FIELDS and name not in app.approved_profile_fields:
            raise invalid(
                f"Requesting field {name} requires the {GATED_PROFILE_FIELDS[name]} "
                "permission, which this app does not have"
            )
        if name not in PROFILE_FIELDS and name not in GATED_PROFILE_FIELDS:
            raise invalid(f"Tried accessing nonexisting field ({name}) on node type (User)")
    values = {
        "id": user.psid,
        "name": user.name,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "profile_pic": avatar_url(state, user),
        "locale": "en_US",
        "timezone": 0,
        "gender": "",
    }
    body = {name: values[name] for name in fields}
    body["id"] = user.psid
    return Result(body)


def page_info(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """GET /me: the page's id, name and messaging_feature_status."""
    fields = fields_param(params, default="id,name")
    values: dict[str, Any] = {
        "id": page.page_id,
        "name": page.name,
        "messaging_feature_status": {
            "hop_v2": False,
            "msgr_multi_app": page.mode != "legacy",
            "ig_multi_app": False,
        },
    }
    unknown = [f for f in fields if f not in values]
    if unknown:
        raise invalid(f"Tried accessing nonexisting field ({unknown[0]}) on node type (Page)")
    body = {name: values[name] for name in fields}
    body["id"] = page.page_id
    return Result(body)


def persona_node(state: PlatformState, method: str, persona_id: str) -> Result:
    """GET or DELETE /<persona id>; the caller has checked it is this page's persona."""
    if method not in ("GET", "DELETE"):
        raise invalid(f"Unsupported {method.lower()} request.")
    if method == "DELETE":
        del state.personas[persona_id]
        return Result({"success": True})
    public = {k: v for k, v in state.personas[persona_id].items() if k != "page_id"}
    return Result(public)


def persona_create(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """POST /me/personas: a name (required) and a picture (optional) an agent's
    messages and typing indicator show (§4.2, §9.5)."""
    name, picture = params.get("name"), params.get("profile_picture_url")
    if not isinstance(name, str) or not name.strip() or len(name) > 50:
        raise invalid("The parameter name is required (at most 50 characters)")
    # The picture is optional: the persona then shows the page's picture.
    if picture is not None and (not isinstance(picture, str) or not URL.match(picture)):
        raise invalid("Param profile_picture_url must be a URL")
    persona_id = state.numeric_id()
    persona: dict[str, Any] = {"name": name}
    if picture is not None:
        persona["profile_picture_url"] = picture
    state.personas[persona_id] = {**persona, "id": persona_id, "page_id": page.page_id}
    return Result({"id": persona_id})


def personas_list(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """GET /me/personas: this page's personas."""
    data = [
        {k: v for k, v in p.items() if k != "page_id"}
        for p in state.personas.values()
        if p["page_id"] == page.page_id
    ]
    return Result({"data": data})


def subscribed_apps(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """GET /me/subscribed_apps: every app whose webhooks for this page are on."""
    data = [
        {
            "category": "Business",
            "link": "",
            "name": other.name,
            "id": other.app_id,
            "subscribed_fields": sorted(state.fields(other.app_id, page.page_id)),
        }
        for other in state.subscribed(page.page_id)
    ]
    return Result({"data": data})


def subscribe_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """§1.6: the app (re)installs itself on the page, e.g. after being unsubscribed."""
    raw = params.get("subscribed_fields")
    if isinstance(raw, list):
        raw = ",".join(str(f) for f in raw)
    if not isinstance(raw, str) or not raw.strip():
        raise invalid("The parameter subscribed_fields is required")
    fields = frozenset(f.strip() for f in raw.split(",") if f.strip())
    state.subscriptions[(app.app_id, page.page_id)] = Subscription(fields)
    return Result({"success": True})


def unsubscribe_call(
    state: PlatformState, app: AppConfig, page: PageConfig, params: dict[str, Any]
) -> Result:
    """DELETE /me/subscribed_apps: the calling app's webhooks for this page stop."""
    state.subscriptions[(app.app_id, page.page_id)].active = False
    return Result({"success": True})
