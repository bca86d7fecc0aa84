"""Graph call parameters: decoding, the recipient, and the checks shared by edges.

Every function raises `PlatformRefusal` (code 100) for a parameter Graph would refuse.
"""

from __future__ import annotations

import json
from typing import Any

from webhooks.emulator.config import PageConfig
from webhooks.emulator.errors import invalid
from webhooks.emulator.platform.ownership import refresh
from webhooks.emulator.platform.state import PlatformState, Thread, User


def json_param(params: dict[str, Any], name: str) -> Any:
    """Form and query parameters carry objects as JSON strings (Meta's curl samples
    even use single quotes); a JSON body carries them as objects."""
    value = params.get(name)
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            try:
                return json.loads(value.replace("'", '"'))
            except ValueError:
                raise invalid(f"Param {name} must be a JSON object") from None
    return value


def recipient(
    state: PlatformState, page: PageConfig, params: dict[str, Any], now: int
) -> tuple[User, Thread]:
    """The user and thread `recipient` names, the thread refreshed to `now`.

    Caller holds `Platform.lock`.
    """
    value = json_param(params, "recipient")
    if isinstance(value, dict):
        psid = value.get("id")
        if psid is None:
            raise invalid("The parameter recipient must have an id")
    elif isinstance(value, str | int) and str(value).strip():
        psid = value
    else:
        raise invalid("The parameter recipient is required")
    key = (page.page_id, str(psid))
    if key not in state.users:
        raise invalid("No matching user found", 2018001)
    thread = state.threads[key]
    refresh(state, thread, now)
    return state.users[key], thread


def metadata_param(params: dict[str, Any], name: str = "metadata") -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Param {name} must be a string")
    # [conv] 1000 characters, like the Send API's message.metadata (§7.3).
    if len(value) > 1000:
        raise invalid(f"Param {name} must be at most 1000 characters long")
    return value


def app_id_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not str(value).isdigit():
        raise invalid(f"Param {name} must be a valid app id")
    return str(value)


def fields_param(params: dict[str, Any], *, default: str) -> list[str]:
    raw = params.get("fields") or default
    if not isinstance(raw, str):
        raise invalid("Param fields must be a comma-separated string")
    return [f.strip() for f in raw.split(",") if f.strip()]
