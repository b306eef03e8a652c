"""WebSocket routes (Channels) of the analytics app. There are none yet: the live usage
feed is not built, so aiproxy_site/asgi.py's router finds no route for a WebSocket."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
