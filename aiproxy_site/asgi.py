"""ASGI entry: the proxy APIs (/v1/* for OpenAI and Anthropic, /v1beta/* for Gemini, /v2/* for
Cohere) go straight to the gateway app (no Django middleware on the hot path); everything
else to Django; WebSockets through Channels. Lifespan: on shutdown each worker closes its
gateway pools (upstream connections, Redis, PostgreSQL)."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from analytics.routing import websocket_urlpatterns  # noqa: E402
from gateway.hotpath.asgi import application as gateway_app  # noqa: E402
from gateway.hotpath.asgi import gateway_shutdown  # noqa: E402
from gateway.hotpath.token_count import count_text_tokens  # noqa: E402

websocket_app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
GATEWAY_PREFIXES = ("/v1/", "/v1beta/", "/v2/")


async def lifespan(receive, send):  # type: ignore[no-untyped-def]
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    # dispatched here rather than by Channels' ProtocolTypeRouter: one call less per request
    kind = scope["type"]
    if kind == "http":
        path = scope["path"]
        if path == "/v1" or path.startswith(GATEWAY_PREFIXES):
            await gateway_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)
    elif kind == "websocket":
        await websocket_app(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)
    else:
        raise ValueError(f"No application configured for scope type {kind!r}")


# Everything loaded so far (Django, the apps, the gateway: about 140,000 objects) lives as
# long as the process. Left to the garbage collector, each full collection walks all of it:
# 90-150 ms measured with this app loaded, the event loop and every request in flight
# stopped meanwhile. Frozen, they are never scanned again. tiktoken's encoding (counting a
# prompt for a tokens limit or a budget) is loaded first, so that the first request does
# not stop the loop ~35 ms to read it and its tables are frozen too.
count_text_tokens("warm")
gc.collect()
gc.freeze()
