"""`make bench`: how fast, measured (the tests only assert that things happen).

    python -m tests.bench [--runs N]

Live updates: the README's walk-through (tests/browser/test_walkthrough.py) is played N
times, each in a fresh world (Redis, Daphne, Celery worker and beat, the emulator and
two Chromium pages); each run records the time from the customer's tap on "Talk to a
human" to the ticket showing in the agent's inbox, and the time to the bot's own answer
to that tap on the customer's page, measured in the same run. The second is the
baseline: the report gives the helpdesk's figure as a ratio to it, which holds on a
slow machine as well as on a fast one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.support import launch
from tests.browser.test_walkthrough import emulator_world, play_story


def live_updates(runs: int) -> list[dict[str, float]]:
    results = []
    for _ in range(runs):
        with (
            tempfile.TemporaryDirectory() as tmp,
            emulator_world(Path(tmp)) as (emulator, stack),
            sync_playwright() as playwright,
        ):
            browser = launch(playwright)
            found = play_story(browser, emulator, stack)
            browser.close()
        results.append(
            {
                "inbox": found["ticket_visible_after_tap_s"],
                "bot": found["bot_answer_after_tap_s"],
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="walk-throughs to play (3)")
    args = parser.parse_args()
    results = live_updates(args.runs)
    inbox = statistics.median(r["inbox"] for r in results)
    bot = statistics.median(r["bot"] for r in results)
    print(f"live updates, median of {len(results)} walk-throughs:")
    print(f"  tap -> the bot's answer on the customer's page (baseline)  {bot:7.3f} s")
    print(
        f"  tap -> the ticket in the agent's inbox                     {inbox:7.3f} s"
        f"  ({inbox / bot:.2f}x the baseline)"
    )
    for number, result in enumerate(results, 1):
        print(f"  run {number}: inbox {result['inbox']:.3f} s, bot {result['bot']:.3f} s")


if __name__ == "__main__":
    main()
