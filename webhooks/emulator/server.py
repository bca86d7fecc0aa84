"""The emulator's HTTP server: the Graph API, the customer and control pages, a JSON API.

Graph API: any path outside /emulator/ that no route below takes, with a version
prefix (`/v23.0/me/messages`) or none (`/me/messages`), answered as Meta does on the
emulator's date (webhooks/graph_versions.py): a version Meta serves answers as itself,
one that has ended as the oldest version still served, no prefix as the oldest served,
and the `facebook-api-version` header says which; a version Meta never had is refused
(400, code 100: Meta's exact words for it are not documented); parameters from the query
string, a JSON body or a form body; the token as `access_token` or `Authorization:
Bearer`; `appsecret_proof` checked. `platform.graph_api` answers:

    POST /me/messages                  Send API: text, attachments, templates, quick
                                       replies, sender_action, metadata, persona_id,
                                       messaging_type/tag, thread_control (CR); a file
                                       as multipart `filedata` with `message` JSON
    POST /me/message_attachments       Attachment Upload API: multipart `message` +
                                       `filedata` (≤ 25 MB) -> {"attachment_id"}
    POST /me/pass_thread_control       recipient, target_app_id, metadata
    POST /me/take_thread_control       recipient, metadata
    POST /me/request_thread_control    recipient, metadata
    POST /me/release_thread_control    recipient, metadata
    POST /me/extend_thread_control     recipient, duration (seconds, ≤ 7 days)
    GET  /me/thread_owner?recipient=   owner and expiration, as far as the caller may see
    GET  /me/secondary_receivers       legacy: the primary receiver only
    GET|POST|DELETE /me/subscribed_apps, GET|POST /me/personas, GET|DELETE /<persona id>
    GET  /me                           the page (id, name, messaging_feature_status)
    GET  /debug_token?input_token=     with an app token (`<app id>|<secret>`): the
                                       token's app, page, validity, scopes and 190 error
    GET  /<PSID>?fields=               user profile (first_name, last_name, profile_pic)

The pages and the JSON API are the table `ROUTES`: one line below for each route, in
the table's order. Pages, files and pictures:

    GET|HEAD /                                               the customer (a Messenger user)
    GET|HEAD /control                                        faults and state
    GET|HEAD /favicon.ico
    GET|HEAD /emulator/static/<file>                         the pages' scripts and styles
    GET|HEAD /emulator/avatar/<file>                         <page>/<psid>.svg: profile_pic
    GET|HEAD /emulator/media/<file>                          <attachment id>: a file an app
                                                             uploaded

JSON API (POST bodies are JSON and need `Content-Type: application/json`, which a
cross-site form cannot send; answers are JSON, errors `{"error": "..."}`; any other
path under /emulator/ is 404, or 405 for a method other than GET and POST):

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
    POST /emulator/api/faults/webhooks                        {duplicate?, out_of_order?,
                                                              late_seconds?, late_echoes_only?,
                                                              app_id?}: late_seconds > 0
                                                              holds echoes (all webhooks if
                                                              late_echoes_only is false)
    POST /emulator/api/faults/clear                           disarm Graph faults, webhook
                                                              faults off
    POST /emulator/api/clock                                  {advance_seconds | advance_hours}
    GET  /emulator/api/deliveries?app_id=&limit=              recent webhook deliveries
    GET  /emulator/api/graph-calls?limit=                     recent Graph calls
    POST /emulator/api/apps/<app_id>/subscribe                handshake, then re-subscribe
    POST /emulator/api/apps/<app_id>/unsubscribe
    POST /emulator/api/apps/<app_id>/callback                 {url}: where its webhooks go
    POST /emulator/api/pages/<page_id>/primary                {app_id}: primary / default app
    POST /emulator/api/pages/<page_id>/mode                   {mode: legacy|cr|cr-zero-config}
    POST /emulator/api/pages/<page_id>/take-allowed           {app_id, allowed}: CR, may take
    POST /emulator/api/pages/<page_id>/requests-refused       {refused}: request answers
                                                              "Handover Protocol APIs disabled"
    POST /emulator/api/pages/<page_id>/thread-control-refused {refused}: Send API refuses
                                                              thread_control
    POST /emulator/api/pages/<page_id>/restricted             {restricted}: sends answer
                                                              10/1893063 until turned off
    POST /emulator/api/pages/<page_id>/apps/<app_id>/token-expired
                                                              {expired}: its calls answer 190/463
    POST /emulator/api/pages/<page_id>/apps/<app_id>/token-reissue
                                                              a new token; the old one 190/460
    POST /emulator/api/pages/<page_id>/apps/<app_id>/permission-revoked
                                                              {revoked}: its sends answer #230
"""

from __future__ import annotations

import datetime
import email.policy
import json
import logging
import re
import sys
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from webhooks import graph_versions
from webhooks.emulator import json_api, pages
from webhooks.emulator.errors import EmulatorError
from webhooks.emulator.faults import GraphFault, rate_limit_body, server_error_body
from webhooks.emulator.platform.uploads import (
    MAX_UPLOAD_BYTES,
    TOO_BIG_MESSAGE,
    TOO_BIG_SUBCODE,
    Upload,
)
from webhooks.emulator.web import ApiError, Reply, Request, Route, find_route, json_object, route

if TYPE_CHECKING:
    from webhooks.emulator.emulator import Emulator

logger = logging.getLogger(__name__)

VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/|$)")
MAX_BODY = 1024 * 1024
# Graph calls may carry a file (multipart `filedata`, at most 25 MB: uploads.py) and
# the form around it; a larger body is refused as Meta does, without being read.
GRAPH_MAX_BODY = MAX_UPLOAD_BYTES + 64 * 1024

# One line per endpoint of the module docstring, in the same order.
ROUTES: list[Route] = [
    route("GET|HEAD", "/", pages.customer_page),
    route("GET|HEAD", "/control", pages.control_page),
    route("GET|HEAD", "/favicon.ico", pages.favicon),
    route("GET|HEAD", "/emulator/static/<file>", pages.static_file),
    route("GET|HEAD", "/emulator/avatar/<file>", pages.avatar),
    route("GET|HEAD", "/emulator/media/<file>", pages.media),
    route("GET", "/emulator/api/state", json_api.state),
    route("POST", "/emulator/api/users", json_api.user_create),
    route("GET", "/emulator/api/threads/<page>/<psid>", json_api.thread),
    route("POST", "/emulator/api/threads/<page>/<psid>/messages", json_api.thread_message),
    route("POST", "/emulator/api/threads/<page>/<psid>/postbacks", json_api.thread_postback),
    route("POST", "/emulator/api/threads/<page>/<psid>/read", json_api.thread_read),
    route("POST", "/emulator/api/threads/<page>/<psid>/take", json_api.thread_take),
    route("POST", "/emulator/api/threads/<page>/<psid>/inbox-reply", json_api.thread_inbox_reply),
    route("POST", "/emulator/api/faults/graph", json_api.faults_graph),
    route("POST", "/emulator/api/faults/webhooks", json_api.faults_webhooks),
    route("POST", "/emulator/api/faults/clear", json_api.faults_clear),
    route("POST", "/emulator/api/clock", json_api.clock_advance),
    route("GET", "/emulator/api/deliveries", json_api.deliveries),
    route("GET", "/emulator/api/graph-calls", json_api.graph_calls),
    route("POST", "/emulator/api/apps/<app_id>/subscribe", json_api.app_subscribe),
    route("POST", "/emulator/api/apps/<app_id>/unsubscribe", json_api.app_unsubscribe),
    route("POST", "/emulator/api/apps/<app_id>/callback", json_api.app_callback),
    route("POST", "/emulator/api/pages/<page_id>/primary", json_api.page_primary),
    route("POST", "/emulator/api/pages/<page_id>/mode", json_api.page_mode),
    route("POST", "/emulator/api/pages/<page_id>/take-allowed", json_api.page_take_allowed),
    route("POST", "/emulator/api/pages/<page_id>/requests-refused", json_api.page_requests_refused),
    route(
        "POST",
        "/emulator/api/pages/<page_id>/thread-control-refused",
        json_api.page_thread_control_refused,
    ),
    route("POST", "/emulator/api/pages/<page_id>/restricted", json_api.page_restricted),
    route(
        "POST",
        "/emulator/api/pages/<page_id>/apps/<app_id>/token-expired",
        json_api.page_app_token_expired,
    ),
    route(
        "POST",
        "/emulator/api/pages/<page_id>/apps/<app_id>/token-reissue",
        json_api.page_app_token_reissue,
    ),
    route(
        "POST",
        "/emulator/api/pages/<page_id>/apps/<app_id>/permission-revoked",
        json_api.page_app_permission_revoked,
    ),
]


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # A restarted emulator must be able to take its port back at once.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request (killed, or gave up) is not our error:
        # no traceback on stderr for it.
        if isinstance(sys.exc_info()[1], ConnectionError):
            logger.debug("emulator: %s went away", client_address)
            return
        super().handle_error(request, client_address)


def make_server(emulator: Emulator, host: str, port: int) -> EmulatorServer:
    return EmulatorServer((host, port), emulator)


class Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    _body = b""
    # The version a Graph call is answered as (its `facebook-api-version` header).
    _answering_version: str | None = None

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
            if self._answering_version is not None:
                self.send_header("facebook-api-version", self._answering_version)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json; charset=UTF-8")

    def _read_body(self, limit: int = MAX_BODY) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError("bad Content-Length") from None
        if length > limit:
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
        self._answering_version = None  # per request, on a keep-alive connection
        parts = urlsplit(self.path)
        path = parts.path
        try:
            # Read the body first, whatever the answer: unread bytes would be taken for
            # the next request on this keep-alive connection.
            found = find_route(ROUTES, self.command, path)
            graph = found is None and not path.startswith("/emulator/")
            try:
                self._body = self._read_body(GRAPH_MAX_BODY if graph else MAX_BODY)
            except ApiError as error:
                self.close_connection = True
                if graph and error.status == 413:
                    self._graph_error(
                        TOO_BIG_MESSAGE.removeprefix("(#100) "), path, subcode=TOO_BIG_SUBCODE
                    )
                    return
                raise
            if found is None and not path.startswith("/emulator/"):
                self._graph(path, parts.query)
                return
            reply = self._call(found, parts.query)
            self._send(reply.status, reply.body, reply.content_type, reply.headers)
        except ApiError as error:
            self._json(error.status, {"error": error.message})
        except EmulatorError as error:
            self._json(error.status, {"error": error.message})

    def _call(self, found: tuple[Route, dict[str, str]] | None, raw_query: str) -> Reply:
        """Run the route's handler; no route under /emulator/: 404, or 405 but for GET
        and POST. A POST body is checked first, even for a path no route takes."""
        if found is None:
            if self.command == "GET":
                raise ApiError("not found", 404)
            if self.command != "POST":
                raise ApiError("method not allowed", 405)
        body: dict[str, Any] = {}
        if self.command == "POST":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            body = json_object(content_type, self._body)
        if found is None:
            raise ApiError("not found", 404)
        matched, args = found
        return matched.handler(Request(self.emulator, args, parse_qs(raw_query), body))

    # --- Graph API -------------------------------------------------------------------

    def _graph(self, raw_path: str, raw_query: str) -> None:
        path = VERSION_PREFIX.sub("", raw_path) or "/"
        emulator = self.emulator
        today = datetime.datetime.fromtimestamp(emulator.clock.now_ms() / 1000, datetime.UTC)
        prefix = VERSION_PREFIX.match(raw_path)
        if prefix is None:
            self._answering_version = graph_versions.served(today.date())[-1]
        else:
            requested = prefix.group(0).lstrip("/")
            self._answering_version = graph_versions.answered_by(requested, today.date())
            if self._answering_version is None:
                self._graph_error(f"Unsupported Graph API version {requested}", path)
                return
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
            elif content_type == "multipart/form-data":
                parts = multipart_fields(self.headers.get("Content-Type") or "", body)
                if parts is None:
                    self._graph_error("Could not read the multipart request body", path)
                    return
                params.update(parts)
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

    def _graph_error(self, message: str, path: str, *, subcode: int | None = None) -> None:
        fbtrace = self.emulator.platform.fbtrace_id()
        error: dict[str, Any] = {"message": f"(#100) {message}", "type": "OAuthException"}
        error["code"] = 100
        if subcode is not None:
            error["error_subcode"] = subcode
        error["fbtrace_id"] = fbtrace
        body = {"error": error}
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
        if fault.applied and fault.kind in ("timeout", "5xx"):
            # The call takes effect (owner changed, webhooks queued); only its answer is
            # lost (timeout) or replaced by a server error (5xx): the outcome is unknown
            # to the client (§9.3).
            emulator.graph_call(
                self.command, path, params, access_token=token, appsecret_proof=proof
            )
        if fault.kind == "timeout":
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
            fault=f"{fault.kind} (applied)"
            if fault.applied and fault.kind == "5xx"
            else fault.kind,
        )
        self._json(status, body)


def multipart_fields(content_type: str, body: bytes) -> dict[str, Any] | None:
    """A multipart/form-data body's fields: text fields as strings, file parts (a
    filename) as `Upload`s. None when it cannot be read."""
    parser = BytesParser(policy=email.policy.HTTP)
    try:
        message = parser.parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
    except (ValueError, UnicodeEncodeError):
        return None
    if not message.is_multipart():
        return None
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            content_type_part = part.get("Content-Type")
            fields[name] = Upload(
                name=filename,
                content_type=part.get_content_type() if content_type_part else "",
                data=data,
            )
        else:
            fields[name] = data.decode(part.get_content_charset() or "utf-8", "replace")
    return fields
