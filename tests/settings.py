"""Settings for the test suite: the app's own settings, with test-friendly environment."""

import os
import tempfile

# No `.env` (the one `make run` writes is the developer's): the tests set what they need,
# here and in the environments of the processes they start.
os.environ["HELPDESK_ENV_FILE"] = ""
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("MESSENGER_APP_ID", "100000000000001")
os.environ.setdefault("MESSENGER_APP_SECRET", "test-app-secret")
os.environ.setdefault("MESSENGER_VERIFY_TOKEN", "test-verify-token")
# A closed port: a test that forgets the fake Graph server fails instead of going out.
os.environ.setdefault("GRAPH_API_URL", "http://127.0.0.1:9/v23.0")

from helpdesk.settings import *  # noqa: F403
from helpdesk.settings import DATABASES

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not shared-cache memory: concurrency tests use real connections from threads.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"helpdesk-test-{os.getpid()}.sqlite3")
    }

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# In-process tests run tasks eagerly (retries included, without their countdown); the
# end-to-end tests run a real worker against real Redis.
CELERY_TASK_ALWAYS_EAGER = True
# Tasks and live events are published inline, so tests see them when the commit ends.
SIDE_EFFECTS_IN_BACKGROUND = False
# In-process tests store webhook deliveries from a thread: their database and mocks are
# this process's (the end-to-end tests' Daphne runs the writer process).
WEBHOOK_INTAKE_PROCESS = False
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_URL = "memory://"
# In-process tests keep metric counts in memory; tests/helpdesk/test_metrics.py flushes
# them to a real Redis itself (the processes of tests/e2e send theirs every second).
METRICS_FLUSH_SECONDS = 0
GRAPH_API_TIMEOUT_SECONDS = 1.0
GRAPH_RETRY_MAX = 3
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
