"""ASGI entry: the proxy APIs (/v1/* for OpenAI and Anthropic, /v1beta/* for Gemini, /v2/* for
Cohere) go straight to the gateway app (no Django middleware on the hot
path); everything else to Django; WebSockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from analytics.routing import websocket_urlpatterns  # noqa: E402
from gateway.asgi import application as gateway_app  # noqa: E402


async def http_app(scope, receive, send):  # type: ignore[no-untyped-def]
    path = scope["path"]
    if path == "/v1" or path.startswith(("/v1/", "/v1beta/", "/v2/")):
        await gateway_app(scope, receive, send)
    else:
        await django_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
