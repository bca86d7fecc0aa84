"""What the emulator delivered to the helpdesk, counted on the emulator's side.

The emulator calls `Ledger.observe` once each webhook delivery is settled. A delivery
answered 2xx is acknowledged: from then on the helpdesk owes every event in it. Each
event is known by its dedupe key (`webhooks.events`: `message:<mid>`, `echo:<mid>`,
page + PSID + timestamp + owner for handovers, the watermark for receipts), so that a
delivery sent twice (duplicate fault, a retry after a lost answer) owes its events once.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field

from webhooks.emulator.delivery_records import Delivery
from webhooks.parsing import parse_delivery

MESSAGE_KINDS = ("message", "echo", "postback")


@dataclass
class Ledger:
    app_id: str
    events_acked: int = 0  # events in POSTs answered 2xx, repeats included
    posts_acked: int = 0
    # dedupe key -> kind, for every event acknowledged at least once
    acked: dict[str, str] = field(default_factory=dict)
    # mid -> kind, for the messages, echoes and postbacks acknowledged
    mids: dict[str, str] = field(default_factory=dict)
    # keys of events in deliveries that failed for good (never acknowledged)
    unacked: set[str] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)  # distinct acked, by kind
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, delivery: Delivery) -> None:
        if delivery.app_id != self.app_id:
            return
        events = parse_delivery(json.loads(delivery.body))
        with self._lock:
            if delivery.status != "delivered":
                self.unacked.update(e.key for e in events)
                return
            self.posts_acked += 1
            self.events_acked += len(events)
            for event in events:
                if event.key not in self.acked:
                    self.kinds[event.kind] += 1
                self.acked[event.key] = event.kind
                mid = getattr(event, "mid", "")
                if event.kind in MESSAGE_KINDS and mid:
                    self.mids[mid] = event.kind

    def snapshot(self) -> tuple[int, int]:
        """(events acknowledged with repeats, distinct events acknowledged)."""
        with self._lock:
            return self.events_acked, len(self.acked)
