"""The customer and control pages, their static files, and users' profile pictures.

Everything is served from `assets/` by file name, with a strict Content-Security-Policy.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from webhooks.emulator.web import ApiError, Reply, Request

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
AVATAR_FILE = re.compile(r"(\d+)/(\d+)\.svg")
PALETTE = ("#4f46e5", "#0891b2", "#059669", "#d97706", "#db2777", "#7c3aed")


def asset(name: str) -> Reply:
    """A file of assets/ by its name (404 otherwise)."""
    # Only files that are in assets/ by name: no path walks.
    available = {p.name: p for p in ASSETS.iterdir() if p.is_file()}
    found = available.get(name)
    if found is None or found.suffix not in CONTENT_TYPES:
        raise ApiError("not found", 404)
    return Reply(
        200,
        found.read_bytes(),
        CONTENT_TYPES[found.suffix],
        {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY"},
    )


def customer_page(request: Request) -> Reply:
    return asset("customer.html")


def control_page(request: Request) -> Reply:
    return asset("control.html")


def favicon(request: Request) -> Reply:
    # Browsers ask for it on their own; it is not a Graph node.
    return asset("favicon.svg")


def static_file(request: Request) -> Reply:
    return asset(request.args["file"])


def avatar(request: Request) -> Reply:
    """A profile picture served locally: Graph's profile_pic must be fetchable offline."""
    match = AVATAR_FILE.fullmatch(request.args["file"])
    user = match and request.emulator.platform.users.get((match[1], match[2]))
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
    return Reply(200, svg.encode(), CONTENT_TYPES[".svg"])


# What the customer page may show inline; anything else is offered as a download.
INLINE_MEDIA = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def media(request: Request) -> Reply:
    """A file an app uploaded (`platform.uploads`), by its attachment id."""
    found = request.emulator.platform.state.uploads.get(request.args["file"])
    if found is None:
        raise ApiError("not found", 404)
    upload = found[1]
    content_type = upload.content_type or "application/octet-stream"
    inline = content_type in INLINE_MEDIA
    name = re.sub(r"[^\w. -]", "_", upload.name) or "file"
    return Reply(
        200,
        upload.data,
        content_type if inline else "application/octet-stream",
        {
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
        },
    )
