"""The emulator's HTTP server: the Graph API, the customer and control pages, a JSON API.

Graph API (any version prefix, `/v19.0/me/messages`, or none, `/me/messages`);
parameters from the query string, a JSON body or a form body; the token as
`access_token` or `Authorization: Bearer`; `appsecret_proof` checked:

    POST /me/messages                  Send API: text, attachments, templates, quick
                                       replies, sender_action, metadata, persona_id,
                                       messaging_type/tag, thread_control (CR)
    POST /me/pass_thread_control       recipient, target_app_id, metadata
    POST /me/take_thread_control       recipient, metadata
    POST /me/request_thread_control    recipient, metadata
    POST /me/release_thread_control    recipient, metadata
    POST /me/extend_thread_control     recipient, duration (seconds, ≤ 7 days)
    GET  /me/thread_owner?recipient=   owner and expiration, as far as the caller may see
    GET  /me/secondary_receivers       legacy: the primary receiver only
    GET|POST|DELETE /me/subscribed_apps, GET|POST /me/personas, GET|DELETE /<persona id>
    GET  /me                           the page (id, name, messaging_feature_status)
    GET  /<PSID>?fields=               user profile (first_name, last_name, profile_pic)

Pages: `/` the customer (a Messenger user), `/control` faults and state.

JSON API (POST bodies are JSON and need `Content-Type: application/json`, which a
cross-site form cannot send; answers are JSON, errors `{"error": "..."}`):

    GET  /emulator/api/state                                  pages, apps, users, threads,
                                                              clock, armed faults
    POST /emulator/api/users                                  {first_name, last_name, page_id?}
    GET  /emulator/api/threads/<page>/<psid>?after=<seq>      owner, typing, messages after seq
    POST /emulator/api/threads/<page>/<psid>/messages         {text} | {quick_reply: {mid, index}}
    POST /emulator/api/threads/<page>/<psid>/postbacks        {mid, index}
    POST /emulator/api/threads/<page>/<psid>/read             delivery + read receipts
    POST /emulator/api/threads/<page>/<psid>/take             {app_id?, metadata?} (default:
                                                              the bot / primary app)
    POST /emulator/api/threads/<page>/<psid>/inbox-reply      {text}: the Page Inbox answers
    POST /emulator/api/faults/graph                           {kind: 5xx|timeout|rate_limit,
                                                              count?, status?, seconds?,
                                                              applied?, path?, app_id?}
    POST /emulator/api/faults/webhooks                        {duplicate?, out_of_order?, app_id?}
    POST /emulator/api/faults/clear                           disarm Graph faults, webhook
                                                              faults off
    POST /emulator/api/clock                                  {advance_seconds | advance_hours}
    GET  /emulator/api/deliveries?app_id=&limit=              recent webhook deliveries
    GET  /emulator/api/graph-calls?limit=                     recent Graph calls
    POST /emulator/api/apps/<app_id>/subscribe                handshake, then re-subscribe
    POST /emulator/api/apps/<app_id>/unsubscribe
    POST /emulator/api/apps/<app_id>/callback                 {url}: where its webhooks go
    POST /emulator/api/pages/<page_id>/primary                {app_id}: primary / default app
"""

from __future__ import annotations

import json
import logging
import re
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.faults import (
    FAULT_KINDS,
    FaultKind,
    GraphFault,
    rate_limit_body,
    server_error_body,
)

if TYPE_CHECKING:
    from webhooks.emulator.emulator import Emulator

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# No inline scripts or styles, nothing from elsewhere: the pages work offline and user
# text can never become script.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/|$)")
MAX_BODY = 1024 * 1024
THREAD_PATH = re.compile(r"^/emulator/api/threads/(\d+)/(\d+)(?:/([a-z-]+))?$")
APP_PATH = re.compile(r"^/emulator/api/apps/(\d+)/(subscribe|unsubscribe|callback)$")
PRIMARY_PATH = re.compile(r"^/emulator/api/pages/(\d+)/primary$")
AVATAR_PATH = re.compile(r"^/emulator/avatar/(\d+)/(\d+)\.svg$")
PALETTE = ("#4f46e5", "#0891b2", "#059669", "#d97706", "#db2777", "#7c3aed")


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted emulator must be able to take its port back at once.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, Handler)


def make_server(emulator: Emulator, host: str, port: int) -> EmulatorServer:
    return EmulatorServer((host, port), emulator)


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    _body = b""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("emulator: " + format, *args)

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    # --- plumbing ---------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8")

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("bad Content-Length") from None
        if length > MAX_BODY:
            raise ApiError("body too large", 413)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        try:
            # Read the body first, whatever the answer: unread bytes would be taken for
            # the next request on this keep-alive connection.
            try:
                self._body = self._read_body()
            except ApiError:
                self.close_connection = True
                raise
            if path == "/" and self.command in ("GET", "HEAD"):
                self._asset("customer.html")
            elif path == "/control" and self.command in ("GET", "HEAD"):
                self._asset("control.html")
            elif path == "/favicon.ico" and self.command in ("GET", "HEAD"):
                # Browsers ask for it on their own; it is not a Graph node.
                self._asset("favicon.svg")
            elif path.startswith("/emulator/static/") and self.command in ("GET", "HEAD"):
                self._asset(path.removeprefix("/emulator/static/"))
            elif path.startswith("/emulator/avatar/") and self.command in ("GET", "HEAD"):
                self._avatar(path)
            elif path.startswith("/emulator/"):
                self._api(path, parse_qs(parts.query))
            else:
                self._graph(path, parts.query)
        except ApiError as error:
            self._json(error.status, {"error": error.message})
        except EmulatorError as error:
            self._json(error.status, {"error": error.message})

    # --- pages -------------------------------------------------------------------------

    def _asset(self, name: str) -> None:
        # Only files that are in assets/ by name: no path walks.
        available = {p.name: p for p in ASSETS.iterdir() if p.is_file()}
        asset = available.get(name)
        if asset is None or asset.suffix not in CONTENT_TYPES:
            raise ApiError("not found", 404)
        self._send(
            200,
            asset.read_bytes(),
            CONTENT_TYPES[asset.suffix],
            {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY"},
        )

    def _avatar(self, path: str) -> None:
        """A profile picture served locally: Graph's profile_pic must be fetchable offline."""
        match = AVATAR_PATH.match(path)
        user = match and self.emulator.platform.users.get((match[1], match[2]))
        if not user:
            raise ApiError("not found", 404)
        initials = (user.first_name[:1] + user.last_name[:1]).upper() or "?"
        color = PALETTE[int(user.psid) % len(PALETTE)]
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">'
            f'<rect width="96" height="96" rx="48" fill="{color}"/>'
            '<text x="48" y="60" font-family="sans-serif" font-size="38" fill="#fff" '
            f'text-anchor="middle">{escape(initials)}</text></svg>'
        )
        self._send(200, svg.encode(), CONTENT_TYPES[".svg"])

    # --- Graph API -------------------------------------------------------------------

    def _graph(self, raw_path: str, raw_query: str) -> None:
        path = VERSION_PREFIX.sub("", raw_path) or "/"
        emulator = self.emulator
        params: dict[str, Any] = {
            k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()
        }
        body = self._body
        if body:
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type == "application/json":
                try:
                    decoded = json.loads(body)
                except ValueError:
                    self._graph_error("Invalid JSON in the request body", path)
                    return
                if not isinstance(decoded, dict):
                    self._graph_error("The request body must be a JSON object", path)
                    return
                params.update(decoded)
            elif content_type in ("application/x-www-form-urlencoded", ""):
                form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                params.update({k: v[-1] for k, v in form.items()})
            else:
                self._graph_error(f"Unsupported request body type {content_type}", path)
                return
        token = params.pop("access_token", None)
        authorization = self.headers.get("Authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if not token and scheme.lower() in ("bearer", "oauth"):
            token = value.strip()
        proof = params.pop("appsecret_proof", None)
        token = token if isinstance(token, str) else None
        proof = proof if isinstance(proof, str) else None
        app_id = emulator.platform.app_for_token(token)

        fault = emulator.graph_faults.take(path, app_id)
        if fault is not None:
            self._graph_fault(fault, path, params, token, proof, app_id)
            return
        result = emulator.graph_call(
            self.command, path, params, access_token=token, appsecret_proof=proof
        )
        self._json(result.status, result.body)

    def _graph_error(self, message: str, path: str) -> None:
        fbtrace = self.emulator.platform.fbtrace_id()
        body = {
            "error": {
                "message": f"(#100) {message}",
                "type": "OAuthException",
                "code": 100,
                "fbtrace_id": fbtrace,
            }
        }
        self.emulator.record_call(
            method=self.command, path=path, app_id=None, status=400, body=body, source="http"
        )
        self._json(400, body)

    def _graph_fault(
        self,
        fault: GraphFault,
        path: str,
        params: dict[str, Any],
        token: str | None,
        proof: str | None,
        app_id: str | None,
    ) -> None:
        emulator = self.emulator
        fbtrace = emulator.platform.fbtrace_id()
        if fault.kind == "timeout":
            if fault.applied:
                # The call takes effect; only its answer is lost.
                emulator.graph_call(
                    self.command, path, params, access_token=token, appsecret_proof=proof
                )
            emulator.record_call(
                method=self.command,
                path=path,
                app_id=app_id,
                status=0,
                body=None,
                source="http",
                fault="timeout (applied)" if fault.applied else "timeout",
            )
            emulator.stopping.wait(fault.seconds)
            # Close without answering: the client sees a read timeout or a dropped connection.
            self.close_connection = True
            return
        if fault.kind == "rate_limit":
            status, body = 400, rate_limit_body(fbtrace)
        else:
            status, body = fault.status, server_error_body(fbtrace)
        emulator.record_call(
            method=self.command,
            path=path,
            app_id=app_id,
            status=status,
            body=body,
            source="http",
            fault=fault.kind,
        )
        self._json(status, body)

    # --- the emulator's JSON API ----------------------------------------------------------

    def _api_body(self) -> dict[str, Any]:
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != "application/json":
            raise ApiError("POST bodies must be application/json", 415)
        raw = self._body
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ApiError("invalid JSON") from None
        if not isinstance(body, dict):
            raise ApiError("the body must be a JSON object")
        return body

    def _api(self, path: str, query: dict[str, list[str]]) -> None:
        emulator = self.emulator
        method = self.command
        if method == "GET":
            if path == "/emulator/api/state":
                self._json(200, emulator.state())
                return
            if path == "/emulator/api/deliveries":
                app_id = query["app_id"][0] if query.get("app_id") else None
                limit = _int((query.get("limit") or ["50"])[0], "limit")
                records = emulator.deliveries(app_id)[-limit:]
                self._json(200, {"deliveries": [d.as_dict() for d in reversed(records)]})
                return
            if path == "/emulator/api/graph-calls":
                limit = _int((query.get("limit") or ["50"])[0], "limit")
                calls = list(emulator.graph_calls)[-limit:]
                self._json(200, {"calls": list(reversed(calls))})
                return
            match = THREAD_PATH.match(path)
            if match and match[3] is None:
                after = _int((query.get("after") or ["0"])[0], "after")
                self._json(200, emulator.thread(match[2], page_id=match[1], after=after))
                return
            raise ApiError("not found", 404)
        if method != "POST":
            raise ApiError("method not allowed", 405)
        body = self._api_body()
        if path == "/emulator/api/users":
            user = emulator.user_create(
                _str(body, "first_name"),
                _str(body, "last_name", required=False),
                page_id=body.get("page_id") or None,
            )
            self._json(201, emulator.platform.user_json(user))
            return
        if path == "/emulator/api/clock":
            seconds = body.get("advance_seconds")
            if seconds is None and body.get("advance_hours") is not None:
                seconds = _float(body["advance_hours"], "advance_hours") * 3600
            seconds = _float(seconds, "advance_seconds")
            if seconds < 0:
                raise ApiError("the clock only moves forward")
            emulator.advance_clock(seconds)
            self._json(
                200,
                {"now": emulator.clock.now_ms(), "offset_seconds": emulator.clock.offset_seconds},
            )
            return
        if path == "/emulator/api/faults/graph":
            kind = body.get("kind")
            if kind not in FAULT_KINDS:
                raise ApiError(f"kind must be one of {', '.join(FAULT_KINDS)}")
            try:
                fault = emulator.fail_next_graph_calls(
                    cast(FaultKind, kind),
                    _int(body.get("count", 1), "count"),
                    status=_int(body.get("status", 500), "status"),
                    seconds=_float(body.get("seconds", 15), "seconds"),
                    applied=bool(body.get("applied", False)),
                    path=body.get("path") or None,
                    app_id=str(body["app_id"]) if body.get("app_id") else None,
                )
            except ValueError as error:
                raise ApiError(str(error)) from None
            self._json(200, {"armed": fault.__dict__})
            return
        if path == "/emulator/api/faults/webhooks":
            emulator.webhook_faults(
                duplicate=_bool_or_none(body, "duplicate"),
                out_of_order=_bool_or_none(body, "out_of_order"),
                app_id=str(body["app_id"]) if body.get("app_id") else None,
            )
            self._json(200, {"webhook_faults": emulator.dispatcher.faults_view()})
            return
        if path == "/emulator/api/faults/clear":
            emulator.graph_faults.clear()
            for key in list(emulator.dispatcher.faults_view()):
                emulator.webhook_faults(
                    duplicate=False, out_of_order=False, app_id=None if key == "*" else key
                )
            self._json(200, {"cleared": True})
            return
        match = APP_PATH.match(path)
        if match:
            if match[2] == "subscribe":
                ok, detail = emulator.subscribe(match[1])
                self._json(200 if ok else 409, {"subscribed": ok, "detail": detail})
            elif match[2] == "callback":
                url = body.get("url")
                if url is not None and not isinstance(url, str):
                    raise ApiError("url must be a string or null")
                emulator.set_callback_url(match[1], url)
                self._json(200, {"callback_url": url or None})
            else:
                emulator.unsubscribe(match[1])
                self._json(200, {"subscribed": False})
            return
        match = PRIMARY_PATH.match(path)
        if match:
            emulator.primary_set(_str(body, "app_id"), page_id=match[1])
            self._json(200, {"primary_app_id": body["app_id"]})
            return
        match = THREAD_PATH.match(path)
        if match and match[3]:
            self._thread_action(match[1], match[2], match[3], body)
            return
        raise ApiError("not found", 404)

    def _thread_action(self, page_id: str, psid: str, action: str, body: dict[str, Any]) -> None:
        emulator = self.emulator
        if action == "messages":
            reply = body.get("quick_reply")
            if isinstance(reply, dict):
                entry = emulator.user_taps_quick_reply(
                    psid, _str(reply, "mid"), _int(reply.get("index"), "index"), page_id=page_id
                )
            else:
                entry = emulator.user_says(psid, _str(body, "text"), page_id=page_id)
            self._json(201, entry)
        elif action == "postbacks":
            entry = emulator.user_taps_button(
                psid, _str(body, "mid"), _int(body.get("index"), "index"), page_id=page_id
            )
            self._json(201, entry)
        elif action == "read":
            self._json(200, emulator.user_reads(psid, page_id=page_id))
        elif action == "take":
            emulator.take_control(
                psid,
                app_id=str(body["app_id"]) if body.get("app_id") else None,
                page_id=page_id,
                metadata=body.get("metadata") if isinstance(body.get("metadata"), str) else None,
            )
            self._json(200, {"owner": emulator.owner(psid, page_id=page_id)})
        elif action == "inbox-reply":
            self._json(201, emulator.inbox_reply(psid, _str(body, "text"), page_id=page_id))
        else:
            raise ApiError("not found", 404)


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ApiError(f"{name} is required")
    return str(value)


def _int(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(f"{name} must be an integer") from None


def _float(value: Any, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ApiError(f"{name} must be a number") from None


def _bool_or_none(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ApiError(f"{name} must be true or false")
    return value
