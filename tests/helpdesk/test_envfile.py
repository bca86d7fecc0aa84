"""The `.env` file: its parser, the settings reading it under the environment, and the
file `make run` writes so that `manage.py` commands work as the README writes them."""

from __future__ import annotations

import os
import runpy
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from helpdesk import devserver, envfile

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "helpdesk" / "settings.py"
SECRETS = (
    "SECRET_KEY",
    "MESSENGER_APP_ID",
    "MESSENGER_APP_SECRET",
    "MESSENGER_VERIFY_TOKEN",
    "TOKEN_ENCRYPTION_KEY",
)


# --- the parser ----------------------------------------------------------------------------


def test_comments_blank_lines_and_bare_values():
    text = (
        "# a comment\n"
        "\n"
        "   \n"
        "DEBUG=1\n"
        "  # an indented comment\n"
        "LOG_LEVEL = INFO   # what the root logger shows\n"
        "EMPTY=\n"
        "URL=postgres://u:p@h:5432/db?sslmode=require\n"
        "HASH=abc#def\n"
        "export PORT=8010\n"
    )

    assert envfile.parse(text) == {
        "DEBUG": "1",
        "LOG_LEVEL": "INFO",
        "EMPTY": "",
        "URL": "postgres://u:p@h:5432/db?sslmode=require",
        "HASH": "abc#def",
        "PORT": "8010",
    }


def test_quoted_values_are_taken_as_they_are():
    text = (
        'DOUBLE="two words # not a comment"\n'
        "SINGLE='$HOME and \\n stay'  # a comment after the quote\n"
        'EQUALS="a=b"\n'
        "BLANK=''\n"
    )

    assert envfile.parse(text) == {
        "DOUBLE": "two words # not a comment",
        "SINGLE": "$HOME and \\n stay",
        "EQUALS": "a=b",
        "BLANK": "",
    }


def test_a_later_line_wins():
    assert envfile.parse("A=1\nA=2\n") == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nno equals sign here\n", "line 2 is not KEY=VALUE"),
        ("1ABC=secret-value\n", "line 1 is not KEY=VALUE"),
        ("A-B=secret-value\n", "line 1 is not KEY=VALUE"),
        ('\nKEY="secret-value\n', "line 2: the quote of KEY is not closed"),
        ("KEY='secret' value\n", "line 1: the quote of KEY is not closed"),
    ],
)
def test_a_bad_line_is_named_without_its_value(text, message):
    with pytest.raises(envfile.EnvFileError) as raised:
        envfile.parse(text)

    assert str(raised.value) == message
    assert "secret" not in str(raised.value)


def test_no_file_is_no_variables(tmp_path):
    assert envfile.read(tmp_path / ".env") == {}


# --- the settings -------------------------------------------------------------------------


def _unset(name: str) -> bool:
    return name in ("DEBUG", "SECRET_KEY", "TOKEN_ENCRYPTION_KEY", "DATABASE_URL") or (
        name.startswith(("MESSENGER_", "SECURE_", "HELPDESK_"))
    )


@pytest.fixture
def load(monkeypatch):
    """Run helpdesk/settings.py with this .env (None: none) and these variables only."""

    def load(env_file: Path | None, **env: str) -> dict:
        for name in [n for n in os.environ if _unset(n)]:
            monkeypatch.delenv(name)
        if env_file is not None:
            monkeypatch.setenv("HELPDESK_ENV_FILE", str(env_file))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load


def test_the_settings_read_the_env_file_at_the_project_root_by_default(load):
    assert load(None, DEBUG="1")["ENV_FILE"] == str(ROOT / ".env")


def test_a_development_env_file_is_enough_without_debug_in_the_environment(load, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY='from-the-file'\n")

    settings = load(env_file)

    assert (settings["DEBUG"], settings["SECRET_KEY"]) == (True, "from-the-file")
    assert settings["TOKEN_ENCRYPTION_KEY"].startswith("dev-only-")


def test_the_environment_wins_over_the_file(load, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=from-the-file\nLOG_LEVEL=DEBUG\n")

    settings = load(env_file, SECRET_KEY="from-the-environment")

    assert settings["SECRET_KEY"] == "from-the-environment"
    assert settings["LOGGING"]["root"]["level"] == "DEBUG"  # the file fills the gaps
    # DEBUG=0 in the environment: production, whatever the file says.
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG is off"):
        load(env_file, DEBUG="0")


def test_without_an_env_file_production_stays_strict(load, tmp_path):
    with pytest.raises(ImproperlyConfigured) as raised:
        load(tmp_path / "absent.env")

    assert str(raised.value).startswith("DEBUG is off (production; for development set DEBUG=1")
    assert str(raised.value).endswith(": " + ", ".join(SECRETS))


def test_an_unreadable_env_file_is_a_clear_error(load, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY='oops\n")

    with pytest.raises(ImproperlyConfigured) as raised:
        load(env_file)

    assert str(raised.value) == f"{env_file}: line 2: the quote of SECRET_KEY is not closed"


# --- the file `make run` writes -------------------------------------------------------------


def test_make_run_writes_a_development_env_file_once(tmp_path):
    env_file = tmp_path / ".env"

    assert devserver.env_file_write(env_file, database_exists=False) is True
    first = env_file.read_text()
    assert devserver.env_file_write(env_file, database_exists=False) is False

    assert env_file.read_text() == first
    values = envfile.parse(first)
    assert sorted(values) == ["DEBUG", "SECRET_KEY", "TOKEN_ENCRYPTION_KEY"]
    assert values["DEBUG"] == "1"
    assert len(values["SECRET_KEY"]) >= 50
    Fernet(values["TOKEN_ENCRYPTION_KEY"])  # one valid key
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    # Generated, not published: another install gets other secrets.
    other = envfile.parse(_written(tmp_path / "other.env"))
    assert other["SECRET_KEY"] != values["SECRET_KEY"]
    assert other["TOKEN_ENCRYPTION_KEY"] != values["TOKEN_ENCRYPTION_KEY"]


def _written(path: Path, *, database_exists: bool = False) -> str:
    devserver.env_file_write(path, database_exists=database_exists)
    return path.read_text()


def test_an_existing_database_keeps_its_tokens_readable(tmp_path, load):
    env_file = tmp_path / ".env"
    keys = envfile.parse(_written(env_file, database_exists=True))["TOKEN_ENCRYPTION_KEY"]

    new, former = keys.split(",")
    Fernet(new)
    assert former == devserver.FORMER_DEV_TOKEN_KEY
    # The settings' own development key: what encrypted the tokens before the file.
    assert load(tmp_path / "none.env", DEBUG="1")["TOKEN_ENCRYPTION_KEY"] == former


def test_an_existing_env_file_is_never_overwritten(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\n# mine\n")

    assert devserver.env_file_write(env_file, database_exists=True) is False

    assert env_file.read_text() == "DEBUG=1\n# mine\n"


def _manage_check(env_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not _unset(k)}
    env.update(HELPDESK_ENV_FILE=str(env_file), DJANGO_SETTINGS_MODULE="helpdesk.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_works_without_a_prefix_once_make_run_wrote_the_env_file(tmp_path):
    env_file = tmp_path / ".env"
    devserver.env_file_write(env_file, database_exists=False)

    result = _manage_check(env_file)

    assert (result.returncode, result.stdout.strip()) == (
        0,
        "System check identified no issues (0 silenced).",
    ), result.stderr


def test_manage_py_without_the_env_file_fails_with_the_clear_message(tmp_path):
    result = _manage_check(tmp_path / ".env")

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: DEBUG is off (production; for "
        "development set DEBUG=1, or run `make run` once, which writes a .env with it) and "
        "these secrets are not set: " + ", ".join(SECRETS)
    )
