"""Settings from the environment: dev defaults with DEBUG on, a hard failure without secrets.

Each case imports `helpdesk.settings` in a fresh interpreter, since settings are read once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("SECRET_KEY", "MESSENGER_APP_ID", "MESSENGER_APP_SECRET", "MESSENGER_VERIFY_TOKEN")
PRODUCTION = {
    "SECRET_KEY": "prod-secret-key-value",
    "MESSENGER_APP_ID": "100000000000009",
    "MESSENGER_APP_SECRET": "prod-app-secret-value",
    "MESSENGER_VERIFY_TOKEN": "prod-verify-token-value",
}

SCRIPT = """
import json, sys
import django
from django.conf import settings
try:
    django.setup()
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__module__}.{type(exc).__name__}",
                      "message": str(exc)}))
    sys.exit(3)
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "MESSENGER_APP_ID": settings.MESSENGER_APP_ID,
    "MESSENGER_APP_SECRET": settings.MESSENGER_APP_SECRET,
    "MESSENGER_VERIFY_TOKEN": settings.MESSENGER_VERIFY_TOKEN,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "db": {k: db.get(k) for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")},
    "db_options": db.get("OPTIONS", {}),
}))
"""

IMPROPERLY_CONFIGURED = "django.core.exceptions.ImproperlyConfigured"


def _load(**env: str) -> tuple[int, dict[str, Any]]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL") and not k.startswith("MESSENGER_")
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "helpdesk.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("debug", [None, "", "0", "false", "off", "no"])
def test_without_debug_and_secrets_settings_refuse_to_load(debug):
    env = {} if debug is None else {"DEBUG": debug}

    code, answer = _load(**env)

    assert code == 3
    assert answer["error"] == IMPROPERLY_CONFIGURED
    for name in SECRETS:
        assert name in answer["message"]


@pytest.mark.parametrize("missing", [("SECRET_KEY",), ("MESSENGER_APP_SECRET",), SECRETS[1:]])
def test_the_error_names_exactly_the_missing_secrets_and_no_values(missing):
    present = {k: v for k, v in PRODUCTION.items() if k not in missing}

    code, answer = _load(DEBUG="0", **present)

    assert code == 3
    assert answer["error"] == IMPROPERLY_CONFIGURED
    named = answer["message"].rsplit(": ", 1)[1].split(", ")
    assert named == list(missing)
    for value in present.values():
        assert value not in answer["message"]


def test_with_all_secrets_production_settings_load():
    code, answer = _load(DEBUG="0", **PRODUCTION)

    assert code == 0
    assert answer["DEBUG"] is False
    for name, value in PRODUCTION.items():
        assert answer[name] == value
    assert "testserver" not in answer["ALLOWED_HOSTS"]


def test_with_debug_on_settings_load_with_dev_defaults():
    code, answer = _load(DEBUG="1")

    assert code == 0
    assert answer["DEBUG"] is True
    assert answer["SECRET_KEY"].startswith("dev-only-insecure")
    assert (
        answer["MESSENGER_APP_ID"],
        answer["MESSENGER_APP_SECRET"],
        answer["MESSENGER_VERIFY_TOKEN"],
    ) == ("100000000000001", "dev-app-secret", "dev-verify-token")
    assert "testserver" in answer["ALLOWED_HOSTS"]
    assert answer["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert answer["db_options"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.parametrize("debug", ["1", "true", "TRUE", "yes", "on"])
def test_debug_accepts_the_usual_true_spellings(debug):
    code, answer = _load(DEBUG=debug)

    assert (code, answer["DEBUG"]) == (0, True)


def test_database_url_selects_postgresql():
    code, answer = _load(DEBUG="0", DATABASE_URL="postgres://u:p@h:5432/db", **PRODUCTION)

    assert code == 0
    assert answer["db"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "db",
        "USER": "u",
        "PASSWORD": "p",
        "HOST": "h",
        "PORT": 5432,
    }
    assert "transaction_mode" not in answer["db_options"]


@pytest.mark.parametrize("debug", ["maybe", "2", "ture"])
def test_a_non_boolean_debug_is_a_clear_error(debug):
    code, answer = _load(DEBUG=debug, **PRODUCTION)

    assert code == 3
    assert answer["error"] == IMPROPERLY_CONFIGURED
    assert "DEBUG must be a boolean" in answer["message"]
    assert repr(debug) in answer["message"]
