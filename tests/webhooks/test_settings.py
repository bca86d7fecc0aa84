"""Settings from the environment: dev defaults with DEBUG on, a hard failure without secrets.

Django reads its settings once per process, so each case runs helpdesk/settings.py
afresh (runpy) under a patched environment and reads the names it defines. One smoke
test starts a real interpreter, as `manage.py` would.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "helpdesk" / "settings.py"
SECRETS = (
    "SECRET_KEY",
    "MESSENGER_APP_ID",
    "MESSENGER_APP_SECRET",
    "MESSENGER_VERIFY_TOKEN",
    "TOKEN_ENCRYPTION_KEY",
)
PRODUCTION = {
    "SECRET_KEY": "prod-secret-key-value",
    "MESSENGER_APP_ID": "100000000000009",
    "MESSENGER_APP_SECRET": "prod-app-secret-value",
    "MESSENGER_VERIFY_TOKEN": "prod-verify-token-value",
    "TOKEN_ENCRYPTION_KEY": "ZHrq5ngzE-OzlS6cHbEP2-yfGTtDOTgYJWSm0nmWPwQ=",
}
# What the HTTPS settings may be switched with (each one also read from the environment).
HTTPS_VARIABLES = (
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
)


def _unset(name: str) -> bool:
    """What the test process's environment must not lend the settings under test."""
    return name in (
        "DEBUG",
        "SECRET_KEY",
        "DATABASE_URL",
        "TOKEN_ENCRYPTION_KEY",
        *HTTPS_VARIABLES,
    ) or name.startswith("MESSENGER_")


@pytest.fixture
def load(monkeypatch) -> Any:
    """Run helpdesk/settings.py with exactly these variables of ours; returns its names."""

    def load(**env: str) -> dict[str, Any]:
        for name in [n for n in os.environ if _unset(n)]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load


@pytest.fixture
def refusal(load) -> Any:
    """The message of the ImproperlyConfigured (exactly that class) the settings raise."""

    def refusal(**env: str) -> str:
        with pytest.raises(ImproperlyConfigured) as info:
            load(**env)
        assert type(info.value) is ImproperlyConfigured
        return str(info.value)

    return refusal


def _db(settings: dict[str, Any]) -> dict[str, Any]:
    db = settings["DATABASES"]["default"]
    return {k: db.get(k) for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")}


@pytest.mark.parametrize("debug", [None, "", "0", "false", "off", "no"])
def test_without_debug_and_secrets_settings_refuse_to_load(refusal, debug):
    env = {} if debug is None else {"DEBUG": debug}

    message = refusal(**env)

    for name in SECRETS:
        assert name in message


@pytest.mark.parametrize("missing", [("SECRET_KEY",), ("MESSENGER_APP_SECRET",), SECRETS[1:]])
def test_the_error_names_exactly_the_missing_secrets_and_no_values(refusal, missing):
    present = {k: v for k, v in PRODUCTION.items() if k not in missing}

    message = refusal(DEBUG="0", **present)

    named = message.rsplit(": ", 1)[1].split(", ")
    assert named == list(missing)
    for value in present.values():
        assert value not in message


def test_with_all_secrets_production_settings_load(load):
    settings = load(DEBUG="0", **PRODUCTION)

    assert settings["DEBUG"] is False
    for name, value in PRODUCTION.items():
        assert settings[name] == value
    assert "testserver" not in settings["ALLOWED_HOSTS"]


def test_with_debug_on_settings_load_with_dev_defaults(load):
    settings = load(DEBUG="1")

    assert settings["DEBUG"] is True
    assert settings["SECRET_KEY"].startswith("dev-only-insecure")
    assert (
        settings["MESSENGER_APP_ID"],
        settings["MESSENGER_APP_SECRET"],
        settings["MESSENGER_VERIFY_TOKEN"],
    ) == ("100000000000001", "dev-app-secret", "dev-verify-token")
    assert "testserver" in settings["ALLOWED_HOSTS"]
    assert _db(settings)["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["DATABASES"]["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("debug", ["1", "true", "TRUE", "yes", "on"])
def test_debug_accepts_the_usual_true_spellings(load, debug):
    assert load(DEBUG=debug)["DEBUG"] is True


def test_database_url_selects_postgresql(load):
    settings = load(DEBUG="0", DATABASE_URL="postgres://u:p@h:5432/db", **PRODUCTION)

    assert _db(settings) == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "db",
        "USER": "u",
        "PASSWORD": "p",
        "HOST": "h",
        "PORT": 5432,
    }
    assert "transaction_mode" not in settings["DATABASES"]["default"].get("OPTIONS", {})


@pytest.mark.parametrize("debug", ["maybe", "2", "ture"])
def test_a_non_boolean_debug_is_a_clear_error(refusal, debug):
    message = refusal(DEBUG=debug, **PRODUCTION)

    assert "DEBUG must be a boolean" in message
    assert repr(debug) in message


# --- a real interpreter ----------------------------------------------------------------

SETUP = """
import json, sys
import django
try:
    django.setup()
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__module__}.{type(exc).__name__}",
                      "message": str(exc)}))
    sys.exit(3)
print(json.dumps({"error": None}))
"""


def test_production_settings_refuse_to_start_without_secrets():
    base = {k: v for k, v in os.environ.items() if not _unset(k)}
    result = subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "helpdesk.settings", "DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip(), result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert (result.returncode, answer["error"]) == (
        3,
        "django.core.exceptions.ImproperlyConfigured",
    )
    for name in SECRETS:
        assert name in answer["message"]


# --- HTTPS and the token key --------------------------------------------------------------


def test_production_turns_every_https_setting_on_by_default(load):
    settings = load(DEBUG="0", **PRODUCTION)

    assert {name: settings[name] for name in HTTPS_VARIABLES} == {
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    }


def test_development_leaves_https_off(load):
    settings = load(DEBUG="1")

    assert {name: settings[name] for name in HTTPS_VARIABLES} == {
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_each_https_setting_is_read_from_the_environment(load):
    settings = load(
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="off",
        SECURE_HSTS_SECONDS="60",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
        SECURE_HSTS_PRELOAD="no",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme",
        **PRODUCTION,
    )

    assert {name: settings[name] for name in HTTPS_VARIABLES} == {
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_HSTS_SECONDS": 60,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_SCHEME", "https"),
    }
    # Empty is "the default", as everywhere in .env.example; `none` turns it off.
    proxy = load(DEBUG="0", SECURE_PROXY_SSL_HEADER="", **PRODUCTION)["SECURE_PROXY_SSL_HEADER"]
    assert proxy == ("HTTP_X_FORWARDED_PROTO", "https")
    assert (
        load(DEBUG="0", SECURE_PROXY_SSL_HEADER="none", **PRODUCTION)["SECURE_PROXY_SSL_HEADER"]
        is None
    )


def test_a_malformed_token_key_is_a_clear_error_without_its_value(refusal):
    message = refusal(DEBUG="0", **{**PRODUCTION, "TOKEN_ENCRYPTION_KEY": "not-a-fernet-key"})

    assert "TOKEN_ENCRYPTION_KEY must be Fernet keys" in message
    assert "not-a-fernet-key" not in message


def test_debug_has_a_development_token_key(load):
    assert load(DEBUG="1")["TOKEN_ENCRYPTION_KEY"].startswith("dev-only-")


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    base = {k: v for k, v in os.environ.items() if not _unset(k)}
    env = {
        **base,
        **PRODUCTION,
        "SECRET_KEY": "prod-" + "k3y-V4lu3-" * 6,  # Django wants 50+ varied characters
        "DEBUG": "0",
        "ALLOWED_HOSTS": "helpdesk.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


# --- .env.example and the README ------------------------------------------------------------


def _example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_variable_the_settings_read_is_documented():
    read = set(re.findall(r'env(?:_bool|_int)?\(\s*"([A-Z_]+)"', SETTINGS.read_text()))
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()

    assert {"TOKEN_ENCRYPTION_KEY", "SECURE_SSL_REDIRECT", "API_RATE_LIMIT_PER_MINUTE"} <= read
    assert sorted(n for n in read if not re.search(rf"^#? ?{n}=", example, re.M)) == []
    assert sorted(n for n in read if f"`{n}`" not in readme) == []


def test_the_example_environment_loads_as_is(load):
    settings = load(**_example())

    assert settings["DEBUG"] is True
    assert settings["TOKEN_ENCRYPTION_KEY"].startswith("dev-only-")
    assert settings["SECURE_SSL_REDIRECT"] is False


def test_logs_are_json_in_production_and_plain_with_debug(load, refusal):
    production = load(DEBUG="0", **PRODUCTION)
    assert production["LOG_FORMAT"] == "json"
    assert production["LOGGING"]["handlers"]["console"]["formatter"] == "json"
    assert load(DEBUG="1")["LOGGING"]["handlers"]["console"]["formatter"] == "plain"
    assert load(DEBUG="0", LOG_FORMAT="plain", **PRODUCTION)["LOG_FORMAT"] == "plain"
    assert refusal(DEBUG="1", LOG_FORMAT="xml") == "LOG_FORMAT must be json or plain, not 'xml'"
