"""Screenshots of the reports page for the README:
`python -m tests.browser.reports_screenshots [DIR]`.

Starts the real stack (as the browser tests do), writes a month of history into it
(tests.support.report_history), logs in as a support lead (the permission, not a
superuser) and photographs /reports/ with Debian's Chromium into DIR (default
docs/screenshots/):

    reports.png         1280 px wide: the filters, the headline figures, the six charts
                        and the first days of the table
    reports-phone.png   390 px wide (a phone): the filters, the figures, the first charts
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import expect, sync_playwright

from tests.browser.support import launch, login, new_context
from tests.support.stack import PASSWORD, ROOT, Stack, fake_graph_stack

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TABLE_SHOWN = 260  # px of the table under the charts, in the desktop picture


def _reports(context: Any) -> Any:
    page = login(context, "lead")
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url(re.compile(r"/reports/$"))
    expect(page.locator("figure.chart svg")).to_have_count(6)
    page.evaluate("document.fonts.ready.then(() => true)")
    page.mouse.move(0, 0)
    return page


def _bottom(page: Any, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    return box["y"] + box["height"]


def _history(stack: Stack) -> dict[str, Any]:
    """The history, written in the stack's database by manage.py (this process has no
    Django set up: tests.support.report_history imports the models)."""
    output = stack.manage(
        "shell",
        "-c",
        "from tests.support.report_history import history_seed_json; "
        "print(history_seed_json('{}'))",
    )
    return json.loads(output.split("HISTORY ", 1)[1])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, fake_graph_stack(Path(tmp)) as stack:
        history = _history(stack)
        teams = [arg for team in history["teams"] for arg in ("--team", team)]
        stack.manage("create_agent", "lead", "--password", PASSWORD, "--lead", *teams)
        with sync_playwright() as playwright:
            browser = launch(playwright)

            page = _reports(new_context(browser, stack, viewport=DESKTOP))
            height = page.locator(".report-table").first.bounding_box()["y"] + TABLE_SHOWN
            path = out / "reports.png"
            page.screenshot(
                path=str(path),
                full_page=True,
                clip={"x": 0, "y": 0, "width": DESKTOP["width"], "height": height},
                animations="disabled",
                caret="hide",
            )
            written.append(path)

            phone = new_context(browser, stack, viewport=PHONE, is_mobile=True, has_touch=True)
            page = _reports(phone)
            height = _bottom(page, "figure.chart >> nth=1") + 12
            path = out / "reports-phone.png"
            page.screenshot(
                path=str(path),
                full_page=True,
                clip={"x": 0, "y": 0, "width": PHONE["width"], "height": height},
                animations="disabled",
                caret="hide",
            )
            written.append(path)
            browser.close()
    print(
        f"{history['handovers']} handovers from {history['start']} to {history['end']}; "
        "screenshots:"
    )
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
