"""Screenshots of the README's walk-through:
`python -m tests.browser.walkthrough_screenshots [DIR]`.

Starts the same world as tests/browser/test_walkthrough.py (Redis, Daphne, Celery worker
and beat, the Messenger Platform emulator with its demo bot), plays the same story in
two Chromium pages (the customer on the emulator's page, the agent in the inbox), with
the same checks, and photographs it into DIR (default docs/screenshots/):

    walkthrough-1-bot.png           the customer chatting with the bot
    walkthrough-2-ticket.png        the new waiting ticket in the agent's inbox
    walkthrough-3-reply.png         the agent's conversation view after replying
    walkthrough-4-customer.png      the agent's reply on the customer's page
    walkthrough-5-back-to-bot.png   after the close: the bot answering again
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from tests.browser.support import launch
from tests.browser.test_walkthrough import emulator_world, play_story
from tests.support.stack import ROOT


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def snap(name: str, page: Any) -> None:
        # The pages change by themselves (polling, live updates, relative times): wait
        # until fonts are in and nothing is in flight, then take the picture.
        page.evaluate("document.fonts.ready.then(() => true)")
        page.mouse.move(0, 0)  # no hover effect on what was just clicked
        path = out / f"{name}.png"
        page.screenshot(path=str(path), animations="disabled", caret="hide")
        written.append(path)

    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator_world(Path(tmp)) as (emulator, stack),
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        found = play_story(browser, emulator, stack, snap=snap)
        browser.close()
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    print(
        f"the ticket showed in the inbox {found['ticket_visible_after_tap_s']:.3f} s after the tap"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
