"""Management API authentication: a browser session (current workspace) or a
workspace admin token (`Authorization: Bearer aip-admin-...`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from keys.tokens import token_hash

from .models import AdminToken
from .services import ADMIN_TOKEN_PREFIX


class AdminTokenAuthentication(authentication.BaseAuthentication):
    """A Bearer header is taken as an attempt to use an admin token, so a wrong one is refused as
    such instead of falling through to "credentials were not provided". Other schemes are left to
    the session (a proxy in front may add Basic auth)."""

    def authenticate(self, request: Request) -> tuple[Any, AdminToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        scheme, _, secret = header.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer":
            return None
        if not secret.startswith(ADMIN_TOKEN_PREFIX):
            hint = (
                " API keys (sk-aip-...) call the gateway, not the management API." if secret.startswith("sk-") else ""
            )
            raise exceptions.AuthenticationFailed(f"Invalid admin token.{hint}")
        token = AdminToken.objects.select_related("workspace").filter(token_hash=token_hash(secret)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid admin token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This admin token has been revoked.")
        request._request.workspace = token.workspace  # type: ignore[attr-defined]
        request._request.membership = None  # type: ignore[attr-defined]
        connection.set_tenant(token.workspace)
        return AnonymousUser(), token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="aiproxy"'


class IsWorkspaceMember(permissions.BasePermission):
    """A session user with a current workspace, or an admin token."""

    message = "Sign in and pick a workspace, or send a workspace admin token."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, AdminToken):
            return True
        if not (request.user and request.user.is_authenticated):
            if authentication.get_authorization_header(request):
                raise exceptions.NotAuthenticated("Send a workspace admin token as `Authorization: Bearer <token>`.")
            return False
        return getattr(request._request, "workspace", None) is not None


def api_admin_required(request: Request, message: str) -> None:
    """Writes that change what the workspace's keys may do are for owners and admins (or an
    admin token), not every member."""
    membership = getattr(request._request, "membership", None)
    if not isinstance(request.auth, AdminToken) and not (membership is not None and membership.is_admin):
        raise exceptions.PermissionDenied(message)
