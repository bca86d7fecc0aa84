"""The production recipe in deploy/ (docs/readme/production.md): the Compose file, the
environment template, the systemd units and the nginx configurations.

Checked without Docker, systemd or nginx running: `docker-compose config` resolves the
Compose file (no engine needed), `systemd-analyze verify` reads the units, and the
rest is read from the files and compared with the settings, with the commands' own
parsers, and across the two layouts (the same processes, started the same way).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import get_commands, load_command_class
from packaging.requirements import Requirement

import helpdesk.settings as app_settings
from helpdesk import envfile, health

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ENV_TEMPLATE = DEPLOY / "env.example"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
NGINX_COMPOSE = DEPLOY / "nginx" / "helpdesk.conf"
NGINX_SYSTEMD = DEPLOY / "nginx" / "helpdesk-systemd.conf"
SYSTEMD = DEPLOY / "systemd"
PRODUCTION_DOC = REPO / "docs" / "readme" / "production.md"

# Where the code is in each layout: the settings' BASE_DIR.
IMAGE_APP_DIR = "/app"
SYSTEMD_APP_DIR = "/srv/helpdesk"
SYSTEMD_BIN = f"{SYSTEMD_APP_DIR}/.venv/bin/"
APP_SERVICES = ("migrate", "web1", "web2", "worker", "beat")
DAPHNE_IN_COMPOSE = shlex.split(
    "daphne -b 0.0.0.0 -p 8000 --proxy-headers helpdesk.asgi:application"
)
# Not the settings': read by Compose's postgres service (docker-compose.yml).
COMPOSE_VARIABLE_PREFIX = "POSTGRES_"


# --- reading the files ----------------------------------------------------------------


def _env_template() -> dict[str, str]:
    return envfile.parse(ENV_TEMPLATE.read_text())


def _settings_variables() -> set[str]:
    """The variables helpdesk/settings.py reads, through its env, env_bool and env_int."""
    source = (REPO / "helpdesk" / "settings.py").read_text()
    return set(re.findall(r"\benv(?:_bool|_int)?\(\s*\"([A-Z][A-Z0-9_]*)\"", source))


def _compose_as_written() -> dict[str, Any]:
    """The Compose file read as YAML (anchors and merge keys resolved, nothing
    interpolated): for what needs no Compose to be installed."""
    compose: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's volumes as {target: source}, from either spelling Compose prints."""
    mounts: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts[target] = source
    return mounts


def _without_options(argv: list[str], *options: str) -> list[str]:
    """argv without the named options and their values (`-p 8000`, `--hostname=x`)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not any(arg.startswith(f"{option}=") for option in options):
            kept.append(arg)
    return kept


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _migrate_steps(service: dict[str, Any]) -> list[list[str]]:
    """The commands of `sh -c "a && b"`, in order."""
    shell, flag, script = _command(service)
    assert (shell, flag) == ("sh", "-c")
    return [shlex.split(step) for step in script.split("&&")]


@dataclass
class Directive:
    """One nginx directive: `name args;` or `name args { block }`."""

    name: str
    args: list[str]
    block: list[Directive] = field(default_factory=list)

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block if d.name == name]

    def one(self, name: str) -> Directive:
        (found,) = self.all(name)
        return found

    def value(self, name: str) -> str | None:
        found = self.all(name)
        return found[-1].args[0] if found else None


def _nginx(path: Path) -> Directive:
    """The file as the `http` block it is included into."""
    text = re.sub(r"#[^\n]*", "", path.read_text())
    tokens = iter(re.findall(r"\"[^\"]*\"|[{};]|[^\s{};]+", text))

    def block() -> Iterator[Directive]:
        words: list[str] = []
        for token in tokens:
            if token == "}":
                assert not words, f"{path}: {words} before }}"
                return
            if token == ";":
                yield Directive(words[0], words[1:])
                words = []
            elif token == "{":
                yield Directive(words[0], words[1:], list(block()))
                words = []
            else:
                words.append(token.strip('"'))
        assert not words, f"{path}: {words} without ;"

    return Directive("http", [], list(block()))


def _seconds(value: str) -> float:
    """An nginx time (`3600s`, `1h`, `60`) in seconds."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert match is not None, value
    number, unit = match.groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "s"]


def _bytes(value: str) -> int:
    """An nginx size (`30m`, `512k`) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG])?", value)
    assert match is not None, value
    number, unit = match.groups()
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(unit or "").lower()]


def _proxy_headers(location: Directive, server: Directive) -> dict[str, str]:
    """The headers nginx sets for a location: its own proxy_set_header lines if it has
    any, else the server's (nginx inherits them only into a location that sets none)."""
    lines = location.all("proxy_set_header") or server.all("proxy_set_header")
    return {d.args[0].lower(): d.args[1] for d in lines}


@dataclass
class Unit:
    name: str
    sections: dict[str, dict[str, list[str]]]

    def get(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def one(self, section: str, key: str) -> str:
        (value,) = self.get(section, key)
        return value

    def words(self, section: str, key: str) -> set[str]:
        return {word for value in self.get(section, key) for word in value.split()}


def _unit(path: Path) -> Unit:
    """A unit file as systemd reads it: repeated keys (ExecStart of a oneshot) kept in
    order, which configparser would collapse into the last one."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert current is not None and equals, f"{path.name}:{number}: not Key=Value"
        assert not value.endswith("\\"), f"{path.name}:{number}: continued lines are not read here"
        current.setdefault(key.strip(), []).append(value.strip())
    return Unit(path.name, sections)


def _units() -> dict[str, Unit]:
    return {path.name: _unit(path) for path in sorted(SYSTEMD.iterdir())}


def _exec(unit: Unit) -> list[list[str]]:
    return [shlex.split(line) for line in unit.get("Service", "ExecStart")]


def _service_units() -> dict[str, Unit]:
    return {name: unit for name, unit in _units().items() if name.endswith(".service")}


def _long_running_units() -> dict[str, Unit]:
    return {n: u for n, u in _service_units().items() if n != "helpdesk-migrate.service"}


# --- the environment template ---------------------------------------------------------


def test_the_env_template_means_the_same_to_its_three_readers() -> None:
    # Three parsers read the file (Compose's env_file, systemd's EnvironmentFile, and the
    # settings' own for manage.py commands): bare values without quotes, spaces, `$` or
    # `#` mean the same to all three.
    for number, raw in enumerate(ENV_TEMPLATE.read_text().splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s\"'$#\\`]*", line), f"line {number}: {line}"


def test_the_env_template_names_only_variables_the_settings_read() -> None:
    template = _env_template()
    read = _settings_variables()
    assert {"SECRET_KEY", "GRAPH_API_VERSION", "WORKER_DATABASE_CONN_MAX_AGE"} <= read  # the regex
    compose_only = {n for n in template if n.startswith(COMPOSE_VARIABLE_PREFIX)}
    unknown = set(template) - read - compose_only
    assert unknown == set(), f"not read by helpdesk/settings.py: {sorted(unknown)}"
    # and the Compose-only ones are used by the Compose file
    compose = COMPOSE_FILE.read_text()
    assert compose_only == {"POSTGRES_PASSWORD"}
    assert all(f"${{{name}" in compose for name in compose_only)


def test_the_env_template_has_every_secret_production_requires_empty_and_debug_off() -> None:
    template = _env_template()
    required = set(app_settings.REQUIRED_IN_PRODUCTION)
    assert required == {
        "SECRET_KEY",
        "TOKEN_ENCRYPTION_KEY",
        "MESSENGER_APP_ID",
        "MESSENGER_APP_SECRET",
        "MESSENGER_VERIFY_TOKEN",
    }
    assert required <= set(template)
    empty = required | {"POSTGRES_PASSWORD"}
    assert {name: template[name] for name in empty} == dict.fromkeys(empty, "")
    assert template["DEBUG"] == "0"
    assert template["GRAPH_API_VERSION"] == "v23.0"
    # Each empty secret says how to make it, in the comment lines just above it.
    lines = ENV_TEMPLATE.read_text().splitlines()
    for name in sorted(empty):
        at = lines.index(f"{name}=")
        comment = []
        while at > 0 and lines[at - 1].startswith("#"):
            at -= 1
            comment.append(lines[at])
        assert comment, f"{name} has no comment"
        if name not in {"MESSENGER_APP_ID", "MESSENGER_APP_SECRET"}:  # copied from Meta
            assert any("python3 -c" in line for line in comment), f"{name}: how to make it"


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "HELPDESK_ENV_FILE": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_template_as_shipped_is_refused_for_each_missing_secret() -> None:
    result = _manage(_env_template(), "check")
    assert result.returncode != 0
    assert (
        "these secrets are not set: SECRET_KEY, MESSENGER_APP_ID, MESSENGER_APP_SECRET, "
        "MESSENGER_VERIFY_TOKEN, TOKEN_ENCRYPTION_KEY"
    ) in result.stderr


def test_the_template_filled_in_passes_the_deployment_checks() -> None:
    env = _env_template() | {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MESSENGER_APP_ID": "100000000000042",
        "MESSENGER_APP_SECRET": "an-app-secret",
        "MESSENGER_VERIFY_TOKEN": "a-verify-token",
        "POSTGRES_PASSWORD": "0123456789abcdef",
    }
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


# --- Docker Compose -----------------------------------------------------------------------


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@dataclass
class ComposeRun:
    cli: list[str]
    directory: Path

    def config(self, env_file: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`config` with `env_file` as the `.env` (docs/readme/production.md's command)."""
        (self.directory / ".env").write_text(env_file)
        # Only the env file: no POSTGRES_PASSWORD or COMPOSE_* from the caller's shell.
        env = {"PATH": os.environ["PATH"], "HOME": str(self.directory)}
        return subprocess.run(
            [*self.cli, "--env-file", ".env", "-f", "docker-compose.yml", "config", *args],
            cwd=self.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> ComposeRun:
    """deploy/ copied to a temporary directory: nothing is written into the repository."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "neither docker-compose nor `docker compose` is installed: `make system-packages` "
            "installs Debian's docker-compose, which needs no Docker engine"
        )
    directory = tmp_path_factory.mktemp("recipe") / "deploy"
    shutil.copytree(DEPLOY, directory, ignore=shutil.ignore_patterns(".env"))
    return ComposeRun(cli, directory)


@pytest.fixture(scope="module")
def resolved(compose: ComposeRun) -> dict[str, Any]:
    """The Compose file as Compose resolves it (anchors merged, .env interpolated), with
    the template's one Compose secret filled in."""
    template = ENV_TEMPLATE.read_text()
    env_file = template.replace("\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=pw0123\n")
    assert env_file != template
    check = compose.config(env_file, "-q")
    assert (check.returncode, check.stderr) == (0, "")
    result = compose.config(env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_refuses_to_start_postgres_without_its_password(compose: ComposeRun) -> None:
    result = compose.config(ENV_TEMPLATE.read_text(), "-q")
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


def test_compose_runs_two_daphnes_one_worker_one_beat_and_a_migrate_they_wait_for(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    assert set(services) == {"postgres", "redis", "proxy", *APP_SERVICES}
    programs = {name: _command(s)[:4] for name, s in services.items() if "command" in s}

    def running(*argv: str) -> list[str]:
        return sorted(name for name, run in programs.items() if run[: len(argv)] == list(argv))

    assert running("daphne") == ["web1", "web2"]
    assert running("celery", "-A", "helpdesk", "worker") == ["worker"]
    assert running("celery", "-A", "helpdesk", "beat") == ["beat"]
    daphne = running("daphne")
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in daphne:
        assert _command(services[name]) == DAPHNE_IN_COMPOSE, name

    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert _migrate_steps(migrate) == [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "collectstatic", "--noinput"],
    ]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web1", "web2", "worker", "beat"):
        waits_for = services[name]["depends_on"]
        assert waits_for["migrate"]["condition"] == "service_completed_successfully", name
        assert waits_for["redis"]["condition"] == "service_healthy", name
        assert services[name]["restart"] == "unless-stopped", name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_compose_app_services_share_one_image_one_environment_and_production_settings(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    images = {(services[n]["image"], services[n]["build"]["dockerfile"]) for n in APP_SERVICES}
    assert images == {("helpdesk-app:latest", "deploy/Dockerfile")}
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DEBUG"] == "0", name
        assert env["DATABASE_URL"] == "postgres://helpdesk:pw0123@postgres:5432/helpdesk", name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["GRAPH_API_VERSION"] == "v23.0", name
        assert "ALL" in services[name]["cap_drop"], name
    postgres = services["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("helpdesk", "helpdesk")


def test_compose_web_health_check_asks_the_process_itself(resolved: dict[str, Any]) -> None:
    for name in ("web1", "web2"):
        probe = " ".join(resolved["services"][name]["healthcheck"]["test"])
        assert "'127.0.0.1', 8000" in probe, name
        assert any(f"'{path}'" in probe for path in health.PATHS), name


def test_compose_media_and_static_volumes_are_where_the_settings_put_the_files(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    media_root = _env_template()["MEDIA_ROOT"]
    for name in ("web1", "web2", "worker"):
        assert services[name]["environment"]["MEDIA_ROOT"] == media_root, name
        assert _mounts(services[name])[media_root] == "media", name
    # STATIC_ROOT is fixed by the settings, under BASE_DIR (/app in the image).
    static_root = Path(app_settings.STATIC_ROOT).relative_to(app_settings.BASE_DIR)
    assert _mounts(services["migrate"])[f"{IMAGE_APP_DIR}/{static_root}"] == "static"
    proxy_mounts = _mounts(services["proxy"])
    (static_in_proxy,) = [target for target, source in proxy_mounts.items() if source == "static"]
    conf = Path(proxy_mounts["/etc/nginx/conf.d/default.conf"])
    assert conf.parts[-2:] == ("nginx", "helpdesk.conf")
    server = _nginx(NGINX_COMPOSE).one("server")
    assert _static_alias(server) == static_in_proxy.rstrip("/") + "/"
    # the schedule beat writes is on beat's own volume
    beat = _command(services["beat"])
    assert Path(_option(beat, "--schedule")).parent.as_posix() in _mounts(services["beat"])
    named = {"postgres-data", "redis-data", "media", "static", "beat-data"}
    assert named <= set(resolved["volumes"])


def _static_alias(server: Directive) -> str:
    (static,) = [loc for loc in server.all("location") if loc.args == ["/static/"]]
    return static.one("alias").args[0]


def test_the_compose_proxy_balances_over_the_daphne_services() -> None:
    services = _compose_as_written()["services"]
    daphnes = [n for n, s in services.items() if "command" in s and _command(s)[0] == "daphne"]
    upstream = _nginx(NGINX_COMPOSE).one("upstream")
    servers = [d.args[0] for d in upstream.all("server")]
    assert servers == [f"{name}:8000" for name in sorted(daphnes)] == ["web1:8000", "web2:8000"]
    # looked up again when a web service is recreated (a new address after an upgrade)
    assert all("resolve" in d.args for d in upstream.all("server"))
    assert upstream.all("zone") and _nginx(NGINX_COMPOSE).all("resolver")


# --- nginx ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [NGINX_COMPOSE, NGINX_SYSTEMD], ids=lambda p: p.name)
def test_nginx_passes_websockets_with_a_long_read_timeout(path: Path) -> None:
    http = _nginx(path)
    server = http.one("server")
    (ws,) = [loc for loc in server.all("location") if loc.args == ["/ws/"]]
    assert ws.value("proxy_http_version") == "1.1"
    headers = _proxy_headers(ws, server)
    assert headers["upgrade"] == "$http_upgrade"
    connection = headers["connection"]
    if connection.startswith("$"):
        (mapping,) = [m for m in http.all("map") if m.args == ["$http_upgrade", connection]]
        assert mapping.value("default") == "upgrade"
    else:
        assert connection.lower() == "upgrade"
    assert _seconds(ws.value("proxy_read_timeout") or "60s") >= 3600


@pytest.mark.parametrize("path", [NGINX_COMPOSE, NGINX_SYSTEMD], ids=lambda p: p.name)
def test_nginx_sets_the_forwarded_headers_on_every_proxied_location(path: Path) -> None:
    server = _nginx(path).one("server")
    proxied = [loc for loc in server.all("location") if loc.all("proxy_pass")]
    assert len(proxied) == 3
    for location in proxied:
        assert location.value("proxy_pass") == "http://helpdesk"
        headers = _proxy_headers(location, server)
        # Overwritten, not appended to ($proxy_add_x_forwarded_for): Daphne's
        # --proxy-headers takes the first address, which a client could write.
        assert headers.get("x-forwarded-for") == "$remote_addr", location.args
        assert headers.get("x-forwarded-proto") == "$scheme", location.args
        assert headers.get("host") == "$host", location.args


@pytest.mark.parametrize("path", [NGINX_COMPOSE, NGINX_SYSTEMD], ids=lambda p: p.name)
def test_nginx_takes_the_files_agents_send(path: Path) -> None:
    server = _nginx(path).one("server")
    one_file = _bytes(server.value("client_max_body_size") or "1m")
    assert one_file >= 30 * 1024 * 1024 > app_settings.ATTACHMENT_MAX_BYTES
    (upload,) = [loc for loc in server.all("location") if loc.args[0] == "~"]
    pattern = upload.args[1]
    assert re.search(pattern, "/api/v1/tickets/42/attachments")
    assert not re.search(pattern, "/api/v1/tickets/42/attachments/x")
    whole_reply = app_settings.ATTACHMENT_MAX_FILES * app_settings.ATTACHMENT_MAX_BYTES
    assert _bytes(upload.value("client_max_body_size") or "1m") > whole_reply


def test_the_systemd_nginx_serves_static_root_and_balances_over_the_web_units() -> None:
    server = _nginx(NGINX_SYSTEMD).one("server")
    static_root = Path(app_settings.STATIC_ROOT).relative_to(app_settings.BASE_DIR)
    assert _static_alias(server) == f"{SYSTEMD_APP_DIR}/{static_root}/"
    upstream = _nginx(NGINX_SYSTEMD).one("upstream")
    assert [d.args for d in upstream.all("server")] == [["127.0.0.1:8001"], ["127.0.0.1:8002"]]


# --- systemd ----------------------------------------------------------------------------


def test_the_units_are_the_processes_compose_runs() -> None:
    assert set(_units()) == {
        "helpdesk.target",
        "helpdesk-migrate.service",
        "helpdesk-web@.service",
        "helpdesk-worker@.service",
        "helpdesk-beat.service",
    }


def test_each_unit_runs_a_program_the_project_installs_as_helpdesk_from_srv() -> None:
    # console scripts of the declared dependencies (daphne, celery), or the venv's python
    declared = {
        Requirement(line).name.lower()
        for line in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    for name, unit in _service_units().items():
        assert unit.sections.keys() >= {"Unit", "Service"}, name
        assert unit.one("Service", "User") == "helpdesk", name
        assert unit.one("Service", "WorkingDirectory") == SYSTEMD_APP_DIR, name
        assert unit.one("Service", "EnvironmentFile") == "/etc/helpdesk/env", name
        # no .env from the checkout: the environment file is the whole configuration
        assert "HELPDESK_ENV_FILE=" in unit.get("Service", "Environment"), name
        for argv in _exec(unit):
            assert argv[0].startswith(SYSTEMD_BIN), name
            program = argv[0].removeprefix(SYSTEMD_BIN)
            if program != "python":
                dist = scripts[program].dist
                assert dist is not None and dist.name.lower() in declared, name


def test_the_units_restart_wait_for_migrate_and_are_hardened() -> None:
    units = _units()
    migrate = units["helpdesk-migrate.service"]
    assert migrate.one("Service", "Type") == "oneshot"
    assert migrate.one("Service", "RemainAfterExit") == "yes"
    assert migrate.get("Service", "Restart") == []
    for name, unit in _long_running_units().items():
        assert unit.one("Service", "Restart") == "always", name
        assert "helpdesk-migrate.service" in unit.words("Unit", "After"), name
        wanted = unit.words("Unit", "Wants") | unit.words("Unit", "Requires")
        assert "helpdesk-migrate.service" in wanted, name
        assert unit.one("Unit", "PartOf") == "helpdesk.target", name
    hardening = {"NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "PrivateTmp": ["yes"]}
    for name, unit in _service_units().items():
        assert {key: unit.get("Service", key) for key in hardening} == hardening, name
    target = units["helpdesk.target"]
    assert target.words("Unit", "Wants") == {"helpdesk-migrate.service", "helpdesk-beat.service"}
    assert target.one("Install", "WantedBy") == "multi-user.target"
    for name in ("helpdesk-web@.service", "helpdesk-worker@.service"):
        assert units[name].one("Install", "WantedBy") == "helpdesk.target", name


def _writable(unit: Unit) -> list[Path]:
    """What ProtectSystem=strict leaves writable: StateDirectory= and ReadWritePaths=."""
    state = [Path("/var/lib") / d for d in unit.words("Service", "StateDirectory")]
    return state + [Path(p.lstrip("-")) for p in unit.words("Service", "ReadWritePaths")]


def test_the_units_can_write_where_the_settings_and_beat_write() -> None:
    units = _units()
    media_root = Path(_env_template()["MEDIA_ROOT"])
    for name in ("helpdesk-web@.service", "helpdesk-worker@.service"):
        assert any(media_root.is_relative_to(p) for p in _writable(units[name])), name
    beat = units["helpdesk-beat.service"]
    (argv,) = _exec(beat)
    schedule = Path(_option(argv, "--schedule"))
    assert any(schedule.is_relative_to(p) for p in _writable(beat))
    static_root = Path(app_settings.STATIC_ROOT).relative_to(app_settings.BASE_DIR)
    assert Path(SYSTEMD_APP_DIR) / static_root in _writable(units["helpdesk-migrate.service"])


def test_the_units_and_compose_start_the_processes_with_the_same_arguments() -> None:
    services = _compose_as_written()["services"]
    units = _units()

    def unit_argv(name: str) -> list[str]:
        (argv,) = _exec(units[name])
        return [argv[0].removeprefix(SYSTEMD_BIN), *argv[1:]]

    web = unit_argv("helpdesk-web@.service")
    assert (_option(web, "-b"), _option(web, "-p")) == ("127.0.0.1", "%i")
    assert _without_options(web, "-b", "-p") == _without_options(
        _command(services["web1"]), "-b", "-p"
    )
    worker = unit_argv("helpdesk-worker@.service")
    # two workers on one host: each its own node name
    assert any(arg.startswith("--hostname=") and "%i" in arg for arg in worker)
    assert _without_options(worker, "--hostname") == _command(services["worker"])
    assert unit_argv("helpdesk-beat.service") == _command(services["beat"])
    migrate = [
        [argv[0].removeprefix(SYSTEMD_BIN), *argv[1:]]
        for argv in _exec(units["helpdesk-migrate.service"])
    ]
    assert migrate == _migrate_steps(services["migrate"])


def test_the_image_starts_daphne_as_the_compose_web_services_do() -> None:
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.MULTILINE)
    assert cmd is not None
    argv = yaml.safe_load(cmd.group(1))
    services = _compose_as_written()["services"]
    assert argv == _command(services["web1"]) == _command(services["web2"])


def test_the_image_holds_the_code_the_settings_load_and_runs_as_a_user() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    assert re.search(rf"^WORKDIR {IMAGE_APP_DIR}$", dockerfile, re.MULTILINE)
    (user,) = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user not in {"root", "0"}
    copied = set(re.findall(r"^COPY (\S+) \./", dockerfile, re.MULTILINE))
    local_apps = {app.split(".")[0] for app in app_settings.INSTALLED_APPS}
    template_dirs = cast("list[Path]", app_settings.TEMPLATES[0]["DIRS"])
    directories = [*app_settings.STATICFILES_DIRS, *template_dirs]
    needed = {app for app in local_apps if (REPO / app).is_dir()} | {"manage.py"}
    needed |= {str(Path(d).relative_to(app_settings.BASE_DIR)) for d in directories}
    assert needed == {"helpdesk", "agents", "webhooks", "templates", "static", "manage.py"}
    assert needed <= copied
    # STATIC_ROOT is made in the image, for the user, so that its volume starts with that owner
    static_root = Path(app_settings.STATIC_ROOT).relative_to(app_settings.BASE_DIR)
    assert f"{IMAGE_APP_DIR}/{static_root}" in dockerfile


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    # The units as written, but for the venv: this checkout's, where daphne and celery
    # are (verify checks that each ExecStart program exists).
    venv_bin = Path(sys.executable).parent
    for path in SYSTEMD.iterdir():
        text = path.read_text().replace(SYSTEMD_BIN, f"{venv_bin}/")
        (tmp_path / path.name).write_text(text)
    names = [
        "helpdesk.target",
        "helpdesk-migrate.service",
        "helpdesk-web@8001.service",
        "helpdesk-web@8002.service",
        "helpdesk-worker@1.service",
        "helpdesk-worker@2.service",
        "helpdesk-beat.service",
    ]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown keys and bad values are only warnings: any output is a failure here.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# --- the walkthrough ----------------------------------------------------------------------


def _shell_lines(markdown: str) -> list[str]:
    """The lines of the fenced code blocks, continued lines joined."""
    blocks = re.findall(r"^ *```sh\n(.*?)^ *```$", markdown, re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in re.sub(r"\\\n", " ", block).splitlines()]


def test_the_walkthrough_runs_only_commands_and_options_that_exist() -> None:
    commands = get_commands()  # name -> app
    runs = [
        (match.group(1), line)
        for line in _shell_lines(PRODUCTION_DOC.read_text())
        if (match := re.search(r"\bmanage ([a-z_]+)", line))
    ]
    assert {"connect_page", "create_agent", "changepassword", "check"} <= {c for c, _ in runs}
    for command, line in runs:
        assert command in commands, line
        parser = load_command_class(commands[command], command).create_parser("manage.py", command)
        known = {option for action in parser._actions for option in action.option_strings}
        used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line))
        assert used <= known, f"{command}: {sorted(used - known)}"
