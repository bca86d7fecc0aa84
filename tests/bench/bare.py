"""The intake benchmark's baseline: a bare ASGI app that does what the webhook must do
before it may answer, and nothing else: read the body, check the same HMAC (the same
function, `webhooks.services.signature_valid`), parse the same JSON, answer 200. Served
by the project's Daphne (`daphne tests.bench.bare:application`), like the helpdesk."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
import django

django.setup()

from webhooks import services  # noqa: E402


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = dict(scope["headers"])
    signature = headers.get(b"x-hub-signature-256", b"").decode("latin-1") or None
    status, text = 200, b"EVENT_RECEIVED"
    if not services.signature_valid(body=body, header=signature):
        status, text = 403, b"invalid signature"
    else:
        try:
            services.delivery_payload(body=body)
        except services.MalformedDelivery:
            status, text = 400, b"bad JSON"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(text))],
        }
    )
    await send({"type": "http.response.body", "body": text})
