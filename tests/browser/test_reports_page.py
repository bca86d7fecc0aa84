"""The reports page in Chromium, as a support lead uses it: from the inbox's "Reports"
link to a month of history (tests.support.report_history) in charts, headline figures
and a table per day; per agent; the CSV download; a wrong range; and an agent without
the permission. At a desktop and a phone width; the screenshots are for people to look
at (REPORTS_SHOTS names their folder)."""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.support import login
from tests.support.report_history import count_between, history_seed_on
from tests.support.stack import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
CHARTS = 6


@pytest.fixture(scope="module")
def history(stack) -> dict[str, Any]:
    return history_seed_on(stack)


@pytest.fixture(scope="module")
def lead(stack, history) -> str:
    """A support lead (the permission, not a superuser) on the history's teams: a page on
    a team is visible to the team's members only."""
    teams = [arg for team in history["teams"] for arg in ("--team", team)]
    stack.manage("create_agent", "lead", "--password", PASSWORD, "--lead", *teams)
    return "lead"


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where the screenshots go: REPORTS_SHOTS if set (to look at them), else tmp."""
    folder = Path(os.environ.get("REPORTS_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _reports(context: Any, username: str, width: str = "desktop") -> Any:
    """Logged in through the login page, to the reports through the inbox's link."""
    page = login(context, username, on_page=lambda p: p.set_viewport_size(WIDTHS[width]))
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url(re.compile(r"/reports/(\?.*)?$"))
    expect(page.locator("figure.chart").first).to_be_visible()
    return page


def _range(page: Any) -> tuple[date, date]:
    """The days the report covers, as its form says."""
    return tuple(  # type: ignore[return-value]
        date.fromisoformat(page.locator(f"input[name={name}]").input_value())
        for name in ("from", "to")
    )


def _rows(page: Any) -> list[tuple[str, list[str]]]:
    """The main table's rows: (label, cells)."""
    return [
        (row.locator("th").inner_text().strip(), row.locator("td").all_inner_texts())
        for row in page.locator("#report-table tbody tr").all()
    ]


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_a_lead_sees_the_month_in_charts_figures_and_a_table(context, history, lead, width, shots):
    page = _reports(context, lead, width)

    start, end = _range(page)
    assert (end - start).days + 1 == 30  # the default: the last 30 days
    expected = count_between(history, start, end)
    assert expected > 200, history["handovers_by_day"]  # the history is in the range

    expect(page.locator("figure.chart svg")).to_have_count(CHARTS)
    expect(page.locator(".chart-empty")).to_have_count(0)
    for chart in page.locator("figure.chart").all():
        assert chart.locator("rect.bar").count() > 0, chart.locator("figcaption").inner_text()
    stats = page.locator(".report-stats .stat")
    expect(stats.filter(has_text="handovers")).to_have_text(re.compile(rf"^\s*{expected}\s"))
    expect(stats).to_have_count(7)
    expect(stats.filter(has_text="CSAT 4 or 5")).not_to_contain_text("—")

    rows = _rows(page)
    assert [label for label, _ in rows[:-1]] == [
        date.fromordinal(start.toordinal() + n).isoformat() for n in range(30)
    ]
    label, cells = rows[-1]
    assert (label, cells[0]) == ("Total", str(expected))
    assert sum(int(cells[0]) for _, cells in rows[:-1]) == expected

    # The page itself does not scroll sideways; the wide tables scroll in their box.
    viewport = WIDTHS[width]["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport
    if width == "phone":
        box = page.locator("#report-table").locator("xpath=..")
        assert box.evaluate("e => e.scrollWidth > e.clientWidth")
    page.screenshot(path=str(shots / f"reports-{width}.png"), full_page=True)


def test_per_agent_shows_a_row_per_agent_and_the_total(context, history, lead, shots):
    page = _reports(context, lead)
    start, end = _range(page)

    page.locator("select[name=group]").select_option("agent")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"group=agent"))

    expect(page.get_by_role("heading", name="Per agent")).to_be_visible()
    rows = _rows(page)
    labels = [label for label, _ in rows]
    unassigned = ["Unassigned"] if count_between(history, start, end, "unassigned_by_day") else []
    assert labels == [*sorted(history["agents"].values()), *unassigned, "Total"]
    expected = count_between(history, start, end)
    assert rows[-1][1][0] == str(expected)
    assert sum(int(cells[0]) for _, cells in rows[:-1]) == expected
    expect(page.locator("figure.chart svg")).to_have_count(CHARTS)
    page.screenshot(path=str(shots / "reports-per-agent.png"), full_page=True)


def test_the_csv_download_is_the_table(context, history, lead):
    page = _reports(context, lead)
    start, end = _range(page)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"helpdesk-report-{start}-{end}-day.csv"
    text = Path(download.path()).read_text(encoding="utf-8")

    header, *lines = list(csv.reader(io.StringIO(text)))
    assert header[:2] == ["day", "handovers"]
    assert [line[0] for line in lines[:-1]] == [
        date.fromordinal(start.toordinal() + n).isoformat() for n in range(30)
    ]
    total = dict(zip(header, lines[-1], strict=True))
    assert (total["day"], total["handovers"]) == ("Total", str(count_between(history, start, end)))


def test_a_range_that_ends_before_it_starts_is_refused_in_words(context, lead, shots):
    page = _reports(context, lead)

    response = page.goto("/reports/?from=2026-05-10&to=2026-05-01")

    assert response.status == 400
    expect(page.locator(".form-error")).to_contain_text(
        "The range starts (2026-05-10) after it ends (2026-05-01)."
    )
    expect(page.locator("figure.chart")).to_have_count(0)
    expect(page.locator("#report-table")).to_have_count(0)
    expect(page.get_by_role("link", name="Download CSV")).to_have_count(0)
    page.screenshot(path=str(shots / "reports-refused.png"), full_page=True)


def test_an_agent_without_the_permission_has_no_link_and_is_refused(context, shots):
    page = login(context, "ana")  # made by the stack fixture: no permission

    expect(page.locator(".topbar")).to_be_visible()
    expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    response = page.goto("/reports/")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("The reports are for support leads.")
    expect(page.locator("figure.chart")).to_have_count(0)
    page.screenshot(path=str(shots / "reports-denied.png"), full_page=True)
