"""The pages this branch changed, in Chromium at a desktop and a phone width: the API
docs (local Swagger UI: nothing requested from elsewhere, no policy violation) and the
login page's throttle message."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_api_docs_load_from_our_server_only(context, stack, width, tmp_path):
    requested: list[str] = []
    console: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = login(context, "ana")
    page.on("console", lambda message: console.append(message.text))
    page.set_viewport_size(WIDTHS[width])

    page.goto("/api/v1/docs")

    expect(page.get_by_text("Messenger helpdesk agent API").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/tickets").first).to_be_visible()
    page.screenshot(path=str(tmp_path / f"api-docs-{width}.png"), full_page=False)
    outside = [url for url in requested if not url.startswith(stack.base_url)]
    assert outside == []
    assert [text for text in console if "Content Security Policy" in text] == []
    assert f"{stack.base_url}/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js" in requested


def test_try_it_out_reaches_the_api_with_the_session(context, stack):
    page = login(context, "ana")
    page.goto("/api/v1/docs#/agents/agents_api_agents_list")
    operation = page.locator("#operations-agents-agents_api_agents_list")
    expect(operation).to_be_visible()

    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    expect(
        operation.locator(".live-responses-table tr.response .response-col_status").first
    ).to_have_text("200")


def test_anonymous_visitors_of_the_docs_land_on_the_login_page(context):
    page = context.new_page()

    page.goto("/api/v1/docs")

    expect(page).to_have_url(re.compile(r"/login/\?next=/api/v1/docs$"))


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_login_page_says_when_to_try_again(context, width, tmp_path):
    page = context.new_page()
    page.set_viewport_size(WIDTHS[width])
    page.goto("/login/")
    for n in range(6):
        page.get_by_label("Username").fill(f"someone-{width}")
        page.get_by_label("Password").fill(f"wrong-{n}")
        page.get_by_role("button", name="Log in").click()

    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Too many failed attempts; try again in 15 minutes.")
    page.screenshot(path=str(tmp_path / f"login-throttled-{width}.png"))
