"""WebSocket routes (Channels). The live usage feed comes with the analytics issue."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
