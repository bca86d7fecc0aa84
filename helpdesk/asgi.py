import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")
# Build the Django app first: it sets up apps before the consumers are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from agents.routing import websocket_urlpatterns  # noqa: E402
from helpdesk import health, metrics  # noqa: E402
from webhooks import intake  # noqa: E402

intake.prestart()  # the webhook's writer process, ready for the first delivery


async def http(scope, receive, send):  # type: ignore[no-untyped-def] # ASGI's own signature
    """Meta's webhook POSTs, the health probes and the metrics take lean routes
    (webhooks.intake, helpdesk.health, helpdesk.metrics); the rest is Django's."""
    if scope["path"] == intake.PATH and scope["method"] == "POST":
        await intake.webhook(scope, receive, send)
    elif scope["path"] in health.PATHS:
        await health.app(scope, receive, send)
    elif scope["path"] == metrics.PATH:
        await metrics.app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
