"""The inbox pages: login, logout, the page shell, its static files and headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

STATIC = Path(__file__).resolve().parents[2] / "static"
# The inbox's ES modules (no build step) and stylesheets, as the browser asks for them.
SCRIPTS = sorted(f"/static/{p.relative_to(STATIC)}" for p in (STATIC / "agents").rglob("*.js"))
STYLES = sorted(f"/static/{p.relative_to(STATIC)}" for p in (STATIC / "agents").rglob("*.css"))


def static_text(path: str) -> str:
    return b"".join(Client().get(path).streaming_content).decode()


def test_the_inbox_needs_a_login():
    response = Client().get("/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/")
    response = Client().get("/tickets/7/")
    assert (response.status_code, response["Location"]) == (302, "/login/?next=/tickets/7/")


def test_login_page_has_a_csrf_protected_form(agent):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/")
    assert page.status_code == 200
    assert b'name="csrfmiddlewaretoken"' in page.content
    credentials = {"username": "ana", "password": "pw-12345678"}
    assert browser.post("/login/", credentials).status_code == 403  # no token

    token = browser.cookies["csrftoken"].value
    response = browser.post("/login/", {**credentials, "csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert browser.get("/").status_code == 200


def test_wrong_password_says_so(agent):
    response = Client().post("/login/", {"username": "ana", "password": "wrong"})
    assert response.status_code == 200
    assert b"didn't match" in response.content
    assert "_auth_user_id" not in Client().session


def test_login_does_not_redirect_off_site(agent):
    response = Client().post(
        "/login/?next=https://evil.example/", {"username": "ana", "password": "pw-12345678"}
    )
    assert response["Location"] == "/"


def test_logout_is_a_post_with_csrf(agent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(agent)
    assert browser.get("/logout/").status_code == 405
    assert browser.post("/logout/").status_code == 403
    browser.get("/")  # sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post("/logout/", {"csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert browser.get("/").status_code == 302


def test_the_inbox_page_is_a_shell_with_one_script_and_no_inline_code(agent):
    browser = Client()
    browser.force_login(agent)
    response = browser.get("/tickets/42/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ticket-id="42"' in html
    assert '<script type="module" src="/static/agents/inbox/main.js"></script>' in html
    assert html.count("<script") == 1
    assert re.search(r"\son[a-z]+=", html) is None  # no onclick= and the like
    assert "csrftoken" in response.cookies  # for the X-CSRFToken header of API calls
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self' ws://testserver" in policy
    assert "frame-ancestors 'none'" in policy


def test_no_page_loads_anything_from_outside(agent):
    browser = Client()
    browser.force_login(agent)
    pages = [browser.get("/"), Client().get("/login/"), browser.get("/api/v1/docs")]
    assert [page.status_code for page in pages] == [200, 200, 200]
    for html in (page.content.decode() for page in pages):
        assert re.search(r'(src|href|action)="(https?:)?//', html) is None
    # The vendored Swagger UI names outside URLs in its code (links it shows, a validator
    # it is told not to use): the docs page's policy is what keeps it in (test_api_docs).
    assert "default-src 'self'" in pages[2]["Content-Security-Policy"]
    assert "/static/agents/inbox/main.js" in SCRIPTS
    for path in SCRIPTS + STYLES:
        text = static_text(path)
        for outside in ("http://", "https://", "@import", "url("):
            assert outside not in text, (path, outside)


@pytest.mark.parametrize(
    "path,content_type",
    [(path, "text/javascript") for path in SCRIPTS] + [(path, "text/css") for path in STYLES],
)
def test_static_files_are_served_by_whitenoise(path, content_type):
    response = Client().get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response.__class__.__name__ == "WhiteNoiseFileResponse"


@pytest.mark.parametrize("path", SCRIPTS)
def test_the_script_never_parses_data_as_html(path):
    script = static_text(path)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
