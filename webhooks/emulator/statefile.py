"""The emulator's world on disk, so that a restart (`make run` again, or its supervisor
restarting a crashed emulator) keeps what the helpdesk's database mirrors.

`Emulator(..., state_dir=DIR)` keeps two files there, each replaced atomically:

    state.json   the users, their threads (owner, windows, transcript), personas, the
                 pages' primary / default app, the id counters and the clock's offset;
                 written after every change
    clock.json   {"offset_seconds": ...}: how far the clock was moved forward, for the
                 helpdesk's development clock (helpdesk/clock.py, DEV_CLOCK_FILE)

Not kept: armed faults, page-level faults, reissued tokens, webhooks in flight,
subscriptions and callback URLs, and the page's setup as switched on the control page
(mode, who may take, refused requests): the command line says those, and a world belongs
to the modes the command line gave, whatever they were switched to since.

A file written for other pages or apps, or one that cannot be read, is
moved aside (`state.json.old`) and the emulator starts a new world, whose PSIDs are drawn
at random so that they are never those of an earlier world: a helpdesk that still has
contacts of the old one sees they are unknown (`manage.py demo_seed --emulator-url`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from webhooks.emulator.clock import ManualClock
from webhooks.emulator.config import EmulatorConfig
from webhooks.emulator.platform.state import PlatformState, Thread, User

logger = logging.getLogger(__name__)

VERSION = 1
STATE_FILE = "state.json"
CLOCK_FILE = "clock.json"


def world_key(config: EmulatorConfig, modes: dict[str, str] | None = None) -> dict[str, Any]:
    """What a saved world belongs to: its pages (and their modes as started, `modes`
    when given) and apps."""
    modes = modes or {}
    return {
        "pages": sorted([p.page_id, modes.get(p.page_id, p.mode)] for p in config.pages),
        "apps": sorted(a.app_id for a in config.apps),
    }


def new_world_first_psid() -> int:
    """The first PSID of a new world: 16 digits, like Meta's, never an earlier world's."""
    return random.SystemRandom().randrange(10**15, 9 * 10**15)


def snapshot(state: PlatformState) -> dict[str, Any]:
    """The world as JSON-able data. The caller holds `Platform.lock`."""
    return {
        "version": VERSION,
        "world": world_key(state.config, state.initial_modes),
        "clock_offset_seconds": state.clock.offset_seconds,
        "seq": state.seq,
        "next_psid": state.next_psid,
        "next_id": state.next_id,
        # A default app put aside by a switch to zero-config is the page's for a restart.
        "primary_app_ids": {
            p.page_id: p.primary_app_id or state.previous_primary.get(p.page_id)
            for p in state.pages.values()
        },
        "users": [asdict(u) for u in state.users.values()],
        "threads": [asdict(t) for t in state.threads.values()],
        "personas": state.personas,
        "reusable_attachments": sorted(state.reusable_attachments),
    }


def restore(state: PlatformState, data: dict[str, Any]) -> None:
    """Put a snapshot's world into a new state (no users yet). The caller holds the lock."""
    state.seq = data["seq"]
    state.next_psid = data["next_psid"]
    state.next_id = data["next_id"]
    for page_id, app_id in data["primary_app_ids"].items():
        if app_id is not None and state.pages[page_id].mode != "cr-zero-config":
            state.pages[page_id].primary_app_id = app_id
    for fields in data["users"]:
        user = User(**fields)
        state.users[(user.page_id, user.psid)] = user
    for fields in data["threads"]:
        thread = Thread(**fields)
        state.threads[(thread.page_id, thread.psid)] = thread
    state.personas.update(data["personas"])
    state.reusable_attachments.update(data["reusable_attachments"])


class StateDir:
    """The directory of one emulator's files; `save` writes only what changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved = ""
        self._saved_offset: float | None = None

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def clock_file(self) -> Path:
        return self.path / CLOCK_FILE

    def load(self, config: EmulatorConfig) -> dict[str, Any] | None:
        """The saved world of this configuration; None (and the file moved aside, with
        a log line) when there is none, it is for another setup, or it cannot be read."""
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        problem, data = "", None
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            problem = "is not a JSON object"
        elif decoded.get("version") != VERSION:
            problem = "is of another version"
        elif decoded.get("world") != world_key(config):
            problem = "is for other pages or apps"
        else:
            data = cast(dict[str, Any], decoded)
            try:  # into a scratch state: a world that does not restore is not used
                restore(PlatformState(copy.deepcopy(config), ManualClock(0)), data)
            except (KeyError, TypeError, ValueError, AttributeError):
                problem = "cannot be read"
        if problem or data is None:
            aside = self.state_file.with_name(STATE_FILE + ".old")
            os.replace(self.state_file, aside)
            logger.warning(
                "emulator: %s %s; moved to %s, starting a new world",
                self.state_file,
                problem,
                aside.name,
            )
            return None
        self._saved = text
        return data

    def save(self, data: dict[str, Any]) -> None:
        """Write the snapshot (and the clock's offset) if they changed since last time."""
        self.path.mkdir(parents=True, exist_ok=True)
        offset = float(data["clock_offset_seconds"])
        if offset != self._saved_offset:
            _write(self.clock_file, json.dumps({"offset_seconds": offset}))
            self._saved_offset = offset
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        if text != self._saved:
            _write(self.state_file, text)
            self._saved = text


def _write(path: Path, text: str) -> None:
    """Replace the file at once: a reader (or a crash) never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
