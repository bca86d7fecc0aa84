"""Settings, read from the environment (see `.env.example`), then from the `.env` file.

Development defaults are safe and local; with DEBUG off the app refuses to start
without its secrets, rather than silently running with a default.
"""

import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from helpdesk import envfile

BASE_DIR = Path(__file__).resolve().parent.parent

# `make run` writes `.env` on its first run (DEBUG=1, generated secrets): `manage.py`
# commands then run as in development without a prefix. The environment wins over the
# file; HELPDESK_ENV_FILE names another file ("" for none: the tests read none).
ENV_FILE = os.environ.get("HELPDESK_ENV_FILE", str(BASE_DIR / ".env"))
try:
    _ENV_FILE_VALUES = envfile.read(Path(ENV_FILE)) if ENV_FILE else {}
except envfile.EnvFileError as exc:
    raise ImproperlyConfigured(str(exc)) from None


def _environ(name: str) -> str | None:
    value = os.environ.get(name)
    return _ENV_FILE_VALUES.get(name) if value is None else value


def env(name: str, default: str = "") -> str:
    value = _environ(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _environ(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = _environ(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


DEBUG = env_bool("DEBUG", False)

REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "MESSENGER_APP_ID",
    "MESSENGER_APP_SECRET",
    "MESSENGER_VERIFY_TOKEN",
    "TOKEN_ENCRYPTION_KEY",
)
if not DEBUG:
    missing = [name for name in REQUIRED_IN_PRODUCTION if not env(name)]
    if missing:
        raise ImproperlyConfigured(
            "DEBUG is off (production; for development set DEBUG=1, or run `make run` once, "
            "which writes a .env with it) and these secrets are not set: " + ", ".join(missing)
        )

SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-secret-key-do-not-use-in-production")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")]
if DEBUG and "testserver" not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append("testserver")
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o]

# --- HTTPS ---------------------------------------------------------------------------
# On by default in production, each one settable (0 to turn it off). Behind a TLS-ending
# proxy, the proxy must set SECURE_PROXY_SSL_HEADER's header (overwriting whatever the
# client sent): Django then trusts it to tell https from http. `none`: no proxy header.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 60 * 60)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# Only a request to be listed: browsers preload a domain once it is submitted to their
# list, which the header alone does not do.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
_proxy_ssl_header = env("SECURE_PROXY_SSL_HEADER").strip() or (
    "none" if DEBUG else "X-Forwarded-Proto"
)
SECURE_PROXY_SSL_HEADER = (
    None
    if _proxy_ssl_header.lower() in {"none", "off", "0", "false", "no"}
    else ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")
)

INSTALLED_APPS = [
    "daphne",
    "helpdesk.apps.HelpdeskAdminConfig",  # django.contrib.admin, with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "webhooks",
    "agents",
]

MIDDLEWARE = [
    # The request's id on its log lines and its answer (X-Request-ID).
    "helpdesk.logs.request_ids",
    "django.middleware.security.SecurityMiddleware",
    # X-Server-Time on the API's answers: the inbox counts down on the server's clock.
    "helpdesk.clock.server_time_middleware",
    # Static files from Daphne itself: no separate web server, no build step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'helpdesk.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE write transactions: concurrent writers queue on the lock instead of
    # failing with "database is locked" halfway through a transaction. Write-ahead
    # logging: a commit is one fsync of the log (the webhook's group commit waits on it;
    # the rollback journal took three, about 12 ms here), readers never wait on a writer,
    # and synchronous=FULL keeps every commit durable through a power loss too.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# The reports' days and hours (agents.reports): the support team's time zone, an IANA
# name such as Europe/Paris. Stored times stay UTC.


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"REPORTS_TIME_ZONE must be an IANA time zone such as Europe/Paris, not {name!r}"
        ) from exc
    return name


REPORTS_TIME_ZONE = _time_zone(env("REPORTS_TIME_ZONE", "UTC"))
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Whitenoise finds files where Django's finders do (static/, apps' static/), so that
# `collectstatic` is optional: `make run` and the tests serve without it.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/login/"
# Failed logins (agents.services.throttle): this many failures within the window block
# further attempts for an account, or from a client address, for the window's length.
# Behind a proxy, run Daphne with --proxy-headers so that the client's address is seen.
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
# The same for bad API bearer tokens, per client address.
API_TOKEN_FAILURES_PER_ADDRESS = env_int("API_TOKEN_FAILURES_PER_ADDRESS", 20)
# Requests per minute per API token, or per user for session requests; over it, 429.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# --- Redis, Celery, Channels -------------------------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Two queues, which every worker takes (none is started with -Q): the webhooks' processing
# on its own, everything else (agents' replies, handover calls, the re-drives) on the
# default one. A worker takes from both in turn (kombu's Redis transport rotates them),
# so an agent's reply waits for at most one webhook task per worker thread, not for a
# backlog of the page's whole standby traffic.
CELERY_TASK_DEFAULT_QUEUE = "celery"
WEBHOOK_QUEUE = "webhooks"
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(WEBHOOK_QUEUE))
CELERY_TASK_ROUTES = {
    "webhooks.tasks.delivery_process": {"queue": WEBHOOK_QUEUE},
    "webhooks.tasks.deliveries_process": {"queue": WEBHOOK_QUEUE},
}
CELERY_TASK_TIME_LIMIT = 120
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must fail fast when Redis is down: the webhook is already stored and the
# periodic re-drive picks it up; an intake request must not hang on the broker.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
# Celery's consumer with its broker-connection-loss cleanup fixed: without it, losing Redis
# while the worker holds a message (a retry's countdown) stops the worker for good.
CELERY_WORKER_CONSUMER = "helpdesk.celery:Consumer"
# A worker keeps its database connections from task to task, for this long (seconds),
# checked before each task (helpdesk.celery): Celery's Django fixup otherwise closes
# them before and after every task, and a new PostgreSQL connection per task cost more
# than applying the task's ten deliveries. Daphne keeps DATABASE_CONN_MAX_AGE (0: ASGI
# should not hold connections, Django's documentation says).
WORKER_DATABASE_CONN_MAX_AGE = env_int("WORKER_DATABASE_CONN_MAX_AGE", 300)
# The fixup closes them after this many tasks only: helpdesk.celery closes what is too
# old or broken instead.
CELERY_DB_REUSE_MAX = 10**9
DOCTOR_HEARTBEAT_SECONDS = 30
CELERY_BEAT_SCHEDULE = {
    "webhooks-redrive-deliveries": {
        "task": "webhooks.tasks.deliveries_redrive",
        "schedule": env_int("REDRIVE_INTERVAL_SECONDS", 30),
    },
    "agents-redrive-outbound": {
        "task": "agents.tasks.outbound_redrive",
        "schedule": env_int("REDRIVE_INTERVAL_SECONDS", 30),
    },
    "agents-control-lapse": {
        "task": "agents.tasks.control_lapse_reconcile",
        "schedule": 60,
    },
    "agents-outbox-probe": {
        "task": "agents.tasks.outbox_probe",
        "schedule": env_int("OUTBOX_PROBE_SECONDS", 30),
    },
    # CSAT: a rating not answered in time ends its wait (the hand-back follows).
    "agents-csat-expire": {
        "task": "agents.tasks.csat_expire_due",
        "schedule": 15,
    },
    # Presence and routing: stale sockets, queues assigned as a backstop, queue notices.
    "agents-routing-sweep": {
        "task": "agents.tasks.routing_sweep",
        "schedule": 30,
    },
    # Data lifecycle: deliveries and Graph call records past their retention, hourly (each
    # run has about an hour's rows to delete, in batches).
    "webhooks-retention-purge": {
        "task": "webhooks.tasks.retention_purge",
        "schedule": 3600,
    },
    # Data deletion requests whose task was lost or whose erase waited for a ticket to close.
    "webhooks-data-deletions-redrive": {
        "task": "webhooks.tasks.data_deletions_redrive",
        "schedule": 600,
    },
    # The doctor page's sign that beat and a worker are alive.
    "agents-doctor-heartbeat": {
        "task": "agents.tasks.doctor_heartbeat",
        "schedule": DOCTOR_HEARTBEAT_SECONDS,
    },
}
# An inbox socket whose heartbeat (the client pings every 25 s) is older than this counts
# as gone: its Daphne process died without a clean disconnect.
PRESENCE_STALE_SECONDS = 75
# A page whose outbox is paused (token, permission, restriction) is probed this often.
OUTBOX_PROBE_SECONDS = env_int("OUTBOX_PROBE_SECONDS", 30)
# Control is extended this long before it would lapse, while an agent works a ticket.
CONTROL_EXTEND_MARGIN_SECONDS = env_int("CONTROL_EXTEND_MARGIN_SECONDS", 3600)

# Shared by every process: marks of queued work (webhooks.queue), rate windows, the
# API's rate-limit counters.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "helpdesk",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# The channel layer is channels-redis' pub/sub layer: each process subscribes once to a
# group's Redis channel and what is published there is pushed to it, where the list layer
# (channels_redis.core) popped each message with a few round trips in turn, behind a lock,
# which under load held live events back by seconds (README "Performance"). Its reader
# polls with a 0.1 s wait; reads may still take long on a busy Redis. (The list layer's
# BZPOPMIN, held 5 s, once met redis-py 6+'s 5 s default socket timeout: idle sockets
# closed with 1011, django/channels_redis#422.) A dead Redis is noticed by the connect
# timeout, TCP keepalive and the health check. Celery's broker keeps redis-py's defaults
# on purpose (its own timeouts and retries).
CHANNEL_REDIS_SOCKET_TIMEOUT_SECONDS = float(env("CHANNEL_REDIS_SOCKET_TIMEOUT_SECONDS", "30"))
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": CHANNEL_REDIS_SOCKET_TIMEOUT_SECONDS,
                    "socket_connect_timeout": 5,
                    "socket_keepalive": True,
                    "health_check_interval": 15,
                }
            ]
        },
    }
}

# --- Metrics (helpdesk/metrics.py) ----------------------------------------------
# /metrics is served to a request with `Authorization: Bearer <METRICS_TOKEN>`, or from
# an address in METRICS_ALLOWED_NETWORKS (comma-separated CIDRs, e.g. 10.0.0.0/8); with
# neither set it is off (404).
METRICS_TOKEN = env("METRICS_TOKEN", "")
# Each process sends its counts to Redis this often (seconds).
METRICS_FLUSH_SECONDS = float(env("METRICS_FLUSH_SECONDS", "1"))
METRICS_ALLOWED_NETWORKS = [
    n.strip() for n in env("METRICS_ALLOWED_NETWORKS", "").split(",") if n.strip()
]

# --- Messenger Platform --------------------------------------------------------
MESSENGER_APP_ID = env("MESSENGER_APP_ID", "100000000000001")
MESSENGER_APP_SECRET = env("MESSENGER_APP_SECRET", "dev-app-secret")
MESSENGER_VERIFY_TOKEN = env("MESSENGER_VERIFY_TOKEN", "dev-verify-token")
# The Graph API version, pinned here and nowhere else (webhooks/graph_versions.py knows
# when Meta ends each one). GRAPH_API_URL is the server: Meta's
# by default, or the emulator; a version at its end (`…/v23.0`, as older settings had it)
# is taken as the pin, and must then agree with GRAPH_API_VERSION if both are set.
DEFAULT_GRAPH_API_VERSION = "v23.0"


def _graph_api(url: str, version: str) -> tuple[str, str]:
    url = url.rstrip("/")
    match = re.search(r"/(v\d+\.\d+)$", url)
    if match is not None:
        if version and version != match.group(1):
            raise ImproperlyConfigured(
                f"GRAPH_API_URL ends in {match.group(1)} but GRAPH_API_VERSION is {version}: "
                "name the version once (GRAPH_API_VERSION, with GRAPH_API_URL the server only)"
            )
        return url, match.group(1)
    version = version or DEFAULT_GRAPH_API_VERSION
    if not re.fullmatch(r"v\d+\.\d+", version):
        raise ImproperlyConfigured(
            f"GRAPH_API_VERSION must look like v23.0 (a 'v', major.minor), not {version!r}"
        )
    return f"{url}/{version}", version


GRAPH_API_URL, GRAPH_API_VERSION = _graph_api(
    env("GRAPH_API_URL", "https://graph.facebook.com"), env("GRAPH_API_VERSION", "")
)
GRAPH_API_TIMEOUT_SECONDS = float(env("GRAPH_API_TIMEOUT_SECONDS", "10"))
# Retries of transient Graph errors: delay = base * 2**attempt, with full jitter.
GRAPH_RETRY_MAX = env_int("GRAPH_RETRY_MAX", 5)
GRAPH_RETRY_BACKOFF_SECONDS = float(env("GRAPH_RETRY_BACKOFF_SECONDS", "2"))
# A thread-control call that timed out may have taken effect: its retry waits this long,
# for the handover webhook that would show it.
GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS = float(env("GRAPH_UNCERTAIN_RETRY_DELAY_SECONDS", "15"))
# A send whose answer was lost (a timeout after the request left, a worker that died
# mid-call) waits this long for its echo; without one it fails as "may not have been
# delivered" for the agent to retry. It is never sent twice on its own.
GRAPH_CONFIRM_SECONDS = env_int("GRAPH_CONFIRM_SECONDS", 300)
# Graph calls per page and second, across processes: under Meta's 300/s for the Send API.
GRAPH_RATE_LIMIT_PER_SECOND = env_int("GRAPH_RATE_LIMIT_PER_SECOND", 250)

# Page access tokens are stored encrypted (Fernet, webhooks.crypto) with this key. To
# rotate, list the new key first, comma-separated: the first encrypts, all decrypt.
TOKEN_ENCRYPTION_KEY = env("TOKEN_ENCRYPTION_KEY") or (
    "dev-only-token-key-do-not-use-in-production=" if DEBUG else ""
)
for _key in TOKEN_ENCRYPTION_KEY.split(","):
    try:
        Fernet(_key.strip())
    except ValueError:
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
            "comma-separated; make one with `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`"
        ) from None

# Development only: the file in which the Messenger emulator says how far its clock was
# moved (make run sets var/emulator/clock.json); the helpdesk's clock then follows it for
# windows, countdowns and lapses (helpdesk/clock.py). Production uses real time.
DEV_CLOCK_FILE = env("DEV_CLOCK_FILE")
if DEV_CLOCK_FILE and not DEBUG:
    raise ImproperlyConfigured(
        "DEV_CLOCK_FILE moves the helpdesk's clock and is for development only (DEBUG=1); "
        "unset it in production"
    )

# The Page Inbox app id: echoes with it are messages typed by people in the Page Inbox.
PAGE_INBOX_APP_ID = "263902037430900"

WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024)
# Daphne hands webhook deliveries to a writer process of its own, which commits them in
# groups (webhooks.intake); off, a thread of Daphne's process does (the in-process tests).
WEBHOOK_INTAKE_PROCESS = env_bool("WEBHOOK_INTAKE_PROCESS", True)
# Deliveries whose processing failed this many times are left for an admin.
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 10)
# Who applies parsed Messenger events: `webhooks` does not import `agents`.
MESSENGER_EVENT_HANDLER = "agents.services.inbound.messenger_event_handle"
# Around a group of events, in its transaction (a context manager: the rows they lock,
# in one order, and what they share).
MESSENGER_GROUP_PREPARE_HANDLER = "agents.services.inbound.messenger_events_prepare"

# A handover request that got no answer for this long no longer blocks a new one.
HANDOVER_REQUEST_TIMEOUT_SECONDS = env_int("HANDOVER_REQUEST_TIMEOUT_SECONDS", 15 * 60)
# A ticket closed less than this long ago is reopened when control comes back.
TICKET_REOPEN_WINDOW_SECONDS = env_int("TICKET_REOPEN_WINDOW_SECONDS", 60 * 60)
# Contact profiles are fetched again after this long.
PROFILE_CACHE_SECONDS = env_int("PROFILE_CACHE_SECONDS", 24 * 60 * 60)

# json: one JSON object per line, with the request, task, delivery, conversation and
# ticket ids (helpdesk/logs.py); plain: readable lines. json unless DEBUG.
LOG_FORMAT = env("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "helpdesk.logs.JsonFormatter"},
        "plain": {"()": "helpdesk.logs.PlainFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Its DEBUG lines carry request URLs, and a query string may hold a token
        # (debug_token's input_token): never logged, whatever LOG_LEVEL says.
        "urllib3": {"level": "INFO"},
    },
}
# Data lifecycle (webhooks.retention): raw webhook deliveries (with their events) and Graph
# call records older than this many days are deleted by beat once nothing needs them (only
# processed deliveries; never a call record that keeps a call exactly-once). 0 keeps them.
WEBHOOK_RETENTION_DAYS = env_int("WEBHOOK_RETENTION_DAYS", 30)
GRAPH_CALL_RETENTION_DAYS = env_int("GRAPH_CALL_RETENTION_DAYS", 30)
# Who erases the person Meta's data deletion callback names (`webhooks` does not import
# `agents`).
MESSENGER_DATA_DELETION_HANDLER = "agents.services.privacy.user_erase"
# Errors to Sentry (or GlitchTip) when a DSN is set (helpdesk/errors.py): Django's,
# Celery's and log lines at ERROR, with nothing personal and secrets masked.
SENTRY_DSN = env("SENTRY_DSN", "")
if SENTRY_DSN:
    from helpdesk import errors as _errors

    _errors.init(
        SENTRY_DSN,
        environment=env("SENTRY_ENVIRONMENT", "production" if not DEBUG else "development"),
        release=env("SENTRY_RELEASE", ""),
    )
# Stored deliveries and outbound messages older than this are re-driven by beat.
REDRIVE_GRACE_SECONDS = env_int("REDRIVE_GRACE_SECONDS", 60)
# Work queued (or running) less than this long ago is not queued again by the re-drive;
# longer than a task's hard time limit.
REDRIVE_LEASE_SECONDS = env_int("REDRIVE_LEASE_SECONDS", 150)
# A large delivery is processed in chunks of about this long, each task well within its
# time limit, so that no transaction and no task grows with the delivery.
WEBHOOK_CHUNK_SECONDS = float(env("WEBHOOK_CHUNK_SECONDS", "20"))
# The deliveries of one task are applied in groups of up to this many events, each group
# in one transaction (webhooks.services.deliveries_process): fewer statements and commits
# per event, conversations locked for the group's length (tens of milliseconds).
WEBHOOK_GROUP_EVENTS = env_int("WEBHOOK_GROUP_EVENTS", 50)
# A task takes along up to this many other deliveries that wait for their own task (a
# backlog): under load, tasks grow and the per-task cost is paid once for many; the
# tasks whose deliveries were taken find nothing to do. 0: each task its own only.
WEBHOOK_TAKE_ALONG = env_int("WEBHOOK_TAKE_ALONG", 40)
# Publishing tasks and live events from a background thread: requests and tasks never
# wait on Redis. Off in the in-process tests, which run them inline.
SIDE_EFFECTS_IN_BACKGROUND = env_bool("SIDE_EFFECTS_IN_BACKGROUND", True)
# How long a live event may wait on the channel layer before it is dropped (the
# database stays the truth; clients refetch).
CHANNEL_SEND_TIMEOUT_SECONDS = float(env("CHANNEL_SEND_TIMEOUT_SECONDS", "2"))
DATA_UPLOAD_MAX_MEMORY_SIZE = max(2_621_440, WEBHOOK_MAX_BODY_BYTES)
MESSENGER_PAGE_CONNECTED_HANDLER = "agents.services.inbound.page_defaults_ensure"

# Files agents send (agents.services.attachments): stored here by Django's default
# storage, never served as static files: the helpdesk serves each one to the agents who
# may see its ticket (GET /api/v1/attachments/<id>/file), and uploads it to Meta itself
# (the Attachment Upload API), so Meta never needs to reach this server.
MEDIA_ROOT = env("MEDIA_ROOT", str(BASE_DIR / "var" / "media"))
# Meta's limit for an attachment (messenger-platform.md §4.3: up to 25 MB, any type),
# and the files one reply may carry (each goes out as its own Messenger message).
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
ATTACHMENT_MAX_FILES = 10
