"""HTTP to an app's callback URL: the §8.2 verification handshake and the raw request
the dispatcher POSTs webhooks with."""

from __future__ import annotations

import http.client
import secrets
from urllib.parse import urlencode, urlsplit

from webhooks.emulator.config import AppConfig


def http_request(
    method: str, url: str, *, body: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, bytes]:
    """One request with http.client: unlike urllib/requests it ignores http_proxy, which
    must never catch loopback callbacks."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def verify_callback(app: AppConfig, *, timeout: float = 5.0) -> tuple[bool, str]:
    """§8.2 handshake: GET with hub.* parameters; 200 and the challenge echoed back."""
    if not app.callback_url:
        return True, "in-process app"
    challenge = str(secrets.randbelow(10**10))
    query = urlencode(
        {"hub.mode": "subscribe", "hub.verify_token": app.verify_token, "hub.challenge": challenge}
    )
    separator = "&" if "?" in app.callback_url else "?"
    try:
        status, body = http_request(
            "GET", f"{app.callback_url}{separator}{query}", body=None, headers={}, timeout=timeout
        )
    except (OSError, http.client.HTTPException) as exc:
        return False, f"no answer: {type(exc).__name__}"
    if status != 200:
        return False, f"HTTP {status}"
    if body.decode("utf-8", "replace") != challenge:
        return False, "the answer was not the challenge"
    return True, "verified"
