"""The README's walk-through, played in a fresh world (Redis, Daphne, Celery worker and
beat, the emulator, two Chromium pages): the time from the customer's tap on "Talk to a
human" to the ticket showing in the agent's inbox, against the time to the bot's own
answer to that tap on the customer's page (the baseline), measured in the same run."""

from __future__ import annotations

from playwright.sync_api import sync_playwright

from tests.bench.figures import Figure, Options, median
from tests.browser.support import launch
from tests.browser.test_walkthrough import emulator_world, play_story

DATABASES = ("sqlite",)


def run(options: Options) -> list[Figure]:
    inbox, bot = [], []
    for number in range(1 if options.quick else 3):
        tmp = options.tmp / f"run-{number}"
        tmp.mkdir()
        with emulator_world(tmp) as (emulator, stack), sync_playwright() as playwright:
            browser = launch(playwright)
            found = play_story(browser, emulator, stack)
            browser.close()
        inbox.append(found["ticket_visible_after_tap_s"] * 1000)
        bot.append(found["bot_answer_after_tap_s"] * 1000)
    return [
        Figure(
            "live", options.database, "tap → ticket in the inbox (median)", median(inbox), "ms",
            "tap → the bot's answer", median(bot),
        )
    ]  # fmt: skip
