"""The Graph API versions Meta serves, and when each one ends.

Meta keeps a version for at least two years, and ends it two years after the next one
came out; it announces the end date in its changelog once the next version is released
("Graph API changelog: versions", read 2026-12-01; messenger-platform.md §9.6). A call to
a version that has ended is answered by the oldest version still served (the answer's
`facebook-api-version` header says which), so nothing fails on the day: calls just start
behaving as a newer version. The helpdesk pins one version (settings.GRAPH_API_VERSION),
`verdict` says in words how long it has, and the emulator serves what Meta serves.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

VERSION_FORMAT = re.compile(r"^v\d+\.\d+$")
# Warn this long before a pinned version ends.
ENDING_SOON = datetime.timedelta(days=120)


@dataclass(frozen=True)
class GraphVersion:
    name: str
    released: str  # as Meta's changelog gives it (a month only where the day is not known)
    ends: datetime.date | None  # None: no end announced yet


# Newest first. Update when Meta releases a version or announces an end.
KNOWN: tuple[GraphVersion, ...] = (
    GraphVersion("v27.0", "2026-11", None),
    GraphVersion("v26.0", "2026-07-29", None),
    GraphVersion("v25.0", "2026-02-18", datetime.date(2028, 7, 29)),
    GraphVersion("v24.0", "2025-10-08", datetime.date(2028, 2, 18)),
    GraphVersion("v23.0", "2025-05-29", datetime.date(2027, 10, 8)),
    GraphVersion("v22.0", "2025-01-21", datetime.date(2027, 5, 20)),
    GraphVersion("v21.0", "2024-10-02", datetime.date(2027, 1, 21)),
    GraphVersion("v20.0", "2024-05-21", datetime.date(2026, 9, 24)),
    GraphVersion("v19.0", "2024-01-23", datetime.date(2026, 5, 21)),
)
_BY_NAME = {version.name: version for version in KNOWN}


def known(name: str) -> GraphVersion | None:
    return _BY_NAME.get(name)


def served(today: datetime.date) -> list[str]:
    """The versions Meta serves on `today`, newest first."""
    return [v.name for v in KNOWN if v.ends is None or today < v.ends]


def answered_by(name: str, today: datetime.date) -> str | None:
    """The version that answers a call to `name` on `today`: itself while it is served,
    the oldest served version once it has ended; None for a version Meta never had."""
    version = known(name)
    if version is None:
        return None
    if version.ends is None or today < version.ends:
        return name
    return served(today)[-1]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str  # plain words, with what to do


def verdict(name: str, today: datetime.date) -> Verdict:
    """What an admin should know about running on version `name` on `today`."""
    version = known(name)
    latest = KNOWN[0].name
    if version is None:
        return Verdict(
            False,
            f"{name} is not a Graph API version this helpdesk knows of (the newest it "
            f"knows is {latest}). Set GRAPH_API_VERSION to a version Meta serves.",
        )
    if version.ends is None:
        return Verdict(True, f"{name} is served; Meta has not announced its end yet.")
    if today >= version.ends:
        return Verdict(
            False,
            f"{name} ended on {version.ends:%d %b %Y}: Meta answers its calls as "
            f"{answered_by(name, today)}. Set GRAPH_API_VERSION to {latest} after checking "
            "Meta's changelog.",
        )
    if version.ends - today <= ENDING_SOON:
        return Verdict(
            False,
            f"{name} ends on {version.ends:%d %b %Y}, in {(version.ends - today).days} "
            f"days. Move GRAPH_API_VERSION to {latest} before then.",
        )
    return Verdict(True, f"{name} is served until {version.ends:%d %b %Y} (announced by Meta).")
