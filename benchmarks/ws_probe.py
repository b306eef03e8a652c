"""The real application plus one echo WebSocket route behind Channels' AuthMiddlewareStack,
for benchmarks/asgi_servers.py to check that a server carries Channels WebSockets (the
project has no WebSocket route of its own yet)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from aiproxy_site.asgi import application as site_app  # noqa: E402
from analytics.routing import websocket_urlpatterns  # noqa: E402


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data=None, bytes_data=None):  # type: ignore[no-untyped-def]
        await self.send(text_data=text_data, bytes_data=bytes_data)


echo_app = AuthMiddlewareStack(URLRouter([path("ws/bench-echo/", Echo.as_asgi()), *websocket_urlpatterns]))


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "websocket":
        await echo_app(scope, receive, send)
    else:
        await site_app(scope, receive, send)
