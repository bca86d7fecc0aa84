"""`/api/v1/docs`: Swagger UI served from our static files (a pinned, vendored copy
with its licence), for logged-in agents only, under a policy that allows only self."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

VENDOR = Path(__file__).resolve().parents[3] / "static" / "vendor" / "swagger-ui-5.35.0"
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _served(path: str) -> bytes:
    response = Client().get(path)
    assert response.status_code == 200, path
    return b"".join(response.streaming_content)


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = Client().get("/api/v1/docs")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/api/v1/docs")


def test_a_bearer_token_does_not_open_the_docs_page(agent):
    response = Client(headers={"Authorization": f"Bearer {agent.api_token}"}).get("/api/v1/docs")

    assert response.status_code == 302


def test_agents_get_the_local_swagger_ui_under_a_self_only_policy(agent):
    browser = Client()
    browser.force_login(agent)

    response = browser.get("/api/v1/docs")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == POLICY
    html = response.content.decode()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "/static/vendor/swagger-ui-5.35.0/swagger-ui.css",
        "/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js",
        "/static/agents/apidocs/init.js",
    ]
    assert html.count("<script") == 2
    assert re.search(r"<script>|<style|\\son[a-z]+=|style=", html) is None  # nothing inline
    assert 'data-openapi-url="/api/v1/openapi.json"' in html
    assert "csrftoken" in response.cookies  # "Try it out" writes carry X-CSRFToken


def test_the_vendored_files_are_served_with_their_licence():
    assert _served("/static/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js").startswith(
        b"/*! For license information please see swagger-ui-bundle.js.LICENSE.txt */"
    )
    assert _served("/static/vendor/swagger-ui-5.35.0/swagger-ui.css")
    assert b"Apache License" in (VENDOR / "LICENSE").read_bytes()
    assert (VENDOR / "NOTICE").read_text().startswith("swagger-ui")
    assert (VENDOR / "swagger-ui-bundle.js.LICENSE.txt").exists()


def test_the_openapi_document_stays_public():
    assert Client().get("/api/v1/openapi.json").status_code == 200
